// `npm run bench:http` (and the http section of `npm run bench`): HTTP data-plane
// overhead of the gateway, DIRECT vs THROUGH THE GATEWAY, and what recording costs.
//
// 1. the DEMO upstream runs in its own process (bench/upstream-process.ts);
// 2. two real gateway processes (`node dist/cli/main.js start`), each with its own temp
//    config + SQLite store and two API keys made with the real CLI, identical but for
//    `recording.enabled`: "gateway" records every exchange (auth and recording on, as in
//    production), "gateway-norec" records nothing (a benchmark switch only);
// 3. this process is the load generator (undici keep-alive Pool): a fixed-concurrency
//    closed loop for throughput, then a sequential run (concurrency 1) for latency
//    percentiles, for plain and streamed chat completions, against the three targets
//    with the same parameters. Both are cut into short rounds that rotate through
//    direct / gateway / gateway-norec (every order in turn, so each target goes first
//    equally often) and background noise hits all three alike; CPU time of every
//    process is read from /proc around each throughput round;
// 4. tables, the floors with PASS/FAIL (gateway/direct throughput, added p50 latency,
//    recording cost = 1 - gateway/gateway-norec throughput), and proof that the
//    recording gateway recorded every exchange and the other none.
//
// Options (flag or environment variable):
//   --concurrency N   BENCH_CONCURRENCY         closed-loop workers (default 32)
//   --seconds S       BENCH_SECONDS             measured throughput window per target (default 5)
//   --warmup S        BENCH_WARMUP_SECONDS      throughput warm-up per target (default 1)
//   --latency-seconds S BENCH_LATENCY_SECONDS   sequential latency window per target (default 2)
//   --stream-delay-ms N BENCH_STREAM_DELAY_MS   upstream delay between SSE frames (default 0)
//   BENCH_DUMP=FILE              write the raw sequential latency samples (ns, in order) as JSON
//   BENCH_GATEWAY_NODE_OPTIONS   extra node flags for the RECORDING gateway child, e.g.
//                                "--cpu-prof --cpu-prof-dir=/tmp/gatehouse-prof"
//   BENCH_NOREC_NODE_OPTIONS     the same for the gateway-norec child
// Exit code: 1 if any request failed or recording could not be verified (the recording
// gateway's store must hold one row per successful response, the other's none); 0
// otherwise (a missed performance floor is printed as FAIL but does not change the exit code).

import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import SQLite from 'better-sqlite3';
import { request } from 'undici';
import { delta, snapshot } from './cpu.js';
import { unindexedRows } from './search-backlog.js';
import { cleanupAll, cleanupSync, registerTempDir, spawnChild, type Child } from './children.js';
import { closedLoop, createPool, ErrorLog, percentile, sequential, type LatencyResult, type Scenario, type Target, type ThroughputResult } from './load.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = join(root, 'dist', 'cli', 'main.js');

// ---------------------------------------------------------------- options

const { values: flags } = parseArgs({
  args: process.argv.slice(2),
  strict: true,
  options: {
    concurrency: { type: 'string' },
    seconds: { type: 'string' },
    warmup: { type: 'string' },
    'latency-seconds': { type: 'string' },
    'stream-delay-ms': { type: 'string' },
  },
});

function numberOption(flag: string | undefined, env: string, fallback: number, min: number, max: number): number {
  const raw = flag ?? process.env[env];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max) {
    process.stderr.write(`bench: ${env} / flag value "${raw}" must be a number in [${min}, ${max}]\n`);
    process.exit(2);
  }
  return value;
}

const CONCURRENCY = Math.round(numberOption(flags.concurrency, 'BENCH_CONCURRENCY', 32, 1, 1024));
const SECONDS = numberOption(flags.seconds, 'BENCH_SECONDS', 5, 0.5, 120);
const WARMUP_SECONDS = numberOption(flags.warmup, 'BENCH_WARMUP_SECONDS', 1, 0, 30);
const LATENCY_SECONDS = numberOption(flags['latency-seconds'], 'BENCH_LATENCY_SECONDS', 2, 0.5, 60);
const LATENCY_WARMUP_SECONDS = 0.5;
/** Throughput rounds and latency blocks rotate through the targets at about this grain. */
const ROUND_SECONDS = 1;
const LATENCY_BLOCK_SECONDS = 0.25;
const LATENCY_MAX_SAMPLES = 50_000;
const STREAM_DELAY_MS = numberOption(flags['stream-delay-ms'], 'BENCH_STREAM_DELAY_MS', 0, 0, 1000);
const nodeOptions = (name: string) => (process.env[name] ?? '').split(/\s+/).filter(Boolean);
/** Extra node flags per gateway child: the recording one keeps the historic variable. */
const GATEWAY_NODE_OPTIONS = nodeOptions('BENCH_GATEWAY_NODE_OPTIONS');
const NOREC_NODE_OPTIONS = nodeOptions('BENCH_NOREC_NODE_OPTIONS');

