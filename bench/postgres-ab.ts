// Paired A/B of two builds' PostgreSQL path through the real gateway process, recording
// on: `pgbench -S` direct, through gateway A and through gateway B (each started from
// its own dist/, same config as bench/postgres.ts), alternated round by round (the
// order of A and B reversed every other round), so the machine's load moves both alike.
// Per round and build: TPS (the time to apply its records to the store counted, as in
// bench:postgres), TPS / the round's direct TPS, and the gateway's CPU per transaction,
// whole process and main (relaying) thread. Prints the medians of the per-round
// ratios B / A.
//
//   node --import tsx bench/postgres-ab.ts --dist /tmp/old/dist --dist dist
//
// Options (environment): BENCH_PG_CLIENTS (8), BENCH_PG_SECONDS (5), BENCH_PG_ROUNDS (6),
// BENCH_PG_MODES (simple,prepared). Each dist needs a package.json and node_modules
// beside it (cp package.json; ln -s …/node_modules).

import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import SQLite from 'better-sqlite3';
import { createTestPostgresDatabase } from '../test/helpers/databases.js';
import { startGatewayProcess, type GatewayProcess } from '../test/helpers/gateway-process.js';
import { freePort, postgresBenchConfig } from './postgres-gateway.js';

const run = promisify(execFile);
const clients = Number(process.env.BENCH_PG_CLIENTS ?? 8);
const seconds = Number(process.env.BENCH_PG_SECONDS ?? 5);
const rounds = Number(process.env.BENCH_PG_ROUNDS ?? 6);
const modes = (process.env.BENCH_PG_MODES ?? 'simple,prepared').split(',').map((m) => m.trim()).filter(Boolean);

const dists: string[] = [];
for (let i = 2; i < process.argv.length; i++) if (process.argv[i] === '--dist') dists.push(resolve(process.argv[++i]!));
if (dists.length !== 2) {
  process.stderr.write('usage: bench/postgres-ab.ts --dist A/dist --dist B/dist\n');
  process.exit(2);
}

interface Result { tps: number; transactions: number; cpu: number; main: number; worker: number }

async function pgbench(mode: string, env: NodeJS.ProcessEnv): Promise<{ tps: number; transactions: number }> {
  const { stdout } = await run('pgbench', ['-S', '-n', '-M', mode, '-c', String(clients), '-j', String(Math.min(clients, 2)), '-T', String(seconds)], { env: { ...process.env, ...env } });
  const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(stdout);
  const done = /number of transactions actually processed: (\d+)/.exec(stdout);
  const failed = /number of failed transactions: (\d+)/.exec(stdout);
  if (!tps || !done) throw new Error(`cannot read pgbench output:\n${stdout}`);
  if (failed && failed[1] !== '0') throw new Error(`pgbench reported failed transactions:\n${stdout}`);
  return { tps: Number(tps[1]), transactions: Number(done[1]) };
}

function cpuMs(pid: number, mainThread: boolean): number {
  const stat = readFileSync(mainThread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** CPU ms of each of the process's threads, by thread id. */
function threadCpuMs(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(tid, (Number(fields[11]) + Number(fields[12])) * 10);
    } catch {
      // the thread ended
    }
  }
  return out;
}


const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

interface Gate { gateway: GatewayProcess; env: NodeJS.ProcessEnv; settle: () => Promise<void>; pid: number; transactions: number }

async function startGate(dist: string, target: URL, dbname: string, user: string): Promise<Gate> {
  const port = await freePort();
  const gateway = await startGatewayProcess(
    postgresBenchConfig({ port, databaseHost: target.host, database: dbname, user, recording: true }),
    { env: { PG_SECRET: target.password || 'unused' }, bin: join(dist, 'cli/main.js') },
  );
  const token = await gateway.createKey('bench', ['bench']);
  const adminToken = await gateway.createKey('bench-admin', ['admins']);
  const settle = async () => {
    const res = await fetch(`${gateway.adminUrl}/api/sessions?limit=1`, { headers: { authorization: `Bearer ${adminToken}` } });
    await res.text();
    if (res.status !== 200) throw new Error(`admin API answered ${res.status}`);
  };
  return { gateway, settle, pid: gateway.child.pid!, transactions: 0, env: { PGHOST: '127.0.0.1', PGPORT: String(port), PGUSER: 'bench', PGDATABASE: dbname, PGPASSWORD: token, PGSSLMODE: 'disable' } };
}

