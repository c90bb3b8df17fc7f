// `npm run bench`: every data-plane benchmark in one go, each in its own process, in turn:
//   http      bench/http.ts      direct vs gateway vs gateway with recording off (HTTP)
//   postgres  bench/postgres.ts  pgbench direct vs through the PostgreSQL proxy
//   agent     bench/agent.ts     HTTP through the gateway directly vs through the agent
// `npm run bench` builds once before this runner; the sections use dist/ as built.
// Each child inherits the environment and its output is streamed as it comes; the
// runner keeps the lines that say PASS / FAIL and ends with a summary of every
// section's exit code and those lines.
//
//   npm run bench                              all three
//   npm run bench -- --only http,agent         a subset, in the order http, postgres, agent
//   npm run bench -- --only http --seconds 10  flags the runner does not know go to bench/http.ts
//
// The postgres section needs pgbench on PATH and a PostgreSQL server
// (GATEHOUSE_TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/postgres).
// Both are checked before it starts: without them it is SKIPPED, not failed, except
// under CI=true, where a missing prerequisite fails.
//
// Exit code: 1 if any section that ran exited non-zero (or a prerequisite is missing
// under CI=true), 2 on a bad --only; 0 otherwise. Like the sections themselves, a
// missed performance floor prints FAIL but does not change the exit code.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { testPostgresAdminUrl } from '../test/helpers/databases.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const SECTIONS = ['http', 'postgres', 'agent'] as const;
type Section = (typeof SECTIONS)[number];
const FILES: Record<Section, string> = { http: 'bench/http.ts', postgres: 'bench/postgres.ts', agent: 'bench/agent.ts' };
/** Output lines worth repeating in the summary: floors and verdicts. */
const VERDICT = /\b(PASS|FAIL|FAILED)\b/;
const MAX_SUMMARY_LINE = 200;
/** What bench/postgres.ts says on stderr when it has nothing to measure against (it then exits 1). */
const POSTGRES_ABSENT = /^bench:postgres: (pgbench is not installed|PostgreSQL not reachable)/;

const log = (line: string) => process.stdout.write(`${line}\n`);

// ---------------------------------------------------------------- options

function parseOptions(argv: readonly string[]): { only: Section[]; httpArgs: string[] } {
  let only: string | undefined;
  const httpArgs: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--only') only = argv[++i] ?? '';
    else if (arg.startsWith('--only=')) only = arg.slice('--only='.length);
    else httpArgs.push(arg);
  }
  if (only === undefined) return { only: [...SECTIONS], httpArgs };
  const wanted = only.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = wanted.filter((s) => !(SECTIONS as readonly string[]).includes(s));
  if (wanted.length === 0 || unknown.length > 0) {
    process.stderr.write(`bench: --only takes a comma-separated list of ${SECTIONS.join(', ')}${unknown.length ? ` (unknown: ${unknown.join(', ')})` : ''}\n`);
    process.exit(2);
  }
  return { only: SECTIONS.filter((s) => wanted.includes(s)), httpArgs };
}

// ---------------------------------------------------------------- prerequisites

/** Why the postgres section cannot run here, or undefined when it can. */
async function postgresMissing(): Promise<string | undefined> {
  try {
    await promisify(execFile)('pgbench', ['--version'], { timeout: 10_000 });
  } catch {
    return 'pgbench is not on PATH (postgresql-contrib)';
  }
  const url = testPostgresAdminUrl();
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('select 1');
    return undefined;
  } catch (error) {
    const shown = new URL(url);
    if (shown.password) shown.password = '***';
    return `PostgreSQL not reachable at ${shown.toString()} (${(error as Error).message}); set GATEHOUSE_TEST_POSTGRES_URL`;
  } finally {
    await client.end().catch(() => undefined);
  }
}

// ---------------------------------------------------------------- children

let current: ChildProcess | undefined;
let interrupted = false;

function onSignal(signal: NodeJS.Signals): void {
  interrupted = true;
  // Ctrl-C reaches the child through the terminal's process group already; a signal
  // sent to the runner alone is passed on, so the child can stop its own processes.
  if (current && current.exitCode === null && current.signalCode === null) current.kill('SIGTERM');
  if (!current) process.exit(signal === 'SIGINT' ? 130 : 143);
}
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