const FLOOR_THROUGHPUT_RATIO = 0.25;
const FLOOR_ADDED_P50_US = 1000;
/** Issue #8: recording on costs at most 10% of throughput against recording off. */
const FLOOR_RECORDING_COST = 0.1;

const PROMPT = { model: 'demo-chat', messages: [{ role: 'user', content: 'Summarise the quarterly report in three bullet points' }] };
const SCENARIOS: readonly Scenario[] = [
  { name: 'chat', body: JSON.stringify(PROMPT), stream: false },
  { name: 'chat-stream', body: JSON.stringify({ ...PROMPT, stream: true }), stream: true },
];

const CONNECTION = 'bench';
const CLIENT_GROUP = 'bench-users';
const ADMIN_GROUP = 'bench-admins';

// ---------------------------------------------------------------- lifecycle

const abort = new AbortController();
let interrupted = false;
/** Set when a child we depend on dies mid-run: the run stops and says why. */
let childDeath: string | undefined;
let stopping = false;

function watch(child: Child): void {
  void child.exited.then(() => {
    if (stopping || interrupted) return;
    childDeath ??= `${child.name} exited unexpectedly (${child.describeExit()})\n${child.output()}`;
    abort.abort();
  });
}

function onSignal(signal: NodeJS.Signals): void {
  if (interrupted) return;
  interrupted = true;
  abort.abort();
  process.stderr.write(`\nbench: ${signal}, stopping child processes and removing temp files…\n`);
  cleanupAll().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
}
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
process.on('exit', cleanupSync);

const log = (line: string) => process.stdout.write(`${line}\n`);

function runCli(args: readonly string[], env: NodeJS.ProcessEnv): Promise<string> {
  const child = spawnChild(`gatehouse ${args[0]} ${args[1]}`, process.execPath, [cli, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.proc.stdout!.on('data', (s: string) => { out += s; });
    child.exited.then(() => {
      if (child.proc.exitCode === 0) resolve(out);
      else reject(new Error(`gatehouse ${args.join(' ')} failed (${child.describeExit()})\n${child.output()}`));
    }, reject);
  });
}

async function createKey(configFile: string, env: NodeJS.ProcessEnv, name: string, groups: string): Promise<string> {
  const out = await runCli(['keys', 'create', '--config', configFile, '--name', name, '--groups', groups, '--json'], env);
  const parsed = JSON.parse(out) as { token?: unknown };
  if (typeof parsed.token !== 'string') throw new Error(`keys create printed no token: ${out}`);
  return parsed.token;
}

// ---------------------------------------------------------------- formatting

const us = (ns: number) => ns / 1000;
const fmtUs = (ns: number) => (Number.isNaN(ns) ? '-' : `${us(ns).toFixed(0)}`);
const fmtUsSigned = (ns: number) => (Number.isNaN(ns) ? '-' : `${ns >= 0 ? '+' : ''}${us(ns).toFixed(0)}`);
const fmtRps = (n: number) => n.toFixed(0);

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function machine(): string {
  const cpus = os.cpus();
  return [
    `cpus       ${cpus.length} x ${cpus[0]?.model.trim() ?? 'unknown'}`,
    `os         ${os.type()} ${os.release()} ${os.arch()}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, load avg ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`,
    `node       ${process.version}`,
  ].join('\n');
}

// ---------------------------------------------------------------- main

interface CpuUse {
  /** Wall seconds of the measured closed-loop rounds. */
  readonly wall: number;
  /** CPU seconds per process over that time. */
  readonly cpu: Record<string, number>;
  /** Successful requests over that time. */
  readonly requests: number;
}

/** The three targets; the process names used for CPU accounting are the same words. */
const TARGETS = ['direct', 'gateway', 'gateway-norec'] as const;
type Which = (typeof TARGETS)[number];
const GATEWAYS = ['gateway', 'gateway-norec'] as const;

interface ScenarioResult {
  readonly scenario: Scenario;
  readonly throughput: Record<Which, ThroughputResult>;
  readonly cpu: Record<Which, CpuUse>;
  readonly latency: Record<Which, LatencyResult>;
}

/**
 * Round orders, a Williams design for three: taken in turn, every target goes first
 * (and second, and last) equally often every 3 rounds and follows every other target
 * equally often every 6, so drift and order effects (a gateway's background work
 * spilling into the next round) fall on all three alike.
 */
