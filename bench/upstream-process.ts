// Benchmark helper: runs the DEMO upstream in its own process so it never shares an
// event loop with the load generator or the gateway. Prints one JSON line
// `{"port":N,"url":"..."}` on stdout once listening, then serves until SIGTERM /
// SIGINT, or until stdin closes (the parent bench process went away).
//
//   BENCH_UPSTREAM_KEY=secret node --import tsx bench/upstream-process.ts

import { startDemoUpstream } from '../src/demo/upstream.js';

const apiKey = process.env['BENCH_UPSTREAM_KEY'];
if (apiKey === undefined || apiKey === '') {
  process.stderr.write('upstream-process: BENCH_UPSTREAM_KEY is not set\n');
  process.exit(2);
}
const streamDelayMs = Number(process.env['BENCH_STREAM_DELAY_MS'] ?? 0);

const upstream = await startDemoUpstream({ host: '127.0.0.1', port: 0, apiKey, streamDelayMs });
process.stdout.write(`${JSON.stringify({ port: upstream.port, url: upstream.url })}\n`);

let closing = false;
function shutdown(): void {
  if (closing) return;
  closing = true;
  const force = setTimeout(() => process.exit(0), 2_000);
  force.unref();
  upstream.close().then(
    () => process.exit(0),
    () => process.exit(0),
  );
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
process.stdin.on('end', shutdown);
process.stdin.on('close', shutdown);
process.stdin.resume();
