// Security regression: one client address could hold thousands of idle, unauthenticated
// sockets on the HTTP listeners. The data plane and the admin listener bound their open
// connections per listener and per client address; one more is answered 503
// `connection_limit` at once and closed, counted in
// gatehouse_http_connections_refused_total; a socket that sends nothing is closed at the
// headers timeout. In process (startGateway); real sockets.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/observability/index.js';
import { startGateway, type Gateway } from '../../src/server/index.js';

function open(url: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => resolve(socket));
    socket.on('error', reject);
  });
}

/** What the server sends on `socket` until it closes it (within `ms`). */
function answer(socket: Socket, ms = 5000): Promise<{ text: string; closed: boolean; afterMs: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    let text = '';
    const timer = setTimeout(() => resolve({ text, closed: false, afterMs: Date.now() - started }), ms);
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closed: true, afterMs: Date.now() - started });
    });
  });
}

describe('connection limits on the HTTP listeners', () => {
  let gateway: Gateway;
  let dir: string;
  const sockets: Socket[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-connection-limits-'));
    const config = parseConfig(
      `gateway:
  listen: { host: 127.0.0.1, port: 0 }
  maxConnections: 8
  maxConnectionsPerClient: 5
admin:
  listen: { host: 127.0.0.1, port: 0 }
  groups: [admins]
  maxConnectionsPerClient: 3
log: { level: silent }
store:
  sqlite: { path: ${join(dir, 'g.db')} }
connections:
  - { name: files, type: http, target: "http://127.0.0.1:9/v1", access: { groups: [admins] } }
`,
      join(dir, 'gatehouse.yaml'),
      process.env,
    );
    gateway = await startGateway(config, { logger: createLogger('silent'), requestTimeoutMs: 2000 });
  });
  after(async () => {
    for (const socket of sockets) socket.destroy();
    await gateway?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  // Not through fetch's pool: its kept-alive sockets would count against the admin bound.
  const metrics = async () => {
    const socket = await open(gateway.adminUrl!);
    const done = answer(socket);
    socket.write('GET /metrics HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n');
    return (await done).text;
  };

  test('security: one client holds at most maxConnectionsPerClient idle sockets; the next gets 503 connection_limit', async () => {
    for (let i = 0; i < 5; i++) sockets.push(await open(gateway.dataPlaneUrl));
    const refused = await open(gateway.dataPlaneUrl);
    const { text, closed, afterMs } = await answer(refused);
    assert.ok(closed && afterMs < 1000, `closed at once (${afterMs} ms)`);
    assert.match(text, /^HTTP\/1\.1 503 Service Unavailable\r\n/);
    assert.match(text, /\r\nretry-after: 1\r\n/);
    assert.match(text, /\r\nconnection: close\r\n/);
    const body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as { error: { code: string; message: string } };
    assert.deepEqual(body.error, { message: 'Too many open connections from this client address; close idle connections or reuse them, and try again.', type: 'server_error', code: 'connection_limit', param: null });
    assert.match(await metrics(), /gatehouse_http_connections_refused_total\{listener="data",reason="client"\} 1\n/);
    assert.match(await metrics(), /gatehouse_http_connections\{listener="data"\} 5\n/);

    // A socket that sends nothing is closed at the headers timeout, and its slot is free again.
    const idle = await answer(sockets[0]!, 10_000);
    assert.ok(idle.closed, 'the idle socket was closed');
    for (const socket of sockets.splice(0)) socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const res = await fetch(`${gateway.dataPlaneUrl}/c/files/x`);
    assert.equal(res.status, 401, 'requests are served again');
  });

  test('the admin listener has its own bound', async () => {
    for (let i = 0; i < 3; i++) sockets.push(await open(gateway.adminUrl!));
    const { text } = await answer(await open(gateway.adminUrl!));
    assert.match(text, /^HTTP\/1\.1 503 /);
    // In the admin API's error shape (docs/operations.md), not the data plane's OpenAI one.
    const body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as unknown;
    assert.deepEqual(body, { error: { code: 'connection_limit', message: 'Too many open connections from this client address; close idle connections or reuse them, and try again.' } });
    for (const socket of sockets.splice(0)) socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.match(await metrics(), /gatehouse_http_connections_refused_total\{listener="admin",reason="client"\} 1\n/);
  });
});
