// `npm run bench:audit`: what recording costs. Two real gateway processes in front of
// the same DEMO upstream (its own process), identical but for `recording.enabled`:
// ON records every exchange into the tamper-evident chain (exchange row + chained
// events, progress writes, checkpoints), OFF records nothing (the switch exists only
// for this benchmark). Closed-loop throughput is measured in alternating rounds
// (on, off, on, off, …) so machine noise falls on both alike; the median per side is
// compared. Budget: recording costs at most 10% of throughput.
//
// Options (environment): BENCH_CONCURRENCY (default 32), BENCH_SECONDS per round
// (default 4), BENCH_ROUNDS (default 3), BENCH_STREAM_DELAY_MS (default 0).
// Exit code 1 if any request failed or the ON gateway's chain does not verify.

import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { cleanupAll, cleanupSync, registerTempDir, spawnChild } from './children.js';
import { closedLoop, createPool, type Scenario, type Target } from './load.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = join(root, 'dist', 'cli', 'main.js');
const CONCURRENCY = Number(process.env['BENCH_CONCURRENCY'] ?? 32);
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 4);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
const STREAM_DELAY_MS = Number(process.env['BENCH_STREAM_DELAY_MS'] ?? 0);
const BUDGET = 0.1;

const PROMPT = { model: 'demo-chat', messages: [{ role: 'user', content: 'Summarise the quarterly report in three bullet points' }] };
const SCENARIOS: readonly Scenario[] = [
  { name: 'chat', body: JSON.stringify(PROMPT), stream: false },
  { name: 'chat-stream', body: JSON.stringify({ ...PROMPT, stream: true }), stream: true },
];

process.on('exit', cleanupSync);
process.on('SIGINT', () => void cleanupAll().finally(() => process.exit(130)));
const log = (line: string) => process.stdout.write(`${line}\n`);
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function startGateway(dir: string, name: string, recording: boolean, upstreamOrigin: string, env: NodeJS.ProcessEnv) {
  const configFile = join(dir, `${name}.yaml`);
  const config = {
    gateway: { listen: { host: '127.0.0.1', port: 0 } },
    admin: { enabled: false },
    store: { sqlite: { path: join(dir, `${name}.db`) } },
    recording: { enabled: recording },
    audit: { keyFile: join(dir, `${name}-key.pem`) },
    log: { level: 'warn' },
    connections: [{ name: 'bench', type: 'openai', target: `${upstreamOrigin}/v1`, credential: { secret: '${BENCH_UPSTREAM_KEY}' }, access: { groups: ['bench-users'] } }],
  };
  await writeFile(configFile, `${JSON.stringify(config, null, 2)}\n`);
  const token = (JSON.parse(execFileSync(process.execPath, [cli, 'keys', 'create', '--config', configFile, '--name', 'bench', '--groups', 'bench-users', '--json'], { env, encoding: 'utf8' })) as { token: string }).token;
  const child = spawnChild(`gateway ${name}`, process.execPath, [cli, 'start', '--config', configFile], { cwd: root, env });
  const ready = await child.waitForLine('stderr', /^gatehouse: data plane (\S+?)(?:, admin (\S+))?$/, 20_000);
  return { configFile, token, origin: ready[1]! };
}

async function main(): Promise<number> {
  const dir = await mkdtemp(join(os.tmpdir(), 'gatehouse-bench-audit-'));
  registerTempDir(dir);
  const upstreamKey = `bench-upstream-${randomBytes(16).toString('hex')}`;
  const env: NodeJS.ProcessEnv = { ...process.env, BENCH_UPSTREAM_KEY: upstreamKey, BENCH_STREAM_DELAY_MS: String(STREAM_DELAY_MS) };
  delete env['NODE_OPTIONS'];
  const upstream = spawnChild('demo upstream', process.execPath, ['--import', 'tsx', join(root, 'bench', 'upstream-process.ts')], { cwd: root, env });
  const [, line] = await upstream.waitForLine('stdout', /^(\{.*\})$/, 20_000);
  const upstreamOrigin = `http://127.0.0.1:${(JSON.parse(line!) as { port: number }).port}`;
  const on = await startGateway(dir, 'recording-on', true, upstreamOrigin, env);
  const off = await startGateway(dir, 'recording-off', false, upstreamOrigin, env);

  log('Gatehouse audit benchmark: throughput with recording ON vs OFF, same run, same upstream');
  log(`machine    ${os.cpus().length} x ${os.cpus()[0]?.model.trim()}, node ${process.version}, load avg ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  log(`settings   concurrency ${CONCURRENCY}, ${ROUNDS} alternating rounds of ${SECONDS} s (+0.5 s warm-up) per side and scenario, upstream stream delay ${STREAM_DELAY_MS} ms`);
  const abort = new AbortController();
  let failed = 0;
  const rows: string[][] = [];
  for (const scenario of SCENARIOS) {
    const rps: Record<'on' | 'off', number[]> = { on: [], off: [] };
    for (let round = 0; round < ROUNDS; round++) {
      for (const side of round % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const)) {
        const gw = side === 'on' ? on : off;
        const pool = createPool(gw.origin, CONCURRENCY);
        const target: Target = { name: `recording-${side}`, pool, path: '/c/bench/chat/completions', authorization: `Bearer ${gw.token}`, expectExchangeId: true };
        const result = await closedLoop(target, scenario, { concurrency: CONCURRENCY, warmupMs: 500, durationMs: SECONDS * 1000, signal: abort.signal });
        await pool.close();
        failed += result.errors.count;
        rps[side].push(result.rps);
        log(`round ${round + 1}    ${scenario.name.padEnd(12)} recording ${side.padEnd(3)} ${result.rps.toFixed(0)} req/s${result.errors.count ? `  ${result.errors.count} ERRORS: ${result.errors.samples[0]}` : ''}`);
      }
    }
    const cost = 1 - median(rps.on) / median(rps.off);
    rows.push([scenario.name, median(rps.off).toFixed(0), median(rps.on).toFixed(0), `${(cost * 100).toFixed(1)}%`, cost <= BUDGET ? 'PASS' : 'FAIL']);
  }
  log('');
  log('scenario      off req/s   on req/s   cost   (budget 10%)');
  for (const row of rows) log(`${row[0]!.padEnd(12)}  ${row[1]!.padStart(9)}  ${row[2]!.padStart(9)}  ${row[3]!.padStart(6)}  ${row[4]}`);

  const verify = (() => {
    try {
      return { code: 0, out: execFileSync(process.execPath, [cli, 'audit', 'verify', '--config', on.configFile], { env, encoding: 'utf8' }) };
    } catch (error) {
      return { code: 1, out: String((error as { stdout?: string }).stdout ?? error) };
    }
  })();
  log('');
  log(`recording ON chain: ${verify.out.trim()}`);
  await cleanupAll();
  return failed > 0 || verify.code !== 0 ? 1 : 0;
}

main().then((code) => process.exit(code), async (error: unknown) => {
  process.stderr.write(`bench: ${(error as Error).stack ?? String(error)}\n`);
  await cleanupAll();
  process.exit(1);
});
