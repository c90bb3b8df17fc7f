// `node --import tsx bench/http-cpu.ts`: the gateway's own CPU per request on the HTTP
// data plane, with recording off (or on), measured with less noise than the throughput
// bench: a fixed NUMBER of requests per round (not a fixed time), the gateway's
// user+system CPU read from /proc around each round, and the median over rounds.
// Several gateway builds can be compared in the same run (A/B): each `--cli` starts its
// own gateway (same config, own store and keys), and rounds alternate between them, so
// noise from the other agents on the machine falls on every build alike.
//
//   node --import tsx bench/http-cpu.ts                       # dist/cli/main.js, recording off
//   node --import tsx bench/http-cpu.ts --cli /tmp/base/dist/cli/main.js --cli dist/cli/main.js
//   node --import tsx bench/http-cpu.ts --requests 4000 --rounds 7 --concurrency 16 --sequential 1500
//
// Options: --cli PATH or 'PATH::NODE FLAGS' (repeatable; default dist/cli/main.js), --requests N per round and
// scenario (3000), --rounds R (5), --concurrency C (16), --sequential N (requests per
// round for the sequential latency check, 1000; 0 to skip), --scenario chat|chat-stream
// (repeatable; default both), --bare (also measure bench/bare-http-relay.ts, the least a
// Node relay costs, in the same rounds), --recording (record, as in
// production; default off), --both (each build twice, recording on and off, in the same
// rounds), --node-options="FLAGS" for the gateway children (e.g.
// "--cpu-prof --cpu-prof-dir=/tmp/prof").
// Prints per build and scenario: CPU µs/req (median, min), the main (relaying) thread's
// median alone (with recording, the rest is mostly the record journal's worker), for each build after the
// first the median of its per-round ratios to the first, for the process and for the main
// thread (the fairest A/B figures on a shared machine), and for --sequential the p50
// total latency and the p50 added to direct (measured in the same rounds).

import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cleanupAll, cleanupSync, registerTempDir, spawnChild } from './children.js';
import { processCpuSeconds, threadCpuTimes } from './cpu.js';
import { closedLoop, createPool, ErrorLog, percentile, sequential, type Scenario, type Target } from './load.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const { values: flags } = parseArgs({
  args: process.argv.slice(2),
  strict: true,
  options: {
    cli: { type: 'string', multiple: true },
    requests: { type: 'string', default: '3000' },
    rounds: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '16' },
    sequential: { type: 'string', default: '1000' },
    recording: { type: 'boolean', default: false },
    both: { type: 'boolean', default: false },
    'node-options': { type: 'string', default: '' },
    scenario: { type: 'string', multiple: true },
    bare: { type: 'boolean', default: false },
  },
});
// `--cli PATH` or `--cli 'PATH::NODE FLAGS'` (flags for that gateway only, e.g. to compare V8 settings).
// --both: each build twice, recording on and off, in the same rounds (what recording costs).
const clis = (flags.cli ?? [join(root, 'dist', 'cli', 'main.js')]).flatMap((spec) => {
  const [path, extra = ''] = spec.split('::');
  const cli = { path: resolve(path!), flags: extra.split(/\s+/).filter(Boolean), label: spec };
  if (!flags.both) return [{ ...cli, recording: flags.recording }];
  return [{ ...cli, recording: true, label: `${spec} rec` }, { ...cli, recording: false, label: `${spec} norec` }];
});
const REQUESTS = Number(flags.requests);
const ROUNDS = Number(flags.rounds);
const CONCURRENCY = Number(flags.concurrency);
const SEQUENTIAL = Number(flags.sequential);
const nodeFlags = flags['node-options'].split(/\s+/).filter(Boolean);

const PROMPT = { model: 'demo-chat', messages: [{ role: 'user', content: 'Summarise the quarterly report in three bullet points' }] };
const SCENARIOS: readonly Scenario[] = [
  { name: 'chat', body: JSON.stringify(PROMPT), stream: false },
  { name: 'chat-stream', body: JSON.stringify({ ...PROMPT, stream: true }), stream: true },
].filter((s) => flags.scenario === undefined || flags.scenario.includes(s.name));

