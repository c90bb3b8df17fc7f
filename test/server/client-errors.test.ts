// A request the HTTP parser refuses (headers over 16 KiB, a malformed request line) is
// answered in the listener's error envelope with a stable code, and counted: Node alone
// sent a bare `431` / `400` without a body, and the operator saw nothing. Data plane over
// TLS (as in production) and the admin listener; real sockets.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/observability/index.js';
import { startGateway, type Gateway } from '../../src/server/index.js';
import { makeTestPki, type TestPki } from '../helpers/tls.js';

function httpsGet(url: string, ca: string, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Writes `raw` on a plain socket and resolves with everything read until the gateway closes it. */
function rawExchange(url: string, raw: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => resolve(text));
    socket.write(raw);
  });
}

describe('requests the HTTP parser refuses', () => {
  let gateway: Gateway;
  let dir: string;
  let pki: TestPki;

  before(async () => {
    pki = makeTestPki();
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-client-errors-'));
    const config = parseConfig(
      `gateway:
  listen: { host: 127.0.0.1, port: 0 }
  tls: { cert: "file:${pki.certPath}", key: "file:${pki.keyPath}" }
admin:
  listen: { host: 127.0.0.1, port: 0 }
log: { level: silent }
store:
  sqlite: { path: ${join(dir, 'g.db')} }
connections:
  - name: llm
    type: openai
    target: http://127.0.0.1:9/v1
    access: { groups: [ml] }
`,
      join(dir, 'gatehouse.yaml'),
      process.env,
    );
    gateway = await startGateway(config, { logger: createLogger('silent') });
  });

  after(async () => {
    await gateway?.close();
    rmSync(dir, { recursive: true, force: true });
    rmSync(pki.dir, { recursive: true, force: true });
  });

  test('headers over 16 KiB: 431 request_headers_too_large in the OpenAI envelope (data plane, TLS)', async () => {
    const res = await httpsGet(`${gateway.dataPlaneUrl}/c/llm/models`, pki.ca, { authorization: 'Bearer ghk_x_y', cookie: 'a'.repeat(20_000) });
    assert.equal(res.status, 431);
    assert.equal(res.headers['content-type'], 'application/json');
    assert.equal(res.headers['connection'], 'close');
    assert.deepEqual(JSON.parse(res.body), { error: { message: 'The request line and headers exceed 16 KiB, the most this gateway reads.', type: 'invalid_request_error', code: 'request_headers_too_large', param: null } });
  });

  test('headers over 16 KiB and a malformed request on the admin listener: its own envelope; both counted', async () => {
    const big = await rawExchange(gateway.adminUrl!, `GET /api/whoami HTTP/1.1\r\nHost: gw\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`);
    assert.match(big, /^HTTP\/1\.1 431 /);
    assert.equal(big.slice(big.indexOf('\r\n\r\n') + 4), JSON.stringify({ error: { code: 'request_headers_too_large', message: 'The request line and headers exceed 16 KiB, the most this gateway reads.' } }));
    const malformed = await rawExchange(gateway.adminUrl!, 'GET /healthz HTTP/1.1\r\nHost gw\r\n\r\n');
    assert.match(malformed, /^HTTP\/1\.1 400 /);
    assert.equal(malformed.slice(malformed.indexOf('\r\n\r\n') + 4), JSON.stringify({ error: { code: 'malformed_request', message: 'The request is not valid HTTP/1.1, so it was not read.' } }));
    const metrics = await (await fetch(`${gateway.adminUrl}/metrics`)).text();
    assert.match(metrics, /^gatehouse_unrouted_requests_total\{code="request_headers_too_large"\} 2$/m);
    assert.match(metrics, /^gatehouse_unrouted_requests_total\{code="malformed_request"\} 1$/m);
  });

  test('a request under the limit still passes through the parser', async () => {
    const res = await httpsGet(`${gateway.dataPlaneUrl}/c/llm/models`, pki.ca, { cookie: 'a'.repeat(8_000) });
    assert.equal(res.status, 401);
  });
});
