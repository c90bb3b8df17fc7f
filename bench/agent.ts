// `npm run bench:agent`: what the egress-only agent adds, in the same run:
//   GATEWAY DIRECT  caller -> gateway -> upstream (the gateway's local forwarder)
//   THROUGH AGENT   caller -> gateway -> HTTP/2+TLS tunnel -> agent process -> upstream
// Real processes: the DEMO upstream (bench/upstream-process.ts), `gatehouse start` with
// two connections to the same upstream (one `target:`, one `via: agent:bench`), and
// `gatehouse agent`; this process is the load generator (bench/load.ts). Auth and
// recording are on for both paths, so the difference is the tunnel and the agent.
//
// PostgreSQL, same processes: `pgbench -S` against a fresh database on the machine's
// PostgreSQL through two `type: postgres` connections of the gateway, one reaching the
// database itself, one `via: agent:bench` (the agent logs in and relays), alternated
// over two rounds; plus pgbench straight to PostgreSQL as a reference. Skipped, saying
// why, when pgbench or PostgreSQL is missing.
//
// Options (environment): BENCH_CONCURRENCY (16), BENCH_SECONDS (5),
// BENCH_WARMUP_SECONDS (1), BENCH_LATENCY_SECONDS (2); BENCH_PG_CLIENTS (4),
// BENCH_PG_SECONDS (5), BENCH_PG=0 to skip the PostgreSQL part.
// Exit code 1 if any request or transaction failed.

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createTestPostgresDatabase } from '../test/helpers/databases.js';
import { makeTestPki } from '../test/helpers/tls.js';
import { cleanupAll, cleanupSync, registerTempDir, spawnChild } from './children.js';
import { closedLoop, createPool, percentile, sequential, type LatencyResult, type Scenario, type Target, type ThroughputResult } from './load.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = join(root, 'dist', 'cli', 'main.js');
const env = (name: string, fallback: number) => (process.env[name] ? Number(process.env[name]) : fallback);
const CONCURRENCY = env('BENCH_CONCURRENCY', 16);
const SECONDS = env('BENCH_SECONDS', 5);
const WARMUP_SECONDS = env('BENCH_WARMUP_SECONDS', 1);
const LATENCY_SECONDS = env('BENCH_LATENCY_SECONDS', 2);
const PG_CLIENTS = env('BENCH_PG_CLIENTS', 4);
const PG_SECONDS = env('BENCH_PG_SECONDS', 5);
const run = promisify(execFile);

const PROMPT = { model: 'demo-chat', messages: [{ role: 'user', content: 'Summarise the quarterly report in three bullet points' }] };
const SCENARIOS: readonly Scenario[] = [
  { name: 'chat', body: JSON.stringify(PROMPT), stream: false },
  { name: 'chat-stream', body: JSON.stringify({ ...PROMPT, stream: true }), stream: true },
];
const PATHS = ['gateway-direct', 'through-agent'] as const;
type Path = (typeof PATHS)[number];

const abort = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    abort.abort();
    void cleanupAll().finally(() => process.exit(130));
  });
}
process.on('exit', cleanupSync);
const log = (line: string) => process.stdout.write(`${line}\n`);
const fmtUs = (ns: number) => (Number.isNaN(ns) ? '-' : (ns / 1000).toFixed(0));
const signedUs = (ns: number) => `${ns >= 0 ? '+' : ''}${(ns / 1000).toFixed(0)}`;

