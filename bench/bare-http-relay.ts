// Benchmark reference: the least a Node HTTP relay can do in the gateway's place — a
// node:http server that buffers the request body and sends it on with an undici Pool,
// then streams the answer back. No auth, no policy, no recording, no header rules.
// bench/http-cpu.ts runs it (`--bare`) beside the gateway so the CPU per request of the
// gateway can be read against this floor, measured in the same run.
//
//   BENCH_RELAY_TARGET=http://127.0.0.1:PORT BENCH_RELAY_KEY=secret node bench/bare-http-relay.ts
// Prints `bare relay on http://127.0.0.1:PORT` on stderr; `/c/<any>/<path>` goes to
// `<target>/v1/<path>`.

import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';

const target = process.env['BENCH_RELAY_TARGET'];
const key = process.env['BENCH_RELAY_KEY'] ?? '';
if (!target) {
  process.stderr.write('bare-http-relay: BENCH_RELAY_TARGET is not set\n');
  process.exit(2);
}
const pool = new Pool(target, { connections: 256, pipelining: 1, keepAliveTimeout: 30_000 });

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const path = `/v1/${(req.url ?? '/').split('/').slice(3).join('/')}`;
    pool
      .request({ method: 'POST', path, headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: Buffer.concat(chunks) })
      .then(async (upstream) => {
        const headers: Record<string, string> = { 'content-type': String(upstream.headers['content-type'] ?? ''), 'gatehouse-exchange-id': 'bare' };
        const length = upstream.headers['content-length'];
        if (typeof length === 'string') headers['content-length'] = length;
        res.writeHead(upstream.statusCode, headers);
        for await (const chunk of upstream.body) res.write(chunk);
        res.end();
      })
      .catch(() => res.destroy());
  });
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => {
  process.stderr.write(`bare relay on http://127.0.0.1:${(server.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
