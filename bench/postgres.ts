// `npm run bench:postgres`: pgbench select-only (-S), DIRECT to PostgreSQL vs THROUGH
// THE GATEWAY's PostgreSQL listener, in the same run.
//
// 1. a fresh database on the machine's PostgreSQL (GATEHOUSE_TEST_POSTGRES_URL), filled
//    with `pgbench -i`;
// 2. the real gateway process (`node dist/cli/main.js start`) with a `type: postgres`
//    connection: identify at login, policy, libpg-query inspection, masking rules and
//    recording (SQLite, through the record journal) all on, for every statement; logs at
//    `warn` as in bench/http.ts (no per-exchange log line);
// 3. per protocol mode (simple, then prepared): pgbench -S with the same clients and
//    duration, direct, through a bare TCP relay (bench/tcp-relay.ts: what any Node
//    proxy costs here before it does any work), and through the gateway, ROUNDS times
//    interleaved; every run is printed, and the ratio is of the medians (the best of
//    each is printed too), with the CPU time of the relay and gateway processes; a
//    gateway run lasts until its records are applied to the store (read through the
//    admin API, which applies the record journal first), and the full-text index, kept
//    at background priority, is let finish before the next run;
// 4. the 0.5× floor with PASS/FAIL per mode, and proof of recording (rows in the store
//    for the transactions run through the gateway).
//
// Options (environment): BENCH_PG_CLIENTS (default 8), BENCH_PG_SECONDS (default 5),
// BENCH_PG_SCALE (default 1), BENCH_PG_MODES (comma-separated simple | extended |
// prepared, default simple,prepared), BENCH_PG_ROUNDS (default 3),
// BENCH_PG_RECORDING (off: `recording.enabled: false`, to measure what recording costs;
// the recording check is then skipped and the output says so), BENCH_PG_RELAY (0: no
// bare-relay runs),
// BENCH_GATEWAY_NODE_OPTIONS (extra node flags for the gateway process, e.g.
// "--cpu-prof --cpu-prof-dir=/tmp/prof"; summarise with bench/cpuprofile-summary.ts).
// Exit code 1 when a run fails or recording cannot be verified; a missed floor prints FAIL.

import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import SQLite from 'better-sqlite3';
import { createTestPostgresDatabase } from '../test/helpers/databases.js';
import { startGatewayProcess } from '../test/helpers/gateway-process.js';
import { unindexedRows } from './search-backlog.js';
import { freePort, postgresBenchConfig } from './postgres-gateway.js';

const run = promisify(execFile);
const clients = Number(process.env.BENCH_PG_CLIENTS ?? 8);
const seconds = Number(process.env.BENCH_PG_SECONDS ?? 5);
const scale = Number(process.env.BENCH_PG_SCALE ?? 1);
const rounds = Number(process.env.BENCH_PG_ROUNDS ?? 3);
const modes = (process.env.BENCH_PG_MODES ?? 'simple,prepared').split(',').map((m) => m.trim()).filter(Boolean);
const recording = process.env.BENCH_PG_RECORDING !== 'off';
const nodeArgs = (process.env.BENCH_GATEWAY_NODE_OPTIONS ?? '').split(/\s+/).filter(Boolean);
const withRelay = process.env.BENCH_PG_RELAY !== '0';

interface Result {
  readonly tps: number;
  readonly latencyMs: number;
  readonly transactions: number;
  /** CPU (user + system) of the process in the path per transaction, µs: relay and gateway only. */
  cpuUs?: { user: number; system: number } | undefined;
  /** The same for the process's main thread alone (the gateway's relaying thread, without the journal worker). */
  mainCpuUs?: { user: number; system: number } | undefined;
  /** Seconds the gateway took after the run to apply its records to the store (counted in `tps`). */
  applySeconds?: number | undefined;
}

async function pgbench(mode: string, env: NodeJS.ProcessEnv): Promise<Result> {
  const { stdout } = await run('pgbench', ['-S', '-n', '-M', mode, '-c', String(clients), '-j', String(Math.min(clients, 2)), '-T', String(seconds)], { env: { ...process.env, ...env } });
  const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(stdout);
  const latency = /latency average = ([\d.]+) ms/.exec(stdout);
  const done = /number of transactions actually processed: (\d+)/.exec(stdout);
  const failed = /number of failed transactions: (\d+)/.exec(stdout);
  if (!tps || !latency || !done) throw new Error(`cannot read pgbench output:\n${stdout}`);
  if (failed && failed[1] !== '0') throw new Error(`pgbench reported failed transactions:\n${stdout}`);
  return { tps: Number(tps[1]), latencyMs: Number(latency[1]), transactions: Number(done[1]) };
}


/** CPU time (user, system) of a process in ms, from /proc (Linux); undefined elsewhere. */
function cpuMs(pid: number | undefined, mainThread = false): { user: number; system: number } | undefined {
  try {
    // Fields 14 and 15 of /proc/<pid>/stat (utime, stime) in clock ticks; the command name may hold spaces.
    // /proc/<pid>/task/<pid>/stat: the main thread's alone.
    const stat = readFileSync(mainThread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(fields[11]) * 10, system: Number(fields[12]) * 10 };
  } catch {
    return undefined;
  }
}