/** Pipes one stream of the child to ours and hands every complete line to `onLine`. */
function tee(from: NodeJS.ReadableStream, to: NodeJS.WritableStream, onLine: (line: string) => void): void {
  let partial = '';
  from.on('data', (chunk: Buffer) => {
    to.write(chunk);
    const text = partial + chunk.toString('utf8');
    const lines = text.split('\n');
    partial = lines.pop()!;
    for (const line of lines) onLine(line);
  });
  from.on('end', () => {
    if (partial) onLine(partial);
  });
}

interface Outcome {
  readonly code: number;
  readonly verdicts: string[];
  /** The section's own "nothing to measure against" message, if it printed one. */
  readonly absent: string | undefined;
}

function runSection(section: Section, args: readonly string[]): Promise<Outcome> {
  const verdicts: string[] = [];
  let absent: string | undefined;
  const keep = (line: string) => {
    if (section === 'postgres' && POSTGRES_ABSENT.test(line)) absent ??= line.slice('bench:postgres: '.length);
    if (VERDICT.test(line)) verdicts.push(line.length > MAX_SUMMARY_LINE ? `${line.slice(0, MAX_SUMMARY_LINE)}…` : line);
  };
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, FILES[section]), ...args], { cwd: root, env: process.env, stdio: ['inherit', 'pipe', 'pipe'] });
  current = child;
  tee(child.stdout!, process.stdout, keep);
  tee(child.stderr!, process.stderr, keep);
  return new Promise((resolve) => {
    child.once('error', (error) => {
      verdicts.push(`could not start: ${error.message}`);
      resolve({ code: 1, verdicts, absent });
    });
    // 'close', not 'exit': every line of output has been read by then.
    child.once('close', (code, signal) => {
      current = undefined;
      resolve({ code: code ?? (signal === 'SIGINT' ? 130 : 143), verdicts, absent });
    });
  });
}

// ---------------------------------------------------------------- main

type Result =
  | { readonly section: Section; readonly state: 'ran'; readonly outcome: Outcome }
  | { readonly section: Section; readonly state: 'skipped'; readonly reason: string }
  /** A prerequisite is missing under CI=true: a failure. */
  | { readonly section: Section; readonly state: 'missing'; readonly reason: string };

async function main(): Promise<number> {
  const { only, httpArgs } = parseOptions(process.argv.slice(2));
  if (httpArgs.length > 0 && !only.includes('http')) process.stderr.write(`bench: ${httpArgs.join(' ')} ignored: they are options of the http section, which is not selected\n`);
  const inCi = process.env['CI'] === 'true';
  const results: Result[] = [];
  const started = Date.now();

  for (const section of only) {
    if (interrupted) break;
    log('');
    log(`======== bench: ${section} (${FILES[section]}) ========`);
    if (section === 'postgres') {
      const missing = await postgresMissing();
      if (missing !== undefined) {
        log(`bench: postgres ${inCi ? 'cannot run' : 'SKIPPED'}: ${missing}`);
        results.push({ section, state: inCi ? 'missing' : 'skipped', reason: missing });
        continue;
      }
    }
    const outcome = await runSection(section, section === 'http' ? httpArgs : []);
    // Should PostgreSQL go away between the check and the run, the section says so itself.
    if (outcome.code !== 0 && outcome.absent !== undefined) results.push({ section, state: inCi ? 'missing' : 'skipped', reason: outcome.absent });
    else results.push({ section, state: 'ran', outcome });
  }

  log('');
  log(`======== bench: summary (${((Date.now() - started) / 1000).toFixed(0)} s) ========`);
  for (const r of results) {
    if (r.state === 'skipped') log(`${r.section.padEnd(9)} SKIPPED (missing pgbench/PostgreSQL: ${r.reason})`);
    else if (r.state === 'missing') log(`${r.section.padEnd(9)} FAILED (CI=true and ${r.reason})`);
    else {
      log(`${r.section.padEnd(9)} exit ${r.outcome.code}${r.outcome.code === 0 ? '' : '  <- FAILED'}`);
      if (r.outcome.verdicts.length === 0) log('          (printed no PASS/FAIL lines)');
      for (const line of r.outcome.verdicts) log(`          ${line.trim()}`);
    }
  }
  for (const section of only.filter((s) => !results.some((r) => r.section === s))) log(`${section.padEnd(9)} not run (interrupted)`);
  if (interrupted) return 130;
  const failed = results.some((r) => r.state === 'missing' || (r.state === 'ran' && r.outcome.code !== 0));
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