process.on('exit', cleanupSync);
process.on('SIGINT', () => void cleanupAll().finally(() => process.exit(130)));
const log = (line: string) => process.stdout.write(`${line}\n`);
const median = (xs: readonly number[]) => percentile(xs, 50);

/** A closed loop of exactly `count` requests (the load.ts loop is time-bounded: run it in small slices). */
async function fixedCount(target: Target, scenario: Scenario, count: number, errors: ErrorLog): Promise<number> {
  let done = 0;
  const signal = new AbortController().signal;
  while (done < count) {
    const r = await closedLoop(target, scenario, { concurrency: Math.min(CONCURRENCY, count - done), warmupMs: 0, durationMs: 50, signal, errors });
    done += r.okTotal;
  }
  return done;
}

async function runCli(cli: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<string> {
  const child = spawnChild(`gatehouse ${args[0]}`, process.execPath, [cli, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.proc.stdout!.on('data', (s: string) => (out += s));
  await child.exited;
  if (child.proc.exitCode !== 0) throw new Error(`gatehouse ${args.join(' ')} failed\n${child.output()}`);
  return out;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(os.tmpdir(), 'gatehouse-cpu-'));
  registerTempDir(dir);
  const upstreamKey = `bench-upstream-${randomBytes(16).toString('hex')}`;
  const env: NodeJS.ProcessEnv = { ...process.env, BENCH_UPSTREAM_KEY: upstreamKey };
  delete env['NODE_OPTIONS'];
  const upstream = spawnChild('demo upstream', process.execPath, ['--import', 'tsx', join(root, 'bench', 'upstream-process.ts')], { cwd: root, env });
  const [, line] = await upstream.waitForLine('stdout', /^(\{.*\})$/, 20_000);
  const upstreamOrigin = `http://127.0.0.1:${(JSON.parse(line!) as { port: number }).port}`;

  const gateways = [];
  for (const [i, { path: cli, flags: cliFlags, label, recording }] of clis.entries()) {
    const sub = join(dir, `gw${i}`);
    await mkdir(sub);
    const configFile = join(sub, 'gatehouse.yaml');
    const config = {
      gateway: { listen: { host: '127.0.0.1', port: 0 } },
      admin: { listen: { host: '127.0.0.1', port: 0 }, groups: ['bench-admins'] },
      store: { sqlite: { path: join(sub, 'gatehouse.db') } },
      recording: { enabled: recording },
      log: { level: 'warn' },
      connections: [{ name: 'bench', type: 'openai', target: `${upstreamOrigin}/v1`, credential: { secret: '${BENCH_UPSTREAM_KEY}' }, access: { groups: ['bench-users'] } }],
    };
    await writeFile(configFile, `${JSON.stringify(config, null, 2)}\n`);
    const out = await runCli(cli, ['keys', 'create', '--config', configFile, '--name', 'bench-client', '--groups', 'bench-users', '--json'], env);
    const token = (JSON.parse(out) as { token: string }).token;
    const child = spawnChild(`gateway ${i}`, process.execPath, [...nodeFlags, ...cliFlags, cli, 'start', '--config', configFile], { cwd: root, env });
    const ready = await child.waitForLine('stderr', /^gatehouse: data plane (\S+?)(?:, admin (\S+))?$/, 20_000);
    const origin = ready[1]!;
    gateways.push({
      name: `${i}:${label.replace(root, '')}`,
      pid: child.proc.pid,
      target: { name: `gateway ${i}`, pool: createPool(origin, CONCURRENCY), path: '/c/bench/chat/completions', authorization: `Bearer ${token}`, expectExchangeId: true } satisfies Target,
    });
  }
  if (flags.bare) {
    const child = spawnChild('bare relay', process.execPath, [...nodeFlags, '--import', 'tsx', join(root, 'bench', 'bare-http-relay.ts')], { cwd: root, env: { ...env, BENCH_RELAY_TARGET: upstreamOrigin, BENCH_RELAY_KEY: upstreamKey } });
    const ready = await child.waitForLine('stderr', /^bare relay on (\S+)$/, 20_000);
    gateways.push({
      name: 'bare relay',
      pid: child.proc.pid,
      target: { name: 'bare relay', pool: createPool(ready[1]!, CONCURRENCY), path: '/c/bench/chat/completions', authorization: 'Bearer none', expectExchangeId: true } satisfies Target,
    });
  }
  const direct: Target = { name: 'direct', pool: createPool(upstreamOrigin, CONCURRENCY), path: '/v1/chat/completions', authorization: `Bearer ${upstreamKey}`, expectExchangeId: false };

  log(`http-cpu: ${clis.length} gateway(s), recording ${flags.both ? 'on and off' : flags.recording ? 'on' : 'off'}, ${ROUNDS} rounds x ${REQUESTS} requests at c=${CONCURRENCY}` + (SEQUENTIAL > 0 ? `, + ${SEQUENTIAL} sequential per round` : ''));
  const errors = new ErrorLog();
  const signal = new AbortController().signal;
  for (const scenario of SCENARIOS) {
    // Warm-up: JIT, pools, caches.
    for (const g of gateways) await fixedCount(g.target, scenario, Math.max(1000, REQUESTS / 2), errors);
    await fixedCount(direct, scenario, 1000, errors);
    const cpuUs = gateways.map((): number[] => []);
    const mainUs = gateways.map((): number[] => []);
    const mainSysUs = gateways.map((): number[] => []);
    const seqNs = gateways.map((): number[] => []);
    const directNs: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate the order so each build goes first equally often.
      const order = gateways.map((_, i) => i);
      if (round % 2 === 1) order.reverse();
      for (const i of order) {
        const g = gateways[i]!;
        const before = processCpuSeconds(g.pid);
        const mainBefore = threadCpuTimes(g.pid);
        const n = await fixedCount(g.target, scenario, REQUESTS, errors);
        cpuUs[i]!.push(((processCpuSeconds(g.pid) - before) * 1e6) / n);
        const mainAfter = threadCpuTimes(g.pid);
        mainUs[i]!.push(((mainAfter.user + mainAfter.system - mainBefore.user - mainBefore.system) * 1e6) / n);
        mainSysUs[i]!.push(((mainAfter.system - mainBefore.system) * 1e6) / n);
        if (SEQUENTIAL > 0) {
          const d = await sequential(direct, scenario, { warmupMs: 0, durationMs: 60_000, maxSamples: SEQUENTIAL / 2, signal, errors });
          directNs.push(...d.latenciesNs);
          const s = await sequential(g.target, scenario, { warmupMs: 0, durationMs: 60_000, maxSamples: SEQUENTIAL, signal, errors });
          seqNs[i]!.push(...s.latenciesNs);
        }
      }
    }
    const directP50 = median(directNs);
    for (const [i, g] of gateways.entries()) {
      const rounds = cpuUs[i]!.map((v) => v.toFixed(0)).join(' ');
      let text = `${scenario.name.padEnd(12)} ${g.name.padEnd(28)} CPU µs/req median ${median(cpuUs[i]!).toFixed(0)}, min ${Math.min(...cpuUs[i]!).toFixed(0)} (rounds ${rounds}); main thread ${median(mainUs[i]!).toFixed(0)} (system ${median(mainSysUs[i]!).toFixed(0)})`;
      if (SEQUENTIAL > 0) text += `; sequential p50 ${(median(seqNs[i]!) / 1000).toFixed(0)} µs, added ${((median(seqNs[i]!) - directP50) / 1000).toFixed(0)} µs (direct ${(directP50 / 1000).toFixed(0)} µs)`;
      // Paired with the first build round by round (same noise), for A/B runs.
      if (i > 0) {
        const ratios = cpuUs[i]!.map((v, r) => v / cpuUs[0]![r]!);
        const mainRatios = mainUs[i]!.map((v, r) => v / mainUs[0]![r]!);
        text += `; vs build 0: x${median(ratios).toFixed(2)}, main thread x${median(mainRatios).toFixed(2)} (medians of per-round ratios)`;
      }
      log(text);
    }
  }
  if (errors.count > 0) {
    log(`ERRORS: ${errors.count}: ${errors.samples.join('; ')}`);
    process.exitCode = 1;
  }
  await Promise.all([direct.pool.close(), ...gateways.map((g) => g.target.pool.close())]);
  await cleanupAll();
}

main().catch(async (error: unknown) => {
  process.stderr.write(`http-cpu: ${(error as Error).stack ?? String(error)}\n`);
  await cleanupAll();
  process.exit(1);
});
