// `npm run bench:postgres`: pgbench select-only (-S), DIRECT to PostgreSQL vs THROUGH
// THE GATEWAY's PostgreSQL listener, in the same run.
//
// 1. a fresh database on the machine's PostgreSQL (GATEHOUSE_TEST_POSTGRES_URL), filled
//    with `pgbench -i`;
// 2. the real gateway process (`node dist/cli/main.js start`) with a `type: postgres`
//    connection: identify at login, policy, libpg-query inspection, masking rules and
//    recording (SQLite) all on, for every statement;
// 3. pgbench -S with the same clients and duration, direct then through the gateway
//    (then both again, and the better of each is kept, to damp noise on a shared box);
// 4. TPS, mean latency, the 0.5× floor with PASS/FAIL, and proof of recording (rows in
//    the store for the statements run).
//
// Options (environment): BENCH_PG_CLIENTS (default 4), BENCH_PG_SECONDS (default 5),
// BENCH_PG_SCALE (default 1), BENCH_PG_MODE (simple | extended | prepared, default simple).
// Exit code 1 when a run fails or recording cannot be verified; a missed floor prints FAIL.

import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import SQLite from 'better-sqlite3';
import { createTestPostgresDatabase } from '../test/helpers/databases.js';
import { startGatewayProcess } from '../test/helpers/gateway-process.js';

const run = promisify(execFile);
const clients = Number(process.env.BENCH_PG_CLIENTS ?? 4);
const seconds = Number(process.env.BENCH_PG_SECONDS ?? 5);
const scale = Number(process.env.BENCH_PG_SCALE ?? 1);
const mode = process.env.BENCH_PG_MODE ?? 'simple';

interface Result {
  readonly tps: number;
  readonly latencyMs: number;
  readonly transactions: number;
}

async function pgbench(env: NodeJS.ProcessEnv): Promise<Result> {
  const { stdout } = await run('pgbench', ['-S', '-n', '-M', mode, '-c', String(clients), '-j', String(Math.min(clients, 2)), '-T', String(seconds)], { env: { ...process.env, ...env } });
  const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(stdout);
  const latency = /latency average = ([\d.]+) ms/.exec(stdout);
  const done = /number of transactions actually processed: (\d+)/.exec(stdout);
  const failed = /number of failed transactions: (\d+)/.exec(stdout);
  if (!tps || !latency || !done) throw new Error(`cannot read pgbench output:\n${stdout}`);
  if (failed && failed[1] !== '0') throw new Error(`pgbench reported failed transactions:\n${stdout}`);
  return { tps: Number(tps[1]), latencyMs: Number(latency[1]), transactions: Number(done[1]) };
}

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
  const gateway = await startGatewayProcess(
    `gateway:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: 0 }
  groups: [admins]
log: { level: info }
connections:
  - name: bench
    type: postgres
    listen: { host: 127.0.0.1, port: 0 }
    allowPlaintext: true
    target: postgres://${url.host}/${dbname}
    credential: { user: ${direct.PGUSER}, secret: "\${PG_SECRET}" }
    tls: { mode: disable }
    limits: { maxRows: 100000, statementTimeout: 30s }
    masking: { columns: { email: redact } }
    access: { groups: [bench] }
`,
    { env: { PG_SECRET: url.password || 'unused' } },
  );
  try {
    const token = await gateway.createKey('bench', ['bench']);
    const port = await listenerPort(gateway.logs);
    const proxied = { PGHOST: '127.0.0.1', PGPORT: String(port), PGUSER: 'bench', PGDATABASE: dbname, PGPASSWORD: token, PGSSLMODE: 'disable' };

    process.stderr.write(`bench:postgres: pgbench -i -s ${scale} …\n`);
    await run('pgbench', ['-i', '-q', '-s', String(scale)], { env: { ...process.env, ...direct } });
    const runs: { direct: Result[]; gateway: Result[] } = { direct: [], gateway: [] };
    for (let round = 0; round < 2; round++) {
      process.stderr.write(`bench:postgres: round ${round + 1}: direct …\n`);
      runs.direct.push(await pgbench(direct));
      process.stderr.write(`bench:postgres: round ${round + 1}: through the gateway …\n`);
      runs.gateway.push(await pgbench(proxied));
    }
    const best = (rs: Result[]) => rs.reduce((a, b) => (b.tps > a.tps ? b : a));
    const d = best(runs.direct);
    const g = best(runs.gateway);
    const ratio = g.tps / d.tps;

    await new Promise((r) => setTimeout(r, 500));
    const store = new SQLite(join(gateway.dir, 'gatehouse.db'), { readonly: true });
    const recorded = (store.prepare("select count(*) as n from exchanges where protocol = 'postgres' and operation = 'sql.select'").get() as { n: number }).n;
    store.close();
    const gatewayTransactions = runs.gateway.reduce((n, r) => n + r.transactions, 0);

    const cpus = (await import('node:os')).cpus();
    const lines = [
      `pgbench -S -M ${mode}, ${clients} clients, ${seconds} s per run, scale ${scale}, best of 2 runs each; ${cpus.length} × ${cpus[0]?.model ?? 'cpu'}`,
      '',
      '| path | TPS | mean latency (ms) | runs (TPS) |',
      '| --- | ---: | ---: | --- |',
      `| direct | ${d.tps.toFixed(0)} | ${d.latencyMs.toFixed(3)} | ${runs.direct.map((r) => r.tps.toFixed(0)).join(', ')} |`,
      `| through the gateway | ${g.tps.toFixed(0)} | ${g.latencyMs.toFixed(3)} | ${runs.gateway.map((r) => r.tps.toFixed(0)).join(', ')} |`,
      '',
      `gateway / direct: ${ratio.toFixed(2)}×  (floor 0.50×: ${ratio >= 0.5 ? 'PASS' : 'FAIL'})`,
      `recorded: ${recorded} sql.select exchanges for ${gatewayTransactions} transactions through the gateway (${recorded >= gatewayTransactions ? 'OK' : 'MISSING'})`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    return recorded >= gatewayTransactions ? 0 : 1;
  } finally {
    await gateway.stop();
    await database.drop();
  }
}

async function listenerPort(logs: () => string): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const match = /"connection":"bench","address":"127\.0\.0\.1:(\d+)"/.exec(logs());
    if (match) return Number(match[1]);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the gateway did not log its postgres listener address');
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench:postgres: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
