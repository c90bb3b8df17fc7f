#!/usr/bin/env node
// The `gatehouse` command line.

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { SigningKeyError as AuditSigningKeyError } from '../audit/signing-key.js';
import { ConfigError } from '../config/index.js';
import { StoreError } from '../store/index.js';
import { SigningKeyError as TokenSigningKeyError } from '../identity/gateway-tokens/signing-key.js';
import { CliError } from './cli-error.js';
import { checkCommandFlags } from './command-flags.js';
import { agentCommand } from './commands/agent.js';
import { agentsCommand } from './commands/agents.js';
import { configCheckCommand } from './commands/config-check.js';
import { auditCommand } from './commands/audit.js';
import { keysCommand } from './commands/keys.js';
import { quickstartCommand } from './commands/quickstart.js';
import { reviewsCommand } from './commands/reviews.js';
import { policyCommand } from './commands/policy.js';
import { revokeCommand } from './commands/revoke.js';
import { loginCommand, whoamiCommand } from './commands/login.js';
import { sessionsCommand } from './commands/sessions.js';
import { startCommand } from './commands/start.js';

const usage = `usage: gatehouse <command> [options]

  start --config FILE            run the gateway
  quickstart [--port N]          run the quick start (demo upstream + gateway); what \`npm start\` does;
                                 --port: data plane on N, admin API on N+1, demo upstream on N+10
  config check FILE              validate a config file and exit
  keys create --name NAME --groups a,b [--kind service|agent|human] [--expires 30d|never]
                                 create an API key; the key is printed once
  keys list [--limit N]          list API keys, newest first (never their secrets)
  keys revoke ID|NAME            revoke an API key; takes effect within 1 s
  keys rotate NAME --overlap 24h [--expires 30d|never]
                                 new key for NAME; the old one expires after the overlap;
                                 without --expires the new key gets the old one's lifetime
  revoke token JTI | subject S | user S | key ID|NAME | signing-key KID [--reason TEXT]
                                 revoke at once on every gateway sharing the store, cutting
                                 in-flight exchanges; revoke list; revoke lift ID
  login --issuer URL --client-id ID [--audience A] [--scope S]
                                 sign in with the device flow; the token is kept in
                                 $XDG_CONFIG_HOME/gatehouse/credentials.json (mode 0600)
  whoami --admin URL             who the stored credential is, asked of the admin API
  reviews list [--state S] [--connection C] [--subject S] [--limit N]
  reviews show ID                one approval review, with its votes
  reviews approve ID [--comment TEXT] [--grant 30m]
  reviews deny ID [--comment REASON]
  reviews cancel ID              votes and cancels act as $GATEHOUSE_REVIEWER_KEY
  policy check --as SUBJECT --groups a,b [--kind agent] --connection C [--operation OP] [--method M] [--path P] [--request FILE [--content-type T]] [--at TIME]
                                 dry-run the policy: the decision, and why each rule matched or not
  sessions list [--connection C] [--subject S] [--group G] [--decision allow|deny|require_approval] [--operation OP]
                [--rule R] [--review ID] [--text "words"] [--since TIME] [--until TIME] [--limit N]
  sessions show ID               one recorded exchange in full
  sessions replay ID             the exchange as it happened: a timeline of the answer's chunks
  audit verify [--from SEQ] [--public-key FILE]
                                 check the tamper-evident chain; exit 3 and name the event where it breaks
  audit prune --before TIME [--force]  delete events (and their exchanges) up to the last checkpoint before TIME; refused over a break in the chain unless --force
  audit export --out DIR|FILE.csv [search filters as for sessions list]
                                 a signed evidence bundle (DIR) or a CSV file
  audit alerts [--since TIME] [--until TIME] [--limit N]
                                 alerts raised (failed-auth-then-success, bulk-requests), newest first
  agent --gateway URL[,URL...] --key KEY [--ca FILE] [--config agent.yaml]
                                 run an egress-only agent that dials out to the gateway
                                 (several gateways: every URL, comma-separated; it links to each)
  agents list [--admin URL] [--key ADMIN_KEY]
                                 agents connected to a running gateway (admin API)

  --config FILE   config file for keys / sessions (default: $GATEHOUSE_CONFIG or ./gatehouse.yaml)
  --json          machine-readable output for list / show / create
`;