const ORDERS: readonly (readonly Which[])[] = [
  ['direct', 'gateway', 'gateway-norec'],
  ['gateway', 'gateway-norec', 'direct'],
  ['gateway-norec', 'direct', 'gateway'],
  ['gateway-norec', 'gateway', 'direct'],
  ['direct', 'gateway-norec', 'gateway'],
  ['gateway', 'direct', 'gateway-norec'],
];
const orderOf = (round: number): readonly Which[] => ORDERS[round % ORDERS.length]!;
/** A round count that is a multiple of the number of targets, close to `wanted`. */
const balanced = (wanted: number) => TARGETS.length * Math.max(1, Math.round(wanted / TARGETS.length));

function perTarget<T>(make: (which: Which) => T): Record<Which, T> {
  return Object.fromEntries(TARGETS.map((which) => [which, make(which)])) as Record<Which, T>;
}

function checkAborted(): void {
  if (abort.signal.aborted) throw new Error(childDeath ?? 'interrupted');
}

/**
 * One scenario against the three targets, same parameters. Every measurement is split
 * into short rounds that rotate through the targets, so a noisy neighbour or a CPU
 * frequency change hits all of them alike.
 */
async function runScenario(scenario: Scenario, targets: Record<Which, Target>, pids: Record<string, number | undefined>, afterRound: (which: Which) => Promise<number>): Promise<ScenarioResult> {
  const rounds = balanced(SECONDS / ROUND_SECONDS);
  const roundMs = (SECONDS * 1000) / rounds;
  const throughput = {} as Record<Which, ThroughputResult>;
  const cpu = {} as Record<Which, CpuUse>;
  const latency = {} as Record<Which, LatencyResult>;
  const roundRps = perTarget((): number[] => []);

  // Throughput: warm-up each target, then rotating rounds of the closed loop.
  const tp = perTarget(() => ({ completed: 0, okTotal: 0, latenciesNs: [] as number[], errors: new ErrorLog(), wall: 0, cpu: {} as Record<string, number>, roundOk: 0, catchUp: 0 }));
  process.stdout.write(`running    ${scenario.name.padEnd(12)} throughput, c=${CONCURRENCY}, ${WARMUP_SECONDS} s warm-up + ${rounds} rotating rounds of ${(roundMs / 1000).toFixed(2)} s per target `);
  for (const which of TARGETS) {
    checkAborted();
    const w = await closedLoop(targets[which], scenario, { concurrency: CONCURRENCY, warmupMs: 0, durationMs: WARMUP_SECONDS * 1000, signal: abort.signal, errors: tp[which].errors });
    tp[which].okTotal += w.okTotal;
  }
  for (let round = 0; round < rounds; round++) {
    for (const which of orderOf(round)) {
      checkAborted();
      const before = snapshot(pids);
      const t = await closedLoop(targets[which], scenario, { concurrency: CONCURRENCY, warmupMs: 0, durationMs: roundMs, signal: abort.signal, errors: tp[which].errors });
      // The recording gateway's round lasts until its records are applied to the store:
      // that time counts against its throughput, and its CPU stays in its own round.
      const catchUp = await afterRound(which);
      const used = delta(before, snapshot(pids));
      const acc = tp[which];
      acc.catchUp += catchUp;
      acc.completed += t.completed;
      acc.okTotal += t.okTotal;
      acc.roundOk += t.okTotal;
      for (const l of t.latenciesNs) acc.latenciesNs.push(l);
      acc.wall += used.wall;
      for (const [name, seconds] of Object.entries(used.cpu)) acc.cpu[name] = (acc.cpu[name] ?? 0) + seconds;
      roundRps[which].push(t.completed / (t.seconds + catchUp));
    }
    process.stdout.write('.');
  }
  log('');
  for (const which of TARGETS) {
    const acc = tp[which];
    const seconds = (roundMs * rounds) / 1000 + acc.catchUp;
    throughput[which] = { completed: acc.completed, seconds, rps: acc.completed / seconds, latenciesNs: acc.latenciesNs, errors: acc.errors, okTotal: acc.okTotal };
    // CPU per request over the measured rounds (each round's wall time includes draining its in-flight requests).
    cpu[which] = { wall: acc.wall, cpu: acc.cpu, requests: acc.roundOk };
    const rps = roundRps[which];
    log(`           ${which.padEnd(13)} ${fmtRps(throughput[which].rps)} req/s (rounds ${fmtRps(Math.min(...rps))}–${fmtRps(Math.max(...rps))})${acc.errors.count ? `, ${acc.errors.count} ERRORS` : ''}`);
  }

  // Latency: one request at a time, rotating blocks.
  const blocks = balanced(LATENCY_SECONDS / LATENCY_BLOCK_SECONDS);
  const blockMs = (LATENCY_SECONDS * 1000) / blocks;
  const seq = perTarget(() => ({ latenciesNs: [] as number[], ttfbNs: [] as number[], okTotal: 0, errors: new ErrorLog() }));
  process.stdout.write(`running    ${scenario.name.padEnd(12)} sequential latency, ${LATENCY_WARMUP_SECONDS} s warm-up + ${blocks} rotating blocks of ${(blockMs / 1000).toFixed(2)} s per target `);
  for (const which of TARGETS) {
    checkAborted();
    const w = await sequential(targets[which], scenario, { warmupMs: 0, durationMs: LATENCY_WARMUP_SECONDS * 1000, maxSamples: LATENCY_MAX_SAMPLES, signal: abort.signal, errors: seq[which].errors });
    seq[which].okTotal += w.okTotal;
  }
  for (let block = 0; block < blocks; block++) {
    for (const which of orderOf(block)) {
      checkAborted();
      const acc = seq[which];
      const l = await sequential(targets[which], scenario, { warmupMs: 0, durationMs: blockMs, maxSamples: LATENCY_MAX_SAMPLES - acc.latenciesNs.length, signal: abort.signal, errors: acc.errors });
      acc.okTotal += l.okTotal;
      for (const v of l.latenciesNs) acc.latenciesNs.push(v);
      for (const v of l.ttfbNs) acc.ttfbNs.push(v);
    }
    if (block % TARGETS.length === TARGETS.length - 1) process.stdout.write('.');
  }
  log('');
  for (const which of TARGETS) {
    const acc = seq[which];
    latency[which] = { samples: acc.latenciesNs.length, latenciesNs: acc.latenciesNs, ttfbNs: acc.ttfbNs, errors: acc.errors, okTotal: acc.okTotal };
    log(`           ${which.padEnd(13)} ${acc.latenciesNs.length} samples, p50 ${fmtUs(percentile(acc.latenciesNs, 50))} µs, p99 ${fmtUs(percentile(acc.latenciesNs, 99))} µs${acc.errors.count ? `, ${acc.errors.count} ERRORS` : ''}`);
  }
  return { scenario, throughput, cpu, latency };
}

