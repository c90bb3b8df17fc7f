// The search filters shared by `sessions list` and `audit export`, so both select the
// same exchanges from the same flags.

import type { ExchangeFilter } from '../../audit/index.js';
import { CliError } from '../cli-error.js';
import { parseDuration, parseIsoTime } from '../../config/units.js';

export interface SearchOptions {
  readonly connection?: string | undefined;
  readonly subject?: string | undefined;
  readonly group?: string | undefined;
  readonly decision?: string | undefined;
  readonly operation?: string | undefined;
  readonly rule?: string | undefined;
  readonly review?: string | undefined;
  readonly text?: string | undefined;
  readonly since?: string | undefined;
  readonly until?: string | undefined;
}

/** A duration with its unit, back from now: `--since 2h` (a bare number is refused: 2 what?). */
const ago = /^\s*\d+(?:\.\d+)?\s*(s|m|h|d)\s*$/i;

/**
 * `--since` / `--until`: an ISO 8601 time, or a duration back from now (`30m`, `2h`,
 * `7d`), which is what a responder types at 3 a.m.
 */
export function cliTime(value: string | undefined, flag: string, now: () => number = Date.now): number | undefined {
  if (value === undefined) return undefined;
  const parsed = ago.test(value) ? now() - parseDuration(value)! : parseIsoTime(value);
  if (parsed === undefined) throw new CliError(`--${flag} must be an ISO 8601 time (2026-11-23T10:00:00Z) or a duration back from now (30m, 2h, 7d)`);
  return parsed;
}

const decisions = ['allow', 'deny', 'require_approval'];

export function filterFromOptions(options: SearchOptions): ExchangeFilter {
  // A misspelt decision would match nothing and read as "none found".
  if (options.decision !== undefined && !decisions.includes(options.decision)) throw new CliError(`--decision must be one of ${decisions.join(', ')}`);
  const filter: Record<string, unknown> = {
    connection: options.connection,
    subject: options.subject,
    group: options.group,
    decision: options.decision,
    operation: options.operation,
    rule: options.rule,
    review: options.review,
    text: options.text,
    since: cliTime(options.since, 'since'),
    until: cliTime(options.until, 'until'),
  };
  // Swapped bounds match nothing, and the empty answer read as "nothing happened".
  if (typeof filter.since === 'number' && typeof filter.until === 'number' && filter.since > filter.until)
    throw new CliError(`--since ${options.since} is after --until ${options.until}: no time is in that range`);
  for (const key of Object.keys(filter)) if (filter[key] === undefined) delete filter[key];
  return filter as ExchangeFilter;
}
