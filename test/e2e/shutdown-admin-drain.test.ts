// The admin listener while the gateway stops. It closed at once on SIGTERM while the data
// plane drained, so a load balancer's or Kubernetes' /readyz probe got a refused
// connection instead of a 503, and /metrics could not be scraped during the drain. Now it
// stays up until the data plane has drained: /readyz says 503 gateway_stopping from the
// start of the stop, /healthz and /metrics answer, and it closes with the rest.

import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

/** One GET on a connection of its own (no pooled keep-alive connection left behind). */
function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the admin listener while the gateway stops', () => {
  let upstream: Server;
  let release: () => void;
  let gateway: GatewayProcess;
  let dir: string;

  before(async () => {
    const held = new Promise<void>((resolve) => (release = resolve));
    // Begins a streamed answer at once and ends it when the test releases it.
    upstream = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: first\n\n');
      void held.then(() => res.end('data: last\n\n'));
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    gateway = await startGatewayProcess(`gateway:
  listen: { host: 127.0.0.1, port: 0 }
  shutdownGrace: 60s
admin:
  listen: { host: 127.0.0.1, port: 0 }
connections:
  - name: api
    type: http
    target: http://127.0.0.1:${(upstream.address() as AddressInfo).port}
    access: { groups: [ml] }
`);
    dir = gateway.dir;
  });

  after(async () => {
    release?.();
    await gateway?.stop('SIGKILL');
    upstream?.closeAllConnections();
    await new Promise((resolve) => upstream?.close(resolve));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('while a stream drains, /readyz is 503 gateway_stopping and /healthz, /metrics answer; the gateway exits 0 once it ends', { timeout: 40_000 }, async () => {
    const key = await gateway.createKey('svc', ['ml']);
    assert.equal((await get(`${gateway.adminUrl}/readyz`)).status, 200);
    let firstChunk!: () => void;
    const begun = new Promise<void>((resolve) => (firstChunk = resolve));
    const streamed = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(`${gateway.url}/c/api/stream`, { agent: false, headers: { authorization: `Bearer ${key}` } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
          firstChunk();
        });
        res.on('end', () => resolve({ status: res.statusCode!, body }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    await begun;
    const exited = new Promise<number | null>((resolve) => gateway.child.once('exit', resolve));
    gateway.child.kill('SIGTERM');
    await gateway.waitForLog(/stopping: no new connections/);

    const ready = await get(`${gateway.adminUrl}/readyz`);
    assert.equal(ready.status, 503);
    const readyBody = JSON.parse(ready.body) as { status: string; error: { code: string } };
    assert.equal(readyBody.status, 'stopping');
    assert.equal(readyBody.error.code, 'gateway_stopping');
    assert.equal((await get(`${gateway.adminUrl}/healthz`)).status, 200);
    const metrics = await get(`${gateway.adminUrl}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(metrics.body, /^# (HELP|TYPE) /m);
    assert.equal(gateway.child.exitCode, null, 'the stream is still in flight');

    release();
    assert.deepEqual(await streamed, { status: 200, body: 'data: first\n\ndata: last\n\n' });
    assert.equal(await exited, 0);
    await assert.rejects(get(`${gateway.adminUrl}/healthz`), /ECONNREFUSED/);
  });
});