interface GatewayProcess {
  readonly child: Child;
  readonly configFile: string;
  readonly env: NodeJS.ProcessEnv;
  readonly dbFile: string;
  readonly clientToken: string;
  readonly adminToken: string;
  readonly origin: string;
  readonly adminOrigin: string;
}

/**
 * A gateway process with its own directory (config, SQLite store, audit key) and its own
 * keys — keys live in the store, so each gateway needs its own. The two gateways'
 * configs differ only in `recording.enabled` and their paths.
 */
async function startGateway(name: Which, dir: string, recording: boolean, upstreamOrigin: string, env: NodeJS.ProcessEnv, nodeFlags: readonly string[]): Promise<GatewayProcess> {
  const configFile = join(dir, 'gatehouse.yaml');
  const dbFile = join(dir, 'gatehouse.db');
  const config = {
    gateway: { listen: { host: '127.0.0.1', port: 0 } },
    admin: { listen: { host: '127.0.0.1', port: 0 }, groups: [ADMIN_GROUP] },
    store: { sqlite: { path: dbFile } },
    recording: { enabled: recording },
    log: { level: 'warn' },
    connections: [{
      name: CONNECTION,
      type: 'openai',
      description: 'benchmark: DEMO upstream (not a model)',
      target: `${upstreamOrigin}/v1`,
      credential: { secret: '${BENCH_UPSTREAM_KEY}' },
      access: { groups: [CLIENT_GROUP] },
    }],
  };
  // JSON is YAML: no quoting pitfalls with `${...}`.
  await writeFile(configFile, `${JSON.stringify(config, null, 2)}\n`);
  const clientToken = await createKey(configFile, env, 'bench-client', CLIENT_GROUP);
  const adminToken = await createKey(configFile, env, 'bench-admin', ADMIN_GROUP);
  const child = spawnChild(name, process.execPath, [...nodeFlags, cli, 'start', '--config', configFile], { cwd: root, env });
  const ready = await child.waitForLine('stderr', /^gatehouse: data plane (\S+?)(?:, admin (\S+))?$/, 20_000);
  watch(child);
  const adminOrigin = ready[2];
  if (adminOrigin === undefined) throw new Error(`${name} did not report an admin listener`);
  return { child, configFile, env, dbFile, clientToken, adminToken, origin: ready[1]!, adminOrigin };
}

type SessionsPage = { sessions?: Array<{ id: string; connection: string; decision: string; status: number | null; complete: boolean; subject: string | null }> };

async function latestSessions(gw: GatewayProcess): Promise<{ status: number; text: string; page: SessionsPage | undefined }> {
  const res = await request(`${gw.adminOrigin}/api/sessions?limit=1`, { headers: { authorization: `Bearer ${gw.adminToken}` } });
  const text = await res.body.text();
  let page: SessionsPage | undefined;
  try {
    page = JSON.parse(text) as SessionsPage;
  } catch {
    page = undefined;
  }
  return { status: res.statusCode, text, page };
}

