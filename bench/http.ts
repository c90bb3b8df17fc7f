// `npm run bench`: HTTP data-plane overhead of the gateway, DIRECT vs THROUGH THE GATEWAY.
//
// 1. the DEMO upstream runs in its own process (bench/upstream-process.ts);
// 2. a temp config + SQLite store, two API keys made with the real CLI, and the real
//    gateway process (`node dist/cli/main.js start`), auth and recording on;
// 3. this process is the load generator (undici keep-alive Pool): a fixed-concurrency
//    closed loop for throughput, then a sequential run (concurrency 1) for latency
//    percentiles, for plain and streamed chat completions, direct and through the
//    gateway with the same parameters. Both are cut into short rounds that alternate
//    direct / gateway (A B B A …) so background noise hits both sides alike; CPU time
//    of every process is read from /proc around each throughput round;
// 4. a table, the floors with PASS/FAIL, and proof that the gateway recorded the
//    exchanges (admin API + a count of rows in the store).
//
// Options (flag or environment variable):
//   --concurrency N   BENCH_CONCURRENCY         closed-loop workers (default 32)
//   --seconds S       BENCH_SECONDS             measured throughput window (default 5)
//   --warmup S        BENCH_WARMUP_SECONDS      throughput warm-up (default 1)
//   --latency-seconds S BENCH_LATENCY_SECONDS   sequential latency window (default 2)
//   --stream-delay-ms N BENCH_STREAM_DELAY_MS   upstream delay between SSE frames (default 0)
//   BENCH_DUMP=FILE              write the raw sequential latency samples (ns, in order) as JSON
//   BENCH_GATEWAY_NODE_OPTIONS   extra node flags for the gateway child, e.g.
//                                "--cpu-prof --cpu-prof-dir=/tmp/gatehouse-prof"
// Exit code: 1 if any request failed or recording could not be verified; 0 otherwise
// (a missed performance floor is printed as FAIL but does not change the exit code).

import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import SQLite from 'better-sqlite3';
import { request } from 'undici';
import { delta, snapshot } from './cpu.js';
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
/** Throughput rounds and latency blocks alternate direct / gateway at this grain. */
const ROUND_SECONDS = 1;
const LATENCY_BLOCK_SECONDS = 0.25;
const LATENCY_MAX_SAMPLES = 50_000;
const STREAM_DELAY_MS = numberOption(flags['stream-delay-ms'], 'BENCH_STREAM_DELAY_MS', 0, 0, 1000);
const GATEWAY_NODE_OPTIONS = (process.env['BENCH_GATEWAY_NODE_OPTIONS'] ?? '').split(/\s+/).filter(Boolean);

const FLOOR_THROUGHPUT_RATIO = 0.25;
const FLOOR_ADDED_P50_US = 1000;

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

interface ScenarioResult {
  readonly scenario: Scenario;
  readonly throughput: Record<'direct' | 'gateway', ThroughputResult>;
  readonly cpu: Record<'direct' | 'gateway', CpuUse>;
  readonly latency: Record<'direct' | 'gateway', LatencyResult>;
}

type Which = 'direct' | 'gateway';
const BOTH: readonly Which[] = ['direct', 'gateway'];
/** A B B A A B …: each target goes first equally often, so drift and order effects cancel. */
const orderOf = (round: number): readonly Which[] => (round % 2 === 0 ? BOTH : [...BOTH].reverse());

function checkAborted(): void {
  if (abort.signal.aborted) throw new Error(childDeath ?? 'interrupted');
}

/**
 * One scenario, direct and through the gateway, same parameters. Both measurements are
 * split into short rounds that alternate between the two targets, so a noisy
 * neighbour or a CPU frequency change hits both sides alike.
 */
