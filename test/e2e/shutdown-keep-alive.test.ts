// A stop with keep-alive clients. An answer finished during the grace period said
// `Connection: keep-alive`, so the client kept its pooled connection, could send more
// requests on it, and the idle connection kept the gateway from stopping until the
// grace period ended (a minute here; every SDK pools connections). Now such an answer
// says `Connection: close` and the gateway exits once nothing is in flight.

import assert from 'node:assert/strict';
import { createServer, request, Agent, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

describe('stop with a keep-alive client', () => {
  let upstream: Server;
  let release: () => void;
  let arrived: Promise<void>;
  let gateway: GatewayProcess;
  let dir: string;

  before(async () => {
    const held = new Promise<void>((resolve) => (release = resolve));
    let arrive: () => void;
    arrived = new Promise<void>((resolve) => (arrive = resolve));
    // Holds every answer until the test releases it.
    upstream = createServer((req, res) => {
      req.resume();
      arrive();
      void held.then(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'));
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
    await gateway?.stop('SIGKILL');
    upstream?.closeAllConnections();
    await new Promise((resolve) => upstream?.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  test('an answer finished while stopping says Connection: close, and the gateway exits without waiting out the grace period', { timeout: 40_000 }, async () => {
    const key = await gateway.createKey('svc', ['ml']);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const answer = new Promise<{ status: number; connection: string | undefined }>((resolve, reject) => {
      const req = request(`${gateway.url}/c/api/work`, { agent, headers: { authorization: `Bearer ${key}` } }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode!, connection: res.headers.connection }));
      });
      req.on('error', reject);
      req.end();
    });
    const exited = new Promise<number | null>((resolve) => gateway.child.once('exit', resolve));
    // The request is at the upstream, its answer not begun.
    await arrived;
    gateway.child.kill('SIGTERM');
    await gateway.waitForLog(/stopping: no new connections/);
    release();
    assert.deepEqual(await answer, { status: 200, connection: 'close' });
    // The pooled connection is closed by the answer: the gateway stops now, not in 60 s
    // (the test's own timeout is 40 s).
    assert.equal(await exited, 0);
    agent.destroy();
  });
});