const options = {
  config: { type: 'string', short: 'c' },
  name: { type: 'string' },
  groups: { type: 'string' },
  kind: { type: 'string' },
  expires: { type: 'string' },
  connection: { type: 'string' },
  subject: { type: 'string' },
  decision: { type: 'string' },
  operation: { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
  group: { type: 'string' },
  rule: { type: 'string' },
  review: { type: 'string' },
  text: { type: 'string' },
  from: { type: 'string' },
  'public-key': { type: 'string' },
  before: { type: 'string' },
  out: { type: 'string' },
  limit: { type: 'string' },
  state: { type: 'string' },
  comment: { type: 'string' },
  grant: { type: 'string' },
  as: { type: 'string' },
  request: { type: 'string' },
  'content-type': { type: 'string' },
  force: { type: 'boolean' },
  method: { type: 'string' },
  path: { type: 'string' },
  at: { type: 'string' },
  json: { type: 'boolean' },
  overlap: { type: 'string' },
  reason: { type: 'string' },
  issuer: { type: 'string' },
  'client-id': { type: 'string' },
  audience: { type: 'string' },
  scope: { type: 'string' },
  gateway: { type: 'string' },
  key: { type: 'string' },
  ca: { type: 'string' },
  admin: { type: 'string' },
  port: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

async function main(argv: string[]): Promise<void> {
  const { values, positionals, tokens } = parseArgs({ args: argv, allowPositionals: true, strict: true, options, tokens: true });
  // parseArgs keeps the last of a repeated option: `--text a --text b` searched for b alone.
  const given = new Map<string, number>();
  for (const token of tokens) if (token.kind === 'option') given.set(token.name, (given.get(token.name) ?? 0) + 1);
  for (const [name, count] of given) if (count > 1) throw new CliError(`--${name} is given ${count} times: give each option once`);
  const [command, action, ...rest] = positionals;
  if (values.version) {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    process.stdout.write(`${pkg.version}\n`);
    return;
  }
  if (values.help || command === undefined || command === 'help') {
    process.stdout.write(usage);
    return;
  }
  checkCommandFlags(command, action, values);
  switch (command) {
    case 'start':
      return startCommand(values);
    case 'quickstart':
      return quickstartCommand(values);
    case 'config':
      if (action !== 'check') throw new CliError('usage: gatehouse config check FILE');
      return configCheckCommand(rest[0] ?? values.config);
    case 'keys':
      return keysCommand(action, rest, values);
    case 'login':
      return loginCommand(values);
    case 'whoami':
      return whoamiCommand(values);
    case 'revoke':
      return revokeCommand(action, rest, values);
    case 'sessions':
      return sessionsCommand(action, rest, values);
    case 'reviews':
      return reviewsCommand(action, rest, values);
    case 'policy':
      return policyCommand(action, values);
    case 'audit':
      return auditCommand(action, values);
    case 'agent':
      return agentCommand(values);
    case 'agents':
      return agentsCommand(action, values);
    default:
      throw new CliError(`unknown command "${command}"\n\n${usage}`);
  }
}

/**
 * Ids are random (a signing key's kid is base64url), so one may start with "-" and read
 * as a group of short options: say that such a value goes after "--".
 */
function dashedValueHint(argv: readonly string[], unknown: string | undefined): string {
  if (unknown === undefined || unknown.startsWith('--')) return '';
  const end = argv.indexOf('--');
  const word = (end < 0 ? argv : argv.slice(0, end)).find((a) => a.length > 2 && a.startsWith(unknown) && !a.startsWith('--'));
  if (word === undefined) return '';
  const rest = argv.filter((a) => a !== word);
  return `a value that starts with "-" goes after "--": gatehouse ${[...rest, '--', word].join(' ')}\n`;
}

/**
 * `usage: gatehouse <the command's line of the help>` for the command in `argv` (its
 * description left out), or the general usage line when there is no known command.
 */
function commandUsage(argv: string[]): string {
  const [command, action] = parseArgs({ args: argv, allowPositionals: true, strict: false, options }).positionals;
  const lines = usage.split('\n');
  const starts = (prefix: string) => lines.findIndex((line) => line.startsWith(`  ${prefix} `) || line === `  ${prefix}`);
  let at = command === undefined ? -1 : action !== undefined && starts(`${command} ${action}`) >= 0 ? starts(`${command} ${action}`) : starts(command);
  if (at < 0) return 'usage: gatehouse <command> [options] (gatehouse --help lists the commands)';
  const parts = [lines[at]!.trim().split(/ {2,}/)[0]!];
  // A usage that goes on over the next lines (`sessions list`): its options start with `[`.
  while (lines[++at]?.trimStart().startsWith('[')) parts.push(lines[at]!.trim());
  return `usage: gatehouse ${parts.join(' ')}`;
}

// process.exit() does not wait for stdout: into a pipe (`sessions list --json | jq`)
// anything beyond the pipe's 64 KiB buffer was lost. Exit once both streams are drained
// (a write's callback runs after every earlier write has been handed to the OS).
function exitWhenFlushed(code: number): void {
  let pending = 2;
  const done = () => {
    if (--pending === 0) process.exit(code);
  };
  process.stdout.write('', done);
  process.stderr.write('', done);
}

main(process.argv.slice(2)).then(
  () => exitWhenFlushed(process.exitCode === undefined ? 0 : Number(process.exitCode)),
  (error: unknown) => {
    if (error instanceof ConfigError) {
      process.stderr.write(`gatehouse: ${error.message}\n`);
      return exitWhenFlushed(1);
    }
    if (error instanceof CliError) {
      process.stderr.write(`gatehouse: ${error.message}\n`);
      return exitWhenFlushed(error.exitCode);
    }
    // A key that cannot be used is the operator's to fix: the message says how, a stack would not.
    // So is a store that cannot be opened or reached (its message never holds the URL).
    if (error instanceof AuditSigningKeyError || error instanceof TokenSigningKeyError || error instanceof StoreError) {
      process.stderr.write(`gatehouse: ${error.message}\n`);
      return exitWhenFlushed(1);
    }
    if (error instanceof TypeError && (error as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      // One line naming the option, and the command's usage line: not the whole help.
      const unknown = /^Unknown option '([^']+)'/.exec(error.message)?.[1];
      const argv = process.argv.slice(2);
      process.stderr.write(`gatehouse: ${unknown !== undefined ? `unknown option ${unknown}` : error.message}\n${dashedValueHint(argv, unknown)}${commandUsage(argv)}\n`);
      return exitWhenFlushed(2);
    }
    process.stderr.write(`gatehouse: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return exitWhenFlushed(1);
  },
);