/** Exchange rows for the bench connection: all, and complete allowed 200s. */
function countExchanges(dbFile: string): { total: number; ok: number } {
  const db = new SQLite(dbFile, { readonly: true, fileMustExist: true });
  try {
    const row = db.prepare(`SELECT count(*) AS total, sum(CASE WHEN complete = 1 AND status = 200 AND decision = 'allow' THEN 1 ELSE 0 END) AS ok FROM exchanges WHERE connection = ?`).get(CONNECTION) as { total: number; ok: number | null };
    return { total: row.total, ok: row.ok ?? 0 };
  } finally {
    db.close();
  }
}

/** The recording gateway must have recorded every successful response, through both the admin API and the store. */
async function verifyRecording(gw: GatewayProcess, successes: number): Promise<boolean> {
  let ok = true;
  try {
    const { status, text, page } = await latestSessions(gw);
    const latest = page?.sessions?.[0];
    if (status !== 200 || latest === undefined) {
      ok = false;
      log(`  gateway admin API GET /api/sessions?limit=1: status ${status}, no session: ${text.slice(0, 300)}  FAIL`);
    } else {
      const good = latest.connection === CONNECTION && latest.decision === 'allow' && latest.status === 200 && latest.complete;
      if (!good) ok = false;
      log(`  gateway admin API latest session: ${latest.id} connection ${latest.connection}, subject ${latest.subject}, ${latest.decision}, status ${latest.status}, ${latest.complete ? 'complete' : 'INCOMPLETE'}  ${good ? 'OK' : 'FAIL'}`);
    }
  } catch (error) {
    ok = false;
    log(`  gateway admin API query failed: ${(error as Error).message}  FAIL`);
  }
  try {
    const rows = countExchanges(gw.dbFile);
    const match = rows.ok === successes && successes > 0;
    if (!match) ok = false;
    log(`  gateway store: ${rows.total} exchanges recorded, ${rows.ok} complete with status 200; the bench saw ${successes} successful gateway responses  ${match ? 'OK' : 'MISMATCH'}`);
  } catch (error) {
    ok = false;
    log(`  gateway store query failed: ${(error as Error).message}  FAIL`);
  }
  // The whole tamper-evident chain written under load must verify.
  try {
    const out = await runCli(['audit', 'verify', '--config', gw.configFile], gw.env);
    log(`  gateway audit verify: ${out.trim().split('\n')[0]}  OK`);
  } catch (error) {
    ok = false;
    log(`  gateway audit verify failed: ${(error as Error).message.split('\n').slice(0, 3).join(' ')}  FAIL`);
  }
  return ok;
}

/** How far the background full-text indexer fell behind under load, and that it catches up. */
async function reportSearchBacklog(gw: GatewayProcess, backlog: { max: number; last: number; waited: number }, applyWait: { total: number; max: number; rounds: number }): Promise<void> {
  log(`  gateway store: after each of its ${applyWait.rounds} throughput rounds the bench read the admin API, which applies the record journal first: ` +
    `${(applyWait.total * 1000).toFixed(0)} ms in all (at most ${(applyWait.max * 1000).toFixed(0)} ms), counted in that gateway's throughput`);
  const started = Date.now();
  let now = unindexedRows(gw.dbFile);
  while (now > 0 && Date.now() - started < 120_000) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    now = unindexedRows(gw.dbFile);
  }
  log(`  gateway search index: ${backlog.max} rows at most (${backlog.last} after the last round) waited for the full-text index when a gateway round ended ` +
    `(indexed at background priority, searchable meanwhile; the bench waited ${backlog.waited.toFixed(1)} s in all for it between rounds, not counted); ${now === 0 ? `all indexed ${((Date.now() - started) / 1000).toFixed(1)} s after the checks above` : `${now} still waiting after 120 s`}  ${now === 0 ? 'OK' : 'FAIL'}`);
}

/** The no-recording gateway served traffic but must have recorded none of it. */
async function verifyNothingRecorded(gw: GatewayProcess, successes: number): Promise<boolean> {
  let ok = successes > 0;
  try {
    const { status, text, page } = await latestSessions(gw);
    const none = status === 200 && page?.sessions !== undefined && page.sessions.length === 0;
    if (!none) ok = false;
    log(`  gateway-norec admin API GET /api/sessions?limit=1: status ${status}, ${page?.sessions?.length ?? `unreadable: ${text.slice(0, 300)}`} sessions  ${none ? 'OK' : 'FAIL'}`);
  } catch (error) {
    ok = false;
    log(`  gateway-norec admin API query failed: ${(error as Error).message}  FAIL`);
  }
  try {
    const rows = countExchanges(gw.dbFile);
    if (rows.total !== 0) ok = false;
    log(`  gateway-norec store: ${rows.total} exchanges recorded; the bench saw ${successes} successful responses  ${rows.total === 0 && successes > 0 ? 'OK' : 'FAIL'}`);
  } catch (error) {
    ok = false;
    log(`  gateway-norec store query failed: ${(error as Error).message}  FAIL`);
  }
  return ok;
}