async function runScenario(scenario: Scenario, targets: Record<Which, Target>, pids: Record<string, number | undefined>): Promise<ScenarioResult> {
  const rounds = Math.max(1, Math.round(SECONDS / ROUND_SECONDS));
  const roundMs = (SECONDS * 1000) / rounds;
  const throughput = {} as Record<Which, ThroughputResult>;
  const cpu = {} as Record<Which, CpuUse>;
  const latency = {} as Record<Which, LatencyResult>;
  const roundRps: Record<Which, number[]> = { direct: [], gateway: [] };

  // Throughput: warm-up each side, then alternating rounds of the closed loop.
  const tp: Record<Which, { completed: number; okTotal: number; latenciesNs: number[]; errors: ErrorLog; wall: number; cpu: Record<string, number>; roundOk: number }> = {
    direct: { completed: 0, okTotal: 0, latenciesNs: [], errors: new ErrorLog(), wall: 0, cpu: {}, roundOk: 0 },
    gateway: { completed: 0, okTotal: 0, latenciesNs: [], errors: new ErrorLog(), wall: 0, cpu: {}, roundOk: 0 },
  };
  process.stdout.write(`running    ${scenario.name.padEnd(12)} throughput, c=${CONCURRENCY}, ${WARMUP_SECONDS} s warm-up + ${rounds} alternating rounds of ${(roundMs / 1000).toFixed(2)} s per side `);
  for (const which of BOTH) {
    checkAborted();
    const w = await closedLoop(targets[which], scenario, { concurrency: CONCURRENCY, warmupMs: 0, durationMs: WARMUP_SECONDS * 1000, signal: abort.signal, errors: tp[which].errors });
    tp[which].okTotal += w.okTotal;
  }
  for (let round = 0; round < rounds; round++) {
    for (const which of orderOf(round)) {
      checkAborted();
      const before = snapshot(pids);
      const t = await closedLoop(targets[which], scenario, { concurrency: CONCURRENCY, warmupMs: 0, durationMs: roundMs, signal: abort.signal, errors: tp[which].errors });
      const used = delta(before, snapshot(pids));
      const acc = tp[which];
      acc.completed += t.completed;
      acc.okTotal += t.okTotal;
      acc.roundOk += t.okTotal;
      for (const l of t.latenciesNs) acc.latenciesNs.push(l);
      acc.wall += used.wall;
      for (const [name, seconds] of Object.entries(used.cpu)) acc.cpu[name] = (acc.cpu[name] ?? 0) + seconds;
      roundRps[which].push(t.rps);
    }
    process.stdout.write('.');
  }
  log('');
  for (const which of BOTH) {
    const acc = tp[which];
    const seconds = (roundMs * rounds) / 1000;
    throughput[which] = { completed: acc.completed, seconds, rps: acc.completed / seconds, latenciesNs: acc.latenciesNs, errors: acc.errors, okTotal: acc.okTotal };
    // CPU per request over the measured rounds (each round's wall time includes draining its in-flight requests).
    cpu[which] = { wall: acc.wall, cpu: acc.cpu, requests: acc.roundOk };
    const rps = roundRps[which];
    log(`           ${which.padEnd(8)} ${fmtRps(throughput[which].rps)} req/s (rounds ${fmtRps(Math.min(...rps))}–${fmtRps(Math.max(...rps))})${acc.errors.count ? `, ${acc.errors.count} ERRORS` : ''}`);
  }

  // Latency: one request at a time, alternating blocks.
  const blocks = Math.max(2, Math.round(LATENCY_SECONDS / LATENCY_BLOCK_SECONDS));
  const blockMs = (LATENCY_SECONDS * 1000) / blocks;
  const seq: Record<Which, { latenciesNs: number[]; ttfbNs: number[]; okTotal: number; errors: ErrorLog }> = {
    direct: { latenciesNs: [], ttfbNs: [], okTotal: 0, errors: new ErrorLog() },
    gateway: { latenciesNs: [], ttfbNs: [], okTotal: 0, errors: new ErrorLog() },
  };
  process.stdout.write(`running    ${scenario.name.padEnd(12)} sequential latency, ${LATENCY_WARMUP_SECONDS} s warm-up + ${blocks} alternating blocks of ${(blockMs / 1000).toFixed(2)} s per side `);
  for (const which of BOTH) {
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
    if (block % 2 === 1) process.stdout.write('.');
  }
  log('');
  for (const which of BOTH) {
    const acc = seq[which];
    latency[which] = { samples: acc.latenciesNs.length, latenciesNs: acc.latenciesNs, ttfbNs: acc.ttfbNs, errors: acc.errors, okTotal: acc.okTotal };
    log(`           ${which.padEnd(8)} ${acc.latenciesNs.length} samples, p50 ${fmtUs(percentile(acc.latenciesNs, 50))} µs, p99 ${fmtUs(percentile(acc.latenciesNs, 99))} µs${acc.errors.count ? `, ${acc.errors.count} ERRORS` : ''}`);
  }
  return { scenario, throughput, cpu, latency };
}

