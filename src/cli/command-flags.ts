// Which options each command takes. parseArgs knows every option of every command, so
// without this table an option meant for another command was accepted and silently
// ignored (`keys list --limit 5` listed every key). An option a command does not take
// is a usage error (exit 2) naming the options it does take.

import { parseDuration } from '../config/index.js';
import { CliError } from './cli-error.js';

const search = ['connection', 'subject', 'group', 'decision', 'operation', 'rule', 'review', 'text', 'since', 'until'];

/** `command` or `command action` → its options (`--help` and `--version` go with every command). */
const commandFlags: Readonly<Record<string, readonly string[]>> = {
  start: ['config'],
  quickstart: ['port'],
  'config check': ['config'],
  'keys create': ['config', 'name', 'groups', 'kind', 'expires', 'json'],
  'keys list': ['config', 'limit', 'json'],
  'keys revoke': ['config'],
  'keys rotate': ['config', 'overlap', 'expires', 'json'],
  'revoke token': ['config', 'reason', 'json'],
  'revoke subject': ['config', 'reason', 'json'],
  'revoke user': ['config', 'reason', 'json'],
  'revoke key': ['config', 'reason', 'json'],
  'revoke list': ['config', 'json'],
  'revoke lift': ['config', 'json'],
  login: ['issuer', 'client-id', 'audience', 'scope'],
  whoami: ['admin'],
  'reviews list': ['config', 'state', 'connection', 'subject', 'limit', 'json'],
  'reviews show': ['config', 'json'],
  'reviews approve': ['config', 'comment', 'grant', 'json'],
  'reviews deny': ['config', 'comment', 'json'],
  'reviews cancel': ['config', 'json'],
  'policy check': ['config', 'as', 'groups', 'kind', 'connection', 'operation', 'method', 'path', 'request', 'content-type', 'at', 'json'],
  'sessions list': ['config', ...search, 'limit', 'json'],
  'sessions show': ['config', 'json'],
  'sessions replay': ['config', 'json'],
  'audit verify': ['config', 'from', 'public-key', 'json'],
  'audit prune': ['config', 'before', 'force', 'json'],
  // --limit is refused by the command itself, with the reason.
  'audit export': ['config', 'out', ...search, 'limit'],
  agent: ['config', 'gateway', 'key', 'ca'],
  'agents list': ['config', 'admin', 'key', 'json'],
};

const everywhere = new Set(['help', 'version']);

/** Throws a usage error for an option `command [action]` does not take; an unknown command or action is left to the command's own usage message. */
export function checkCommandFlags(command: string, action: string | undefined, given: Readonly<Record<string, unknown>>): void {
  const name = action !== undefined && commandFlags[`${command} ${action}`] ? `${command} ${action}` : command;
  const allowed = commandFlags[name];
  if (!allowed) return;
  for (const flag of Object.keys(given)) {
    if (given[flag] === undefined || everywhere.has(flag) || allowed.includes(flag)) continue;
    const takes = allowed.length === 0 ? 'it takes no options' : `it takes ${allowed.map((f) => `--${f}`).join(', ')}`;
    throw new CliError(`${name} does not take --${flag}: ${takes}`);
  }
}

/**
 * A lifetime given on the command line (`--expires 30d`, `--overlap 24h`, `--grant 30m`),
 * in milliseconds. A bare number is refused, 0 aside: in a config a number is
 * milliseconds, so `--expires 30` meant for days would make a key that expires at once,
 * and `--overlap 24` meant for hours would cut off the old key of a rotation.
 * `examples` (`30d, 12h`) and `alternative` (`never`, `0`) are named in the error.
 */
export function lifetimeFlag(flag: string, value: string, examples: string, alternative?: string): number {
  const ms = parseDuration(value);
  const or = alternative === undefined ? '' : `, or ${alternative}`;
  if (ms === undefined) throw new CliError(`--${flag} "${value}" is not a duration (e.g. ${examples}${or})`);
  if (ms !== 0 && /^\s*\d+(?:\.\d+)?\s*$/.test(value)) throw new CliError(`--${flag} "${value}" has no unit: give one (${examples})${or}`);
  return ms;
}