async function main(): Promise<number> {
  if (!existsSync(cli)) throw new Error(`${cli} not found: run \`npm run build\` first (npm run bench does)`);
  const started = Date.now();
  log('Gatehouse HTTP benchmark: direct to the upstream vs through the gateway (recording on) vs through the gateway with recording off');
  log(machine());
  log(`settings   concurrency ${CONCURRENCY}, throughput ${WARMUP_SECONDS} s warm-up + ${SECONDS} s measured per target, ` +
    `sequential latency ${LATENCY_WARMUP_SECONDS} s warm-up + ${LATENCY_SECONDS} s per target, upstream stream delay ${STREAM_DELAY_MS} ms` +
    (GATEWAY_NODE_OPTIONS.length ? `, gateway node flags: ${GATEWAY_NODE_OPTIONS.join(' ')}` : '') +
    (NOREC_NODE_OPTIONS.length ? `, gateway-norec node flags: ${NOREC_NODE_OPTIONS.join(' ')}` : ''));

  // -- temp dir, secrets
  const dir = await mkdtemp(join(os.tmpdir(), 'gatehouse-bench-'));
  registerTempDir(dir);
  const upstreamKey = `bench-upstream-${randomBytes(16).toString('hex')}`;
  const childEnv: NodeJS.ProcessEnv = { ...process.env, BENCH_UPSTREAM_KEY: upstreamKey, BENCH_STREAM_DELAY_MS: String(STREAM_DELAY_MS) };
  delete childEnv['NODE_OPTIONS'];

  // -- 1. upstream in its own process
  const upstream = spawnChild('demo upstream', process.execPath, ['--import', 'tsx', join(root, 'bench', 'upstream-process.ts')], { cwd: root, env: childEnv });
  const [, upstreamLine] = await upstream.waitForLine('stdout', /^(\{.*\})$/, 20_000);
  const { port: upstreamPort } = JSON.parse(upstreamLine!) as { port: number };
  const upstreamOrigin = `http://127.0.0.1:${upstreamPort}`;
  watch(upstream);

  // -- 2. two gateways, each in its own directory (the audit key file sits beside the store)
  await Promise.all(['recording', 'norec'].map((sub) => mkdir(join(dir, sub))));
  const [gateway, norec] = await Promise.all([
    startGateway('gateway', join(dir, 'recording'), true, upstreamOrigin, childEnv, GATEWAY_NODE_OPTIONS),
    startGateway('gateway-norec', join(dir, 'norec'), false, upstreamOrigin, childEnv, NOREC_NODE_OPTIONS),
  ]);
  log(`processes  upstream pid ${upstream.proc.pid} ${upstreamOrigin}, load generator pid ${process.pid}`);
  log(`           gateway pid ${gateway.child.proc.pid} ${gateway.origin} (admin ${gateway.adminOrigin}), recording on`);
  log(`           gateway-norec pid ${norec.child.proc.pid} ${norec.origin} (admin ${norec.adminOrigin}), recording.enabled: false`);
  log(`setup      ${((Date.now() - started) / 1000).toFixed(1)} s`);
  log('');

  // -- 3. load
  const targets: Record<Which, Target> = {
    direct: { name: 'direct', pool: createPool(upstreamOrigin, CONCURRENCY), path: '/v1/chat/completions', authorization: `Bearer ${upstreamKey}`, expectExchangeId: false },
    gateway: { name: 'gateway', pool: createPool(gateway.origin, CONCURRENCY), path: `/c/${CONNECTION}/chat/completions`, authorization: `Bearer ${gateway.clientToken}`, expectExchangeId: true },
    'gateway-norec': { name: 'gateway-norec', pool: createPool(norec.origin, CONCURRENCY), path: `/c/${CONNECTION}/chat/completions`, authorization: `Bearer ${norec.clientToken}`, expectExchangeId: true },
  };

  const pids = { loadgen: process.pid, upstream: upstream.proc.pid, gateway: gateway.child.proc.pid, 'gateway-norec': norec.child.proc.pid };
  const results: ScenarioResult[] = [];
  const allErrors: ErrorLog[] = [];
  const successes = { gateway: 0, 'gateway-norec': 0 };
  const searchBacklog = { max: 0, last: 0, waited: 0 };
  const applyWait = { total: 0, max: 0, rounds: 0 };
  const afterRound = async (which: Which): Promise<number> => {
    if (which !== 'gateway') return 0;
    // A reader of the store (here the admin API's session list) has the journal applied
    // first: when it answers, everything the round recorded is in the store.
    const started = performance.now();
    const { status } = await latestSessions(gateway);
    if (status !== 200) throw new Error(`admin API GET /api/sessions answered ${status} after a round`);
    const applied = (performance.now() - started) / 1000;
    applyWait.total += applied;
    applyWait.max = Math.max(applyWait.max, applied);
    applyWait.rounds += 1;
    // The full-text index runs at background priority: how far behind it is, and it is
    // let finish before the next round, so its work does not land in another target's round.
    searchBacklog.last = unindexedRows(gateway.dbFile);
    searchBacklog.max = Math.max(searchBacklog.max, searchBacklog.last);
    const waitStarted = performance.now();
    for (let left = searchBacklog.last; left > 0 && performance.now() - waitStarted < 10_000; left = unindexedRows(gateway.dbFile)) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    searchBacklog.waited += (performance.now() - waitStarted) / 1000;
    return applied;
  };
  try {
    for (const scenario of SCENARIOS) {
      const r = await runScenario(scenario, targets, pids, afterRound);
      for (const which of TARGETS) allErrors.push(r.throughput[which].errors, r.latency[which].errors);
      for (const which of GATEWAYS) successes[which] += r.throughput[which].okTotal + r.latency[which].okTotal;
      results.push(r);
    }
    if (abort.signal.aborted) throw new Error(childDeath ?? 'interrupted');
  } finally {
    await Promise.all(TARGETS.map((which) => targets[which].pool.close()));
  }

  const dump = process.env['BENCH_DUMP'];
  if (dump) {
    await writeFile(dump, JSON.stringify(Object.fromEntries(results.map((r) => [r.scenario.name, perTarget((which) => r.latency[which].latenciesNs)]))));
    log(`raw sequential samples written to ${dump}`);
  }

  // -- 4. report
  const recordingCost = (t: Record<Which, ThroughputResult>) => 1 - t.gateway.rps / t['gateway-norec'].rps;
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  log('');
  log('Throughput, closed loop c=' + CONCURRENCY + ' ("recording cost" = 1 - gateway / gateway-norec)');
  log('');
  log(table(['scenario', 'direct req/s', 'gateway req/s', 'gateway-norec req/s', 'gateway/direct', 'norec/direct', 'gateway/norec', 'recording cost'], results.map(({ scenario, throughput: t }) => [
    scenario.name,
    fmtRps(t.direct.rps), fmtRps(t.gateway.rps), fmtRps(t['gateway-norec'].rps),
    (t.gateway.rps / t.direct.rps).toFixed(2), (t['gateway-norec'].rps / t.direct.rps).toFixed(2), (t.gateway.rps / t['gateway-norec'].rps).toFixed(2),
    pct(recordingCost(t)),
  ])));
  log('');
  log('Sequential latency (µs; "added" = target - direct at the same percentile)');
  log('');
  log(table(['scenario', 'target', 'p50', 'p90', 'p99', 'added p50', 'added p90', 'added p99', 'ttfb p50', 'added ttfb p50'], results.flatMap(({ scenario, latency: l }) =>
    TARGETS.map((which) => {
      const at = (p: number) => percentile(l[which].latenciesNs, p);
      const added = (p: number) => (which === 'direct' ? '-' : fmtUsSigned(at(p) - percentile(l.direct.latenciesNs, p)));
      const ttfb = percentile(l[which].ttfbNs, 50);
      return [
        scenario.name, which,
        fmtUs(at(50)), fmtUs(at(90)), fmtUs(at(99)),
        added(50), added(90), added(99),
        fmtUs(ttfb), which === 'direct' ? '-' : fmtUsSigned(ttfb - percentile(l.direct.ttfbNs, 50)),
      ];
    }))));
  log('');
  log(`Latency under load, closed loop c=${CONCURRENCY} (µs)`);
  log('');
  log(table(['scenario', 'target', 'p50', 'p99', 'requests'], results.flatMap(({ scenario, throughput: t }) =>
    TARGETS.map((which) => [scenario.name, which, fmtUs(percentile(t[which].latenciesNs, 50)), fmtUs(percentile(t[which].latenciesNs, 99)), String(t[which].completed)]))));

  log('');
  log(`CPU during the closed-loop runs (cores = CPU seconds / wall seconds; µs/req = CPU per successful request of that target; ${os.cpus().length} cores in all)`);
  log('');
  const cores = (c: CpuUse, name: string) => (Number.isNaN(c.cpu[name]!) ? '-' : (c.cpu[name]! / c.wall).toFixed(2));
  const perReq = (c: CpuUse, name: string) => (Number.isNaN(c.cpu[name]!) || c.requests === 0 ? '-' : ((c.cpu[name]! / c.requests) * 1e6).toFixed(0));
  log(table(['scenario', 'target', 'load gen cores', 'upstream cores', 'gateway cores', 'norec cores', 'OTHER cores', 'load gen µs/req', 'upstream µs/req', 'its gateway µs/req'], results.flatMap(({ scenario, cpu }) =>
    TARGETS.map((which) => [
      scenario.name, which,
      cores(cpu[which], 'loadgen'), cores(cpu[which], 'upstream'), cores(cpu[which], 'gateway'), cores(cpu[which], 'gateway-norec'), cores(cpu[which], 'other'),
      perReq(cpu[which], 'loadgen'), perReq(cpu[which], 'upstream'), which === 'direct' ? '-' : perReq(cpu[which], which),
    ]))));

  const busiestOther = Math.max(...results.flatMap(({ cpu }) => TARGETS.map((which) => cpu[which].cpu['other']! / cpu[which].wall)));
  if (busiestOther > 0.15) {
    log('');
    log(`!!! NOISY MACHINE: processes outside the bench used up to ${busiestOther.toFixed(2)} cores during a run; the numbers are skewed — rerun on a quiet machine.`);
  }

  // -- floors (plain chat; recording cost printed for every scenario)
  const plain = results.find((r) => r.scenario.name === 'chat')!;
  const ratio = plain.throughput.gateway.rps / plain.throughput.direct.rps;
  const addedP50 = percentile(plain.latency.gateway.latenciesNs, 50) - percentile(plain.latency.direct.latenciesNs, 50);
  const ratioPass = ratio >= FLOOR_THROUGHPUT_RATIO;
  const latencyPass = us(addedP50) < FLOOR_ADDED_P50_US;
  const cost = recordingCost(plain.throughput);
  log('');
  log('Floors (plain chat)');
  log(`  throughput ratio gateway/direct >= ${FLOOR_THROUGHPUT_RATIO}: ${ratio.toFixed(2)}  ${ratioPass ? 'PASS' : 'FAIL'}`);
  log(`  added p50 latency < ${(FLOOR_ADDED_P50_US / 1000).toFixed(2)} ms: ${(us(addedP50) / 1000).toFixed(2)} ms  ${latencyPass ? 'PASS' : 'FAIL'}`);
  log(`  recording cost (1 - gateway/gateway-norec throughput) <= ${pct(FLOOR_RECORDING_COST)}: ${pct(cost)}  ${cost <= FLOOR_RECORDING_COST ? 'PASS' : 'FAIL'}`);
  for (const r of results.filter((r) => r !== plain)) {
    const c = recordingCost(r.throughput);
    log(`  (for information, ${r.scenario.name}) recording cost: ${pct(c)}, ${c <= FLOOR_RECORDING_COST ? 'within' : 'over'} ${pct(FLOOR_RECORDING_COST)}`);
  }

  // -- 5. recording: the recording gateway recorded everything, the other nothing
  log('');
  log('Recording');
  const recorded = await verifyRecording(gateway, successes.gateway);
  await reportSearchBacklog(gateway, searchBacklog, applyWait);
  const notRecorded = await verifyNothingRecorded(norec, successes['gateway-norec']);
  const recordingOk = recorded && notRecorded;

  // -- errors
  const errorCount = allErrors.reduce((n, e) => n + e.count, 0);
  log('');
  if (errorCount > 0) {
    log('!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!');
    log(`!!! ${errorCount} REQUEST(S) FAILED — the numbers above are NOT valid`);
    for (const sample of allErrors.flatMap((e) => e.samples).slice(0, 10)) log(`!!!   ${sample}`);
    log('!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!');
  } else {
    log('errors     none (every response was 200 with a complete body)');
  }
  if (!recordingOk) log('!!! RECORDING COULD NOT BE VERIFIED — see above');
  for (const gw of [gateway, norec]) {
    if (gw.child.running === false) log(`!!! ${gw.child.name} exited during the run (${gw.child.describeExit()})\n${gw.child.output()}`);
  }

  // -- stop the gateways cleanly (so --cpu-prof profiles get written)
  stopping = true;
  await Promise.all([gateway.child.stop(15_000), norec.child.stop(15_000)]);
  if ([...GATEWAY_NODE_OPTIONS, ...NOREC_NODE_OPTIONS].some((o) => o.startsWith('--cpu-prof'))) log('gateways   stopped; CPU profiles written per --cpu-prof-dir (or the repository root)');
  log(`total      ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return errorCount > 0 || !recordingOk ? 1 : 0;
}

main().then(
  async (code) => {
    stopping = true;
    await cleanupAll();
    process.exit(code);
  },
  async (error: unknown) => {
    stopping = true;
    if (childDeath !== undefined) process.stderr.write(`\n!!! bench FAILED: ${childDeath}\n`);
    else if (!interrupted) process.stderr.write(`\n!!! bench FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    await cleanupAll();
    process.exit(interrupted ? 130 : 1);
  },
);