async function main(): Promise<number> {
  if (!existsSync(cli)) throw new Error(`${cli} not found: run \`npm run build\` first (npm run bench does)`);
  const started = Date.now();
  log('Gatehouse HTTP benchmark: direct to the upstream vs through the gateway');
  log(machine());
  log(`settings   concurrency ${CONCURRENCY}, throughput ${WARMUP_SECONDS} s warm-up + ${SECONDS} s measured, ` +
    `sequential latency ${LATENCY_WARMUP_SECONDS} s warm-up + ${LATENCY_SECONDS} s, upstream stream delay ${STREAM_DELAY_MS} ms` +
    (GATEWAY_NODE_OPTIONS.length ? `, gateway node flags: ${GATEWAY_NODE_OPTIONS.join(' ')}` : ''));

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

  // -- 2. config, keys, gateway
  const configFile = join(dir, 'gatehouse.yaml');
  const dbFile = join(dir, 'gatehouse.db');
  const config = {
    gateway: { listen: { host: '127.0.0.1', port: 0 } },
    admin: { listen: { host: '127.0.0.1', port: 0 }, groups: [ADMIN_GROUP] },
    store: { sqlite: { path: dbFile } },
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
  const clientToken = await createKey(configFile, childEnv, 'bench-client', CLIENT_GROUP);
  const adminToken = await createKey(configFile, childEnv, 'bench-admin', ADMIN_GROUP);

  const gateway: Child = spawnChild('gateway', process.execPath, [...GATEWAY_NODE_OPTIONS, cli, 'start', '--config', configFile], { cwd: root, env: childEnv });
  const ready = await gateway.waitForLine('stderr', /^gatehouse: data plane (\S+?)(?:, admin (\S+))?$/, 20_000);
  watch(gateway);
  const gatewayOrigin = ready[1]!;
  const adminOrigin = ready[2];
  if (adminOrigin === undefined) throw new Error('the gateway did not report an admin listener');
  log(`processes  upstream pid ${upstream.proc.pid} ${upstreamOrigin}, gateway pid ${gateway.proc.pid} ${gatewayOrigin} (admin ${adminOrigin}), load generator pid ${process.pid}`);
  log(`setup      ${((Date.now() - started) / 1000).toFixed(1)} s`);
  log('');

  // -- 3. load
  const pools = {
    direct: createPool(upstreamOrigin, CONCURRENCY),
    gateway: createPool(gatewayOrigin, CONCURRENCY),
  };
  const targets: Record<'direct' | 'gateway', Target> = {
    direct: { name: 'direct', pool: pools.direct, path: '/v1/chat/completions', authorization: `Bearer ${upstreamKey}`, expectExchangeId: false },
    gateway: { name: 'gateway', pool: pools.gateway, path: `/c/${CONNECTION}/chat/completions`, authorization: `Bearer ${clientToken}`, expectExchangeId: true },
  };

  const pids = { loadgen: process.pid, upstream: upstream.proc.pid, gateway: gateway.proc.pid };
  const results: ScenarioResult[] = [];
  const allErrors: ErrorLog[] = [];
  let gatewayOk = 0;
  try {
    for (const scenario of SCENARIOS) {
      const r = await runScenario(scenario, targets, pids);
      allErrors.push(r.throughput.direct.errors, r.throughput.gateway.errors, r.latency.direct.errors, r.latency.gateway.errors);
      gatewayOk += r.throughput.gateway.okTotal + r.latency.gateway.okTotal;
      results.push(r);
    }
    if (abort.signal.aborted) throw new Error(childDeath ?? 'interrupted');
  } finally {
    await Promise.all([pools.direct.close(), pools.gateway.close()]);
  }

  const dump = process.env['BENCH_DUMP'];
  if (dump) {
    await writeFile(dump, JSON.stringify(Object.fromEntries(results.map((r) => [r.scenario.name, { direct: r.latency.direct.latenciesNs, gateway: r.latency.gateway.latenciesNs }]))));
    log(`raw sequential samples written to ${dump}`);
  }

  // -- 4. report
  log('');
  log('Results (latency in microseconds; "added" = gateway - direct)');
  log('');
  const rows = results.map(({ scenario, throughput: t, latency: l }) => {
    const d50 = percentile(l.direct.latenciesNs, 50);
    const g50 = percentile(l.gateway.latenciesNs, 50);
    const d99 = percentile(l.direct.latenciesNs, 99);
    const g99 = percentile(l.gateway.latenciesNs, 99);
    return [
      scenario.name,
      fmtRps(t.direct.rps), fmtRps(t.gateway.rps), (t.gateway.rps / t.direct.rps).toFixed(2),
      fmtUs(d50), fmtUs(g50), fmtUs(d99), fmtUs(g99),
      fmtUsSigned(g50 - d50), fmtUsSigned(g99 - d99),
    ];
  });
  log(table(['scenario', 'direct req/s', 'gateway req/s', 'ratio', 'p50 direct', 'p50 gateway', 'p99 direct', 'p99 gateway', 'added p50', 'added p99'], rows));
  log('');
  log(`Time to first body byte, sequential (µs)`);
  log('');
  log(table(['scenario', 'ttfb p50 direct', 'ttfb p50 gateway', 'added ttfb p50'], results.map(({ scenario, latency: l }) => {
    const d = percentile(l.direct.ttfbNs, 50);
    const g = percentile(l.gateway.ttfbNs, 50);
    return [scenario.name, fmtUs(d), fmtUs(g), fmtUsSigned(g - d)];
  })));
  log('');
  log(`Latency under load, closed loop c=${CONCURRENCY} (µs)`);
  log('');
  log(table(['scenario', 'p50 direct', 'p50 gateway', 'p99 direct', 'p99 gateway', 'requests direct', 'requests gateway'], results.map(({ scenario, throughput: t }) => [
    scenario.name,
    fmtUs(percentile(t.direct.latenciesNs, 50)), fmtUs(percentile(t.gateway.latenciesNs, 50)),
    fmtUs(percentile(t.direct.latenciesNs, 99)), fmtUs(percentile(t.gateway.latenciesNs, 99)),
    String(t.direct.completed), String(t.gateway.completed),
  ])));

  log('');
  log(`CPU during the closed-loop runs (cores = CPU seconds / wall seconds; µs/req = CPU per successful request; ${os.cpus().length} cores in all)`);
  log('');
  const cores = (c: CpuUse, name: string) => (Number.isNaN(c.cpu[name]!) ? '-' : (c.cpu[name]! / c.wall).toFixed(2));
  const perReq = (c: CpuUse, name: string) => (Number.isNaN(c.cpu[name]!) || c.requests === 0 ? '-' : ((c.cpu[name]! / c.requests) * 1e6).toFixed(0));
  log(table(['scenario', 'path', 'load gen cores', 'upstream cores', 'gateway cores', 'OTHER cores', 'load gen µs/req', 'upstream µs/req', 'gateway µs/req'], results.flatMap(({ scenario, cpu }) =>
    (['direct', 'gateway'] as const).map((which) => [
      scenario.name, which,
      cores(cpu[which], 'loadgen'), cores(cpu[which], 'upstream'), cores(cpu[which], 'gateway'), cores(cpu[which], 'other'),
      perReq(cpu[which], 'loadgen'), perReq(cpu[which], 'upstream'), which === 'gateway' ? perReq(cpu[which], 'gateway') : '-',
    ]))));

  const busiestOther = Math.max(...results.flatMap(({ cpu }) => [cpu.direct, cpu.gateway].map((c) => c.cpu['other']! / c.wall)));
  if (busiestOther > 0.15) {
    log('');
    log(`!!! NOISY MACHINE: processes outside the bench used up to ${busiestOther.toFixed(2)} cores during a run; the numbers are skewed — rerun on a quiet machine.`);
  }

  // -- floors (plain chat)
  const plain = results.find((r) => r.scenario.name === 'chat')!;
  const ratio = plain.throughput.gateway.rps / plain.throughput.direct.rps;
  const addedP50 = percentile(plain.latency.gateway.latenciesNs, 50) - percentile(plain.latency.direct.latenciesNs, 50);
  const ratioPass = ratio >= FLOOR_THROUGHPUT_RATIO;
  const latencyPass = us(addedP50) < FLOOR_ADDED_P50_US;
  log('');
  log('Floors (plain chat)');
  log(`  throughput ratio gateway/direct >= ${FLOOR_THROUGHPUT_RATIO}: ${ratio.toFixed(2)}  ${ratioPass ? 'PASS' : 'FAIL'}`);
  log(`  added p50 latency < ${(FLOOR_ADDED_P50_US / 1000).toFixed(2)} ms: ${(us(addedP50) / 1000).toFixed(2)} ms  ${latencyPass ? 'PASS' : 'FAIL'}`);

  // -- 5. recording
  log('');
  log('Recording');
  let recordingOk = true;
  try {
    const res = await request(`${adminOrigin}/api/sessions?limit=1`, { headers: { authorization: `Bearer ${adminToken}` } });
    const text = await res.body.text();
    const page = JSON.parse(text) as { sessions?: Array<{ id: string; connection: string; decision: string; status: number | null; complete: boolean; subject: string | null }> };
    const latest = page.sessions?.[0];
    if (res.statusCode !== 200 || latest === undefined) {
      recordingOk = false;
      log(`  admin API GET /api/sessions?limit=1: status ${res.statusCode}, no session: ${text.slice(0, 300)}  FAIL`);
    } else {
      const good = latest.connection === CONNECTION && latest.decision === 'allow' && latest.status === 200 && latest.complete;
      if (!good) recordingOk = false;
      log(`  admin API latest session: ${latest.id} connection ${latest.connection}, subject ${latest.subject}, ${latest.decision}, status ${latest.status}, ${latest.complete ? 'complete' : 'INCOMPLETE'}  ${good ? 'OK' : 'FAIL'}`);
    }
  } catch (error) {
    recordingOk = false;
    log(`  admin API query failed: ${(error as Error).message}  FAIL`);
  }
  try {
    const db = new SQLite(dbFile, { readonly: true, fileMustExist: true });
    try {
      const row = db.prepare(`SELECT count(*) AS total, sum(CASE WHEN complete = 1 AND status = 200 AND decision = 'allow' THEN 1 ELSE 0 END) AS ok FROM exchanges WHERE connection = ?`).get(CONNECTION) as { total: number; ok: number | null };
      const ok = row.ok ?? 0;
      const match = ok === gatewayOk && gatewayOk > 0;
      if (!match) recordingOk = false;
      log(`  store: ${row.total} exchanges recorded, ${ok} complete with status 200; the bench saw ${gatewayOk} successful gateway responses  ${match ? 'OK' : 'MISMATCH'}`);
    } finally {
      db.close();
    }
  } catch (error) {
    recordingOk = false;
    log(`  store query failed: ${(error as Error).message}  FAIL`);
  }

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
  if (gateway.running === false) log(`!!! the gateway exited during the run (${gateway.describeExit()})\n${gateway.output()}`);

  // -- stop the gateway cleanly (so --cpu-prof profiles get written)
  stopping = true;
  await gateway.stop(15_000);
  if (GATEWAY_NODE_OPTIONS.some((o) => o.startsWith('--cpu-prof'))) log('gateway    stopped; CPU profile written per --cpu-prof-dir (or the repository root)');
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