/**
 * pgbench through a process, with that process's CPU per transaction. `settle`, for the
 * gateway, returns once its records are applied to the store: the run lasts until then,
 * in its TPS and its CPU, so no later run carries this one's work.
 */
async function measured(mode: string, env: NodeJS.ProcessEnv, pid: number | undefined, settle?: () => Promise<void>): Promise<Result> {
  const before = cpuMs(pid);
  const beforeMain = cpuMs(pid, true);
  let result = await pgbench(mode, env);
  if (settle) {
    const started = performance.now();
    await settle();
    const applySeconds = (performance.now() - started) / 1000;
    result = { ...result, tps: result.transactions / (result.transactions / result.tps + applySeconds), applySeconds };
  }
  const after = cpuMs(pid);
  const afterMain = cpuMs(pid, true);
  const perTransaction = (a: { user: number; system: number }, b: { user: number; system: number }) => ({ user: ((b.user - a.user) * 1000) / result.transactions, system: ((b.system - a.system) * 1000) / result.transactions });
  if (before && after) result.cpuUs = perTransaction(before, after);
  if (beforeMain && afterMain) result.mainCpuUs = perTransaction(beforeMain, afterMain);
  return result;
}

/** Starts bench/tcp-relay.ts toward the database; its port and a stop function. */
async function startRelay(host: string, port: string): Promise<{ port: number; pid: number | undefined; stop(): void }> {
  const child = spawn(process.execPath, ['--import', 'tsx', new URL('./tcp-relay.ts', import.meta.url).pathname, host, port], { stdio: ['ignore', 'pipe', 'inherit'] });
  const relayPort = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    child.once('exit', (code) => reject(new Error(`tcp-relay exited with ${code}`)));
  });
  return { port: relayPort, pid: child.pid, stop: () => child.kill('SIGTERM') };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<number> {
  try {
    await run('pgbench', ['--version']);
  } catch {
    process.stderr.write('bench:postgres: pgbench is not installed (postgresql-contrib); nothing to measure\n');
    return 1;
  }
  const database = await createTestPostgresDatabase();
  if ('skip' in database) {
    process.stderr.write(`bench:postgres: ${database.skip}\n`);
    return 1;
  }
  const url = new URL(database.url);
  const dbname = url.pathname.slice(1);
  const direct = { PGHOST: url.hostname, PGPORT: url.port || '5432', PGUSER: url.username || 'postgres', PGDATABASE: dbname, PGSSLMODE: 'disable' };
  const port = await freePort();
  const gateway = await startGatewayProcess(
    postgresBenchConfig({ port, databaseHost: url.host, database: dbname, user: direct.PGUSER, recording }),
    { env: { PG_SECRET: url.password || 'unused' }, nodeArgs },
  );
  let relay: Awaited<ReturnType<typeof startRelay>> | undefined;
  try {
    process.stderr.write(`bench:postgres: gateway pid ${gateway.child.pid}, postgres listener 127.0.0.1:${port}\n`);
    const token = await gateway.createKey('bench', ['bench']);
    const adminToken = await gateway.createKey('bench-admin', ['admins']);
    const storeFile = join(gateway.dir, 'gatehouse.db');
    const searchIndex = { max: 0, waited: 0 };
    // The admin API applies the record journal before it answers a read.
    const settle = async () => {
      const res = await fetch(`${gateway.adminUrl}/api/sessions?limit=1`, { headers: { authorization: `Bearer ${adminToken}` } });
      await res.text();
      if (res.status !== 200) throw new Error(`admin API GET /api/sessions answered ${res.status} after a run`);
    };
    // The full-text index runs at background priority: let it finish before the next run (not counted), and say how far behind it was.
    const waitForSearchIndex = async () => {
      const started = performance.now();
      for (let left = unindexedRows(storeFile); left > 0; left = unindexedRows(storeFile)) {
        searchIndex.max = Math.max(searchIndex.max, left);
        if (performance.now() - started > 30_000) throw new Error(`${left} rows still wait for the full-text index after 30 s`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      searchIndex.waited += (performance.now() - started) / 1000;
    };
    const proxied = { PGHOST: '127.0.0.1', PGPORT: String(port), PGUSER: 'bench', PGDATABASE: dbname, PGPASSWORD: token, PGSSLMODE: 'disable' };

    relay = withRelay ? await startRelay(direct.PGHOST, direct.PGPORT) : undefined;
    const relayed = relay ? { ...direct, PGHOST: '127.0.0.1', PGPORT: String(relay.port) } : undefined;
    process.stderr.write(`bench:postgres: pgbench -i -s ${scale} …\n`);
    await run('pgbench', ['-i', '-q', '-s', String(scale)], { env: { ...process.env, ...direct } });
    const lines = [
      `pgbench -S, ${clients} clients, ${seconds} s per run, scale ${scale}, ${rounds} interleaved rounds per mode; ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}` +
        (recording ? '' : '; RECORDING OFF (recording.enabled: false)') +
        (nodeArgs.length ? `; gateway node flags: ${nodeArgs.join(' ')}` : ''),
      '',
      '| mode | path | median TPS | best TPS | mean latency at median (ms) | runs (TPS) |',
      '| --- | --- | ---: | ---: | ---: | --- |',
    ];
    const verdicts: string[] = [];
    let gatewayTransactions = 0;
    for (const mode of modes) {
      const runs: { direct: Result[]; relay: Result[]; gateway: Result[] } = { direct: [], relay: [], gateway: [] };
      for (let round = 0; round < rounds; round++) {
        process.stderr.write(`bench:postgres: ${mode} round ${round + 1}: direct …\n`);
        runs.direct.push(await pgbench(mode, direct));
        if (relay && relayed) {
          process.stderr.write(`bench:postgres: ${mode} round ${round + 1}: through the bare relay …\n`);
          runs.relay.push(await measured(mode, relayed, relay.pid));
        }
        process.stderr.write(`bench:postgres: ${mode} round ${round + 1}: through the gateway …\n`);
        runs.gateway.push(await measured(mode, proxied, gateway.child.pid, recording ? settle : undefined));
        if (recording) await waitForSearchIndex();
      }
      gatewayTransactions += runs.gateway.reduce((n, r) => n + r.transactions, 0);
      const row = (path: string, rs: Result[]) => {
        const m = median(rs.map((r) => r.tps));
        const atMedian = rs.find((r) => r.tps === m)!;
        return `| ${mode} | ${path} | ${m.toFixed(0)} | ${Math.max(...rs.map((r) => r.tps)).toFixed(0)} | ${atMedian.latencyMs.toFixed(3)} | ${rs.map((r) => r.tps.toFixed(0)).join(', ')} |`;
      };
      lines.push(row('direct', runs.direct));
      if (runs.relay.length > 0) lines.push(row('bare TCP relay (reference)', runs.relay));
      lines.push(row('through the gateway', runs.gateway));
      const ratio = median(runs.gateway.map((r) => r.tps)) / median(runs.direct.map((r) => r.tps));
      const perRound = runs.gateway.map((g, i) => (g.tps / runs.direct[i]!.tps).toFixed(2)).join(', ');
      verdicts.push(`${mode}: gateway / direct ${ratio.toFixed(2)}× (medians; per round ${perRound}); floor 0.50×: ${ratio >= 0.5 ? 'PASS' : 'FAIL'}`);
      if (runs.relay.length > 0) {
        const relayRatio = median(runs.relay.map((r) => r.tps)) / median(runs.direct.map((r) => r.tps));
        verdicts.push(`${mode}: bare relay / direct ${relayRatio.toFixed(2)}× (what the machine allows any Node proxy)`);
      }
      const cpu = (rs: Result[], main = false) => rs.map((r) => (main ? r.mainCpuUs : r.cpuUs)).filter((c) => c !== undefined).map((c) => `${c.user.toFixed(0)} + ${c.system.toFixed(0)}`).join(', ');
      if (cpu(runs.relay)) verdicts.push(`${mode}: bare relay process CPU per transaction (user + system, µs, per run): ${cpu(runs.relay)}`);
      if (cpu(runs.gateway)) verdicts.push(`${mode}: gateway process CPU per transaction (user + system, µs, per run): ${cpu(runs.gateway)}`);
      if (cpu(runs.gateway, true)) verdicts.push(`${mode}: of which the gateway's main (relaying) thread (user + system, µs, per run): ${cpu(runs.gateway, true)}`);
      if (recording) verdicts.push(`${mode}: after each gateway run, applying its records to the store took (ms, counted in its TPS): ${runs.gateway.map((r) => ((r.applySeconds ?? 0) * 1000).toFixed(0)).join(', ')}`);
    }
    lines.push('', ...verdicts);

    let ok = true;
    if (recording) {
      // Records reach the SQLite file from the record journal in batches; a CLI read applies what is pending.
      await gateway.cli(['sessions', 'list', '--limit', '1']);
      const store = new SQLite(join(gateway.dir, 'gatehouse.db'), { readonly: true });
      const recorded = (store.prepare("select count(*) as n from exchanges where protocol = 'postgres' and operation = 'sql.select'").get() as { n: number }).n;
      store.close();
      ok = recorded >= gatewayTransactions;
      lines.push(`recorded: ${recorded} sql.select exchanges for ${gatewayTransactions} transactions through the gateway (${ok ? 'OK' : 'MISSING'})`);
      lines.push(`full-text index (background priority): at most ${searchIndex.max} rows behind after a gateway run; the bench waited ${searchIndex.waited.toFixed(1)} s in all for it between runs (not counted)`);
    } else {
      lines.push('recorded: not checked (recording off)');
    }
    process.stdout.write(`${lines.join('\n')}\n`);
    return ok ? 0 : 1;
  } finally {
    relay?.stop();
    await gateway.stop();
    await database.drop();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench:postgres: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