async function measure(gate: Gate, mode: string): Promise<Result> {
  const cpu0 = cpuMs(gate.pid, false);
  const main0 = cpuMs(gate.pid, true);
  const threads0 = threadCpuMs(gate.pid);
  const r = await pgbench(mode, gate.env);
  const started = performance.now();
  await gate.settle();
  const apply = (performance.now() - started) / 1000;
  const cpu = cpuMs(gate.pid, false) - cpu0;
  const main = cpuMs(gate.pid, true) - main0;
  // The journal worker: the thread other than the main one that used the most CPU in the run.
  let worker = 0;
  for (const [tid, ms] of threadCpuMs(gate.pid)) if (tid !== String(gate.pid)) worker = Math.max(worker, ms - (threads0.get(tid) ?? 0));
  gate.transactions += r.transactions;
  // Let the background full-text index catch up before the next run (not counted).
  await new Promise((res) => setTimeout(res, 1500));
  return { tps: r.transactions / (r.transactions / r.tps + apply), transactions: r.transactions, cpu: (cpu * 1000) / r.transactions, main: (main * 1000) / r.transactions, worker: (worker * 1000) / r.transactions };
}

async function main(): Promise<void> {
  const database = await createTestPostgresDatabase();
  if ('skip' in database) throw new Error(database.skip);
  const url = new URL(database.url);
  const dbname = url.pathname.slice(1);
  const direct = { PGHOST: url.hostname, PGPORT: url.port || '5432', PGUSER: url.username || 'postgres', PGDATABASE: dbname, PGSSLMODE: 'disable' };
  await run('pgbench', ['-i', '-q', '-s', '1'], { env: { ...process.env, ...direct } });
  const gates = [await startGate(dists[0]!, url, dbname, direct.PGUSER), await startGate(dists[1]!, url, dbname, direct.PGUSER)];
  try {
    for (const mode of modes) {
      // Warm-up (JIT, shape cache): one short run each, not counted.
      for (const g of gates) await pgbench(mode, g.env).then(() => g.settle());
      const rows: { direct: number; a: Result; b: Result }[] = [];
      for (let round = 0; round < rounds; round++) {
        const d = await pgbench(mode, direct);
        const order = round % 2 === 0 ? [0, 1] : [1, 0];
        const res: Result[] = [];
        for (const i of order) res[i] = await measure(gates[i]!, mode);
        rows.push({ direct: d.tps, a: res[0]!, b: res[1]! });
        const f = (r: Result) => `tps ${r.tps.toFixed(0)} (${(r.tps / d.tps).toFixed(3)}×) cpu ${r.cpu.toFixed(1)} main ${r.main.toFixed(1)} worker ${r.worker.toFixed(1)}`;
        process.stdout.write(`${mode} round ${round + 1}: direct ${d.tps.toFixed(0)} | A ${f(res[0]!)} | B ${f(res[1]!)}\n`);
      }
      const m = (pick: (r: { direct: number; a: Result; b: Result }) => number) => median(rows.map(pick)).toFixed(3);
      process.stdout.write(
        `${mode} medians: A/direct ${m((r) => r.a.tps / r.direct)}, B/direct ${m((r) => r.b.tps / r.direct)}; ` +
          `A cpu ${m((r) => r.a.cpu)} main ${m((r) => r.a.main)} worker ${m((r) => r.a.worker)}; B cpu ${m((r) => r.b.cpu)} main ${m((r) => r.b.main)} worker ${m((r) => r.b.worker)} µs/txn\n` +
          `${mode} per-round ratios B/A (median): tps ${m((r) => r.b.tps / r.a.tps)}, cpu ${m((r) => r.b.cpu / r.a.cpu)}, main ${m((r) => r.b.main / r.a.main)}, worker ${m((r) => r.b.worker / r.a.worker)}\n`,
      );
    }
    for (const [i, g] of gates.entries()) {
      await g.gateway.cli(['sessions', 'list', '--limit', '1']);
      const store = new SQLite(join(g.gateway.dir, 'gatehouse.db'), { readonly: true });
      const n = (store.prepare("select count(*) as n from exchanges where protocol = 'postgres' and operation = 'sql.select'").get() as { n: number }).n;
      store.close();
      process.stdout.write(`${i === 0 ? 'A' : 'B'}: recorded ${n} sql.select exchanges for ≥ ${g.transactions} measured transactions (${n >= g.transactions ? 'OK' : 'MISSING'})\n`);
    }
  } finally {
    for (const g of gates) await g.gateway.stop();
    await database.drop();
  }
}

await main();