async function cliJson(args: readonly string[], childEnv: NodeJS.ProcessEnv): Promise<{ token: string }> {
  const child = spawnChild(`gatehouse ${args[0]}`, process.execPath, [cli, ...args], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.proc.stdout!.on('data', (s: string) => (out += s));
  await child.exited;
  if (child.proc.exitCode !== 0) throw new Error(`gatehouse ${args.join(' ')} failed\n${child.output()}`);
  return JSON.parse(out) as { token: string };
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

async function main(): Promise<number> {
  if (!existsSync(cli)) throw new Error(`${cli} not found: run \`npm run build\` first (npm run bench:agent does)`);
  const cpus = os.cpus();
  log('Gatehouse agent benchmark: through the gateway directly vs through an agent');
  log(`machine    ${cpus.length} x ${cpus[0]?.model.trim() ?? 'unknown'}, node ${process.version}, load avg ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  log(`settings   concurrency ${CONCURRENCY}, throughput ${WARMUP_SECONDS} s warm-up + ${SECONDS} s measured, sequential latency ${LATENCY_SECONDS} s`);

  const pg = process.env['BENCH_PG'] === '0' ? { skip: 'BENCH_PG=0' } : await preparePostgres();
  if ('skip' in pg) log(`postgres   skipped: ${pg.skip}`);
  try {
    return await benchAll(pg);
  } finally {
    if (!('skip' in pg)) await pg.drop();
  }
}

async function benchAll(pg: PostgresBench | { skip: string }): Promise<number> {
  const dir = await mkdtemp(join(os.tmpdir(), 'gatehouse-bench-agent-'));
  registerTempDir(dir);
  const pki = makeTestPki();
  registerTempDir(pki.dir);
  const upstreamKey = `bench-upstream-${randomBytes(16).toString('hex')}`;
  const childEnv: NodeJS.ProcessEnv = { ...process.env, BENCH_UPSTREAM_KEY: upstreamKey, BENCH_PG_SECRET: 'password' in pg ? pg.password : '', BENCH_STREAM_DELAY_MS: '0', GATEHOUSE_LOG_LEVEL: 'warn' };
  delete childEnv['NODE_OPTIONS'];

  const upstream = spawnChild('demo upstream', process.execPath, ['--import', 'tsx', join(root, 'bench', 'upstream-process.ts')], { cwd: root, env: childEnv });
  const [, upstreamLine] = await upstream.waitForLine('stdout', /^(\{.*\})$/, 20_000);
  const upstreamUrl = (JSON.parse(upstreamLine!) as { url: string }).url;

  const configFile = join(dir, 'gatehouse.yaml');
  const config = {
    gateway: { listen: { host: '127.0.0.1', port: 0 } },
    admin: { listen: { host: '127.0.0.1', port: 0 }, groups: ['bench-admins'] },
    store: { sqlite: { path: join(dir, 'gatehouse.db') } },
    log: { level: 'warn' },
    agents: { listen: { host: '127.0.0.1', port: 0 }, tls: { cert: `file:${pki.certPath}`, key: `file:${pki.keyPath}` } },
    connections: [
      { name: 'direct', type: 'openai', target: upstreamUrl, credential: { secret: '${BENCH_UPSTREAM_KEY}' }, access: { groups: ['bench-users'] } },
      { name: 'tunnel', type: 'openai', via: 'agent:bench', access: { groups: ['bench-users'] } },
      ...('skip' in pg
        ? []
        : [
            { name: 'pgdirect', type: 'postgres', listen: { host: '127.0.0.1', port: 0 }, allowPlaintext: true, target: pg.target, credential: { user: pg.user, secret: '${BENCH_PG_SECRET}' }, tls: { mode: 'disable' }, access: { groups: ['bench-users'] } },
            { name: 'pgagent', type: 'postgres', via: 'agent:bench', listen: { host: '127.0.0.1', port: 0 }, allowPlaintext: true, access: { groups: ['bench-users'] } },
          ]),
    ],
  };
  await writeFile(configFile, `${JSON.stringify(config, null, 2)}\n`); // JSON is YAML
  const { token: clientToken } = await cliJson(['keys', 'create', '--config', configFile, '--name', 'bench-client', '--groups', 'bench-users', '--json'], childEnv);
  const { token: agentToken } = await cliJson(['keys', 'create', '--config', configFile, '--name', 'bench-agent', '--kind', 'agent', '--groups', 'agent:bench', '--json'], childEnv);
  await writeFile(join(dir, 'agent.key'), agentToken, { mode: 0o600 });
  const agentConfig = join(dir, 'agent.yaml');
  const agentConnections = [
    { name: 'tunnel', target: upstreamUrl, credential: { secret: '${BENCH_UPSTREAM_KEY}' } },
    ...('skip' in pg ? [] : [{ name: 'pgagent', type: 'postgres', target: pg.target, credential: { user: pg.user, secret: '${BENCH_PG_SECRET}' }, tls: { mode: 'disable' } }]),
  ];
  await writeFile(agentConfig, `${JSON.stringify({ name: 'bench', concurrency: 1024, connections: agentConnections }, null, 2)}\n`);

  const gateway = spawnChild('gateway', process.execPath, [cli, 'start', '--config', configFile], { cwd: root, env: childEnv });
  // Every line awaited at once: waitForLine sees only output that arrives after it is called.
  const [agentLine, ready, pgDirectLine, pgAgentLine] = await Promise.all([
    gateway.waitForLine('stderr', /^gatehouse: agent endpoint (\S+)$/, 20_000),
    gateway.waitForLine('stderr', /^gatehouse: data plane (\S+?)(?:, admin (\S+))?$/, 20_000),
    'skip' in pg ? undefined : gateway.waitForLine('stderr', /^gatehouse: postgres connection pgdirect on \S+:(\d+)$/, 20_000),
    'skip' in pg ? undefined : gateway.waitForLine('stderr', /^gatehouse: postgres connection pgagent on \S+:(\d+)$/, 20_000),
  ]);
  const agent = spawnChild('agent', process.execPath, [cli, 'agent', '--gateway', agentLine[1]!, '--key', `file:${join(dir, 'agent.key')}`, '--ca', pki.caPath, '--config', agentConfig], { cwd: root, env: childEnv });
  await agent.waitForLine('stderr', /^gatehouse agent: connected to /, 20_000);
  log(`processes  upstream pid ${upstream.proc.pid}, gateway pid ${gateway.proc.pid}, agent pid ${agent.proc.pid}, load generator pid ${process.pid}`);
  log('');

  const pool = createPool(ready[1]!, CONCURRENCY);
  const targets: Record<Path, Target> = {
    'gateway-direct': { name: 'gateway-direct', pool, path: '/c/direct/chat/completions', authorization: `Bearer ${clientToken}`, expectExchangeId: true },
    'through-agent': { name: 'through-agent', pool, path: '/c/tunnel/chat/completions', authorization: `Bearer ${clientToken}`, expectExchangeId: true },
  };
  const rows: string[][] = [];
  let errors = 0;
  try {
    for (const scenario of SCENARIOS) {
      const t = {} as Record<Path, ThroughputResult>;
      const l = {} as Record<Path, LatencyResult>;
      for (const path of PATHS) {
        t[path] = await closedLoop(targets[path], scenario, { concurrency: CONCURRENCY, warmupMs: WARMUP_SECONDS * 1000, durationMs: SECONDS * 1000, signal: abort.signal });
        log(`ran        ${scenario.name.padEnd(12)} ${path.padEnd(15)} throughput ${t[path].rps.toFixed(0)} req/s${t[path].errors.count ? `, ${t[path].errors.count} ERRORS: ${t[path].errors.samples.join(' | ')}` : ''}`);
      }
      for (const path of PATHS) {
        l[path] = await sequential(targets[path], scenario, { warmupMs: 500, durationMs: LATENCY_SECONDS * 1000, maxSamples: 50_000, signal: abort.signal });
        log(`ran        ${scenario.name.padEnd(12)} ${path.padEnd(15)} sequential p50 ${fmtUs(percentile(l[path].latenciesNs, 50))} µs${l[path].errors.count ? `, ${l[path].errors.count} ERRORS` : ''}`);
      }
      for (const path of PATHS) errors += t[path].errors.count + l[path].errors.count;
      const d50 = percentile(l['gateway-direct'].latenciesNs, 50);
      const a50 = percentile(l['through-agent'].latenciesNs, 50);
      const d99 = percentile(l['gateway-direct'].latenciesNs, 99);
      const a99 = percentile(l['through-agent'].latenciesNs, 99);
      rows.push([
        scenario.name,
        t['gateway-direct'].rps.toFixed(0), t['through-agent'].rps.toFixed(0), (t['through-agent'].rps / t['gateway-direct'].rps).toFixed(2),
        fmtUs(d50), fmtUs(a50), signedUs(a50 - d50), fmtUs(d99), fmtUs(a99), signedUs(a99 - d99),
        fmtUs(percentile(t['gateway-direct'].latenciesNs, 50)), fmtUs(percentile(t['through-agent'].latenciesNs, 50)),
      ]);
    }
  } finally {
    await pool.close();
  }
  log('');
  log(`Results (latency in µs; "added" = through agent - gateway direct; "loaded p50" = closed loop c=${CONCURRENCY})`);
  log('');
  log(table(['scenario', 'direct req/s', 'agent req/s', 'ratio', 'p50 direct', 'p50 agent', 'added p50', 'p99 direct', 'p99 agent', 'added p99', 'loaded p50 direct', 'loaded p50 agent'], rows));
  log('');

  if (!('skip' in pg)) errors += await benchPostgres(pg, { direct: Number(pgDirectLine![1]), agent: Number(pgAgentLine![1]) }, clientToken);
  log(errors === 0 ? 'errors     none' : `errors     ${errors} FAILED REQUESTS`);
  return errors === 0 ? 0 : 1;
}

interface PostgresBench {
  readonly target: string;
  readonly user: string;
  readonly password: string;
  readonly direct: NodeJS.ProcessEnv;
  drop(): Promise<void>;
}

/** A fresh database filled by `pgbench -i`, or why the PostgreSQL part cannot run. */
async function preparePostgres(): Promise<PostgresBench | { skip: string }> {
  try {
    await run('pgbench', ['--version']);
  } catch {
    return { skip: 'pgbench is not installed (postgresql-contrib)' };
  }
  const database = await createTestPostgresDatabase();
  if ('skip' in database) return database;
  const url = new URL(database.url);
  const direct = { PGHOST: url.hostname, PGPORT: url.port || '5432', PGUSER: decodeURIComponent(url.username) || 'postgres', PGPASSWORD: decodeURIComponent(url.password), PGDATABASE: url.pathname.slice(1), PGSSLMODE: 'disable' };
  try {
    await run('pgbench', ['-i', '-q', '-s', '1'], { env: { ...process.env, ...direct } });
  } catch (error) {
    await database.drop();
    throw error;
  }
  return { target: `postgres://${url.host}${url.pathname}`, user: direct.PGUSER, password: direct.PGPASSWORD || 'unused', direct, drop: () => database.drop() };
}

interface PgbenchResult {
  readonly tps: number;
  readonly latencyMs: number;
  readonly failed: number;
}

async function pgbench(envs: NodeJS.ProcessEnv): Promise<PgbenchResult> {
  const { stdout } = await run('pgbench', ['-S', '-n', '-c', String(PG_CLIENTS), '-j', String(Math.min(PG_CLIENTS, 2)), '-T', String(PG_SECONDS)], { env: { ...process.env, ...envs } });
  const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(stdout);
  const latency = /latency average = ([\d.]+) ms/.exec(stdout);
  const failed = /number of failed transactions: (\d+)/.exec(stdout);
  if (!tps || !latency) throw new Error(`cannot read pgbench output:\n${stdout}`);
  return { tps: Number(tps[1]), latencyMs: Number(latency[1]), failed: Number(failed?.[1] ?? 0) };
}

/** pgbench -S: straight to PostgreSQL (reference), then gateway direct and through the agent, alternated, two rounds. */
async function benchPostgres(pg: PostgresBench, ports: { direct: number; agent: number }, token: string): Promise<number> {
  log(`postgres   pgbench -S, ${PG_CLIENTS} clients, ${PG_SECONDS} s per run, scale 1, two rounds`);
  const through = (port: number, database: string) => ({ PGHOST: '127.0.0.1', PGPORT: String(port), PGUSER: 'bench-client', PGPASSWORD: token, PGDATABASE: database, PGSSLMODE: 'disable' });
  const paths = { postgres: pg.direct, 'gateway-direct': through(ports.direct, 'pgdirect'), 'through-agent': through(ports.agent, 'pgagent') } as const;
  const results: Record<keyof typeof paths, PgbenchResult[]> = { postgres: [], 'gateway-direct': [], 'through-agent': [] };
  for (let round = 0; round < 2; round++) {
    for (const path of Object.keys(paths) as (keyof typeof paths)[]) {
      const r = await pgbench(paths[path]);
      results[path].push(r);
      log(`ran        pgbench -S   ${path.padEnd(15)} ${r.tps.toFixed(0)} TPS, mean latency ${r.latencyMs.toFixed(3)} ms${r.failed ? `, ${r.failed} FAILED` : ''}`);
    }
  }
  const best = (rs: PgbenchResult[]) => rs.reduce((a, b) => (b.tps > a.tps ? b : a));
  const d = best(results['gateway-direct']);
  const a = best(results['through-agent']);
  log('');
  log(`Results, PostgreSQL (best of 2 runs each; "added" = through agent - gateway direct, per transaction)`);
  log('');
  log(table(['path', 'TPS', 'mean latency ms', 'runs (TPS)'], (Object.keys(paths) as (keyof typeof paths)[]).map((path) => [path, best(results[path]).tps.toFixed(0), best(results[path]).latencyMs.toFixed(3), results[path].map((r) => r.tps.toFixed(0)).join(', ')])));
  log('');
  log(`agent / gateway direct: ${(a.tps / d.tps).toFixed(2)}x TPS, added mean latency ${((a.latencyMs - d.latencyMs) * 1000).toFixed(0)} µs`);
  log('');
  return Object.values(results).flat().reduce((n, r) => n + r.failed, 0);
}

main().then(
  async (code) => {
    await cleanupAll();
    process.exit(code);
  },
  async (error: unknown) => {
    process.stderr.write(`bench:agent failed: ${(error as Error).stack ?? String(error)}\n`);
    await cleanupAll();
    process.exit(1);
  },
);
