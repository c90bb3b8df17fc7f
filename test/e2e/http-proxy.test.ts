// End to end: the generic `http` connection type and the failure paths of the data
// plane — upstream down, upstream too slow, client gone, body too large — plus TLS on
// the listener and a private CA toward the target.

import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:tls';
import { readFileSync, rmSync } from 'node:fs';
import { Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { Agent, request } from 'undici';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { makeTestPki, type TestPki } from '../helpers/tls.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('generic HTTP proxy and failure paths, end to end', () => {
  let pki: TestPki;
  let seen: Seen[] = [];
  let abortedUpstream: Promise<void>;
  let markAborted: () => void;
  let api: Server;
  let slow: Server;
  let tlsApi: Server;
  let gateway: GatewayProcess;
  let key: string;
  let dispatcher: Agent;

  before(async () => {
    pki = makeTestPki();
    abortedUpstream = new Promise((resolve) => (markAborted = resolve));
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString('latin1')));
      req.on('end', () => {
        seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
        if (req.url!.startsWith('/registry/weights')) {
          const bytes = Buffer.alloc(64 * 1024, 7);
          res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length, connection: 'keep-alive, x-hop', 'x-hop': 'drop me' });
          res.end(bytes);
          return;
        }
        if (req.url!.startsWith('/registry/chunked-weights')) {
          res.writeHead(200, { 'content-type': 'application/octet-stream' });
          const part = Buffer.alloc(8 * 1024, 9);
          let sent = 0;
          const next = (): void => {
            if (sent++ === 8) {
              res.end();
              return;
            }
            res.write(part);
            setTimeout(next, 5);
          };
          next();
          return;
        }
        if (req.url!.startsWith('/registry/stall')) {
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.write('first part;');
          return; // then silence, until the gateway gives up
        }
        if (req.url!.startsWith('/registry/trickle')) {
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.write('first part;');
          res.on('close', () => markAborted());
          return; // never ends: the client will give up
        }
        if (req.url!.startsWith('/registry/gzipped')) {
          res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
          res.end(gzipSync(JSON.stringify({ answer: 'compressed on the wire' })));
          return;
        }
        if (req.url!.startsWith('/registry/escape')) {
          res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
          res.end('answer \u001b[2Jcleared\u009b\nnext line\tend');
          return;
        }
        res.writeHead(201, { 'content-type': 'application/json', 'x-upstream': 'yes' });
        res.end(JSON.stringify({ ok: true, method: req.method, url: req.url }));
      });
    };
    api = createServer(handler);
    slow = createServer(() => undefined); // accepts, never answers
    tlsApi = createHttpsServer({ cert: pki.cert, key: pki.key }, handler);
    const [apiAddr, slowAddr, tlsAddr] = await Promise.all([listen(api), listen(slow), listen(tlsApi)]);
    const yaml = `gateway:
  listen: { host: 127.0.0.1, port: 0 }
  tls:
    cert: file:${pki.certPath}
    key: file:${pki.keyPath}
  maxRequestBody: 1KiB
admin:
  listen: { host: 127.0.0.1, port: 0 }
connections:
  - name: registry
    type: http
    target: http://${apiAddr}/registry
    credential:
      header: x-api-key
      scheme: ""
      secret: \${REGISTRY_KEY}
    access: { groups: [ml] }
  - name: capped
    type: http
    target: http://${apiAddr}/registry
    limits: { maxResponseBody: 16KiB }
    access: { groups: [ml] }
  - name: slow
    type: http
    target: http://${slowAddr}
    timeouts: { headers: 300ms }
    access: { groups: [ml] }
  - name: stalling
    type: http
    target: http://${apiAddr}/registry
    timeouts: { body: 300ms }
    access: { groups: [ml] }
  - name: pinned
    type: http
    target: http://${apiAddr}/registry?api-version=2024-06-01
    access: { groups: [ml] }
  - name: down
    type: http
    target: http://127.0.0.1:1
    access: { groups: [ml] }
  - name: private
    type: http
    target: https://${tlsAddr}/registry
    tls: { ca: file:${pki.caPath} }
    access: { groups: [ml] }
  - name: untrusted
    type: http
    target: https://${tlsAddr}/registry
    access: { groups: [ml] }
`;
    gateway = await startGatewayProcess(yaml, { env: { REGISTRY_KEY: 'registry-secret' } });
    key = await gateway.createKey('svc', ['ml']);
    dispatcher = new Agent({ connect: { ca: pki.ca } });
  });

  after(async () => {
    await gateway?.stop();
    await dispatcher?.close();
    for (const s of [api, slow, tlsApi]) s?.closeAllConnections();
    await Promise.all([api, slow, tlsApi].map((s) => new Promise((r) => s?.close(r))));
    rmSync(pki.dir, { recursive: true, force: true });
  });

  const call = (path: string, init: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}) =>
    request(`${gateway.url}${path}`, { dispatcher, method: (init.method ?? 'GET') as 'GET', headers: { authorization: `Bearer ${key}`, ...init.headers }, body: init.body });

  test('control characters a caller percent-encodes into a path, or a target answers with, reach neither the CLI output nor the events raw', async () => {
    // ESC starts a terminal escape sequence, LF a forged row of `sessions list`; jq writes
    // DEL as \u007f, so an event holding one failed the audit.md hash step.
    const res = await call('/c/registry/escape/x%1B%5B31mRED%1B%5B0m%0Afake-row%7F');
    assert.equal(res.statusCode, 200);
    await res.body.text();
    const id = res.headers['gatehouse-exchange-id'] as string;
    const operation = 'http.GET /escape/x%1B[31mRED%1B[0m%0Afake-row%7F';
    const record = JSON.parse((await gateway.cli(['sessions', 'show', id, '--json'])).stdout) as { operation: string };
    assert.equal(record.operation, operation);
    const listed = (await gateway.cli(['sessions', 'list', '--connection', 'registry', '--limit', '1'])).stdout;
    assert.equal(listed.split('\n').length, 3, 'a header, one row, the final newline');
    assert.ok(listed.includes(operation));
    const shown = (await gateway.cli(['sessions', 'show', id])).stdout;
    assert.doesNotMatch(shown, /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
    assert.ok(shown.includes('  answer \\x1b[2Jcleared\\x9b\n  next line\tend'), shown);
    const replayed = (await gateway.cli(['sessions', 'replay', id])).stdout;
    assert.doesNotMatch(replayed, /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
    const out = `${gateway.dir}/escape-bundle`;
    await gateway.cli(['audit', 'export', '--out', out, '--connection', 'registry']);
    const events = readFileSync(`${out}/events.jsonl`, 'utf8');
    assert.ok(events.includes(`"operation":"${operation}"`));
    assert.doesNotMatch(events, /[\u007f-\u009f]/);
  });

  test('the listener speaks TLS with the configured certificate', () => {
    assert.match(gateway.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  });

  test('a request passes with path, query, method and body; caller credentials and hop-by-hop headers stay behind', async () => {
    seen = [];
    // node:https, because undici refuses to send a Connection header naming other headers.
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = httpsRequest(`${gateway.url}/c/registry/models/llama?version=3&x=a%20b`, {
        method: 'PUT',
        ca: pki.ca,
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', cookie: 'session=abc', connection: 'keep-alive, x-private', 'x-private': 'secret-hop', 'gatehouse-justification': 'ticket 42', 'x-trace': 't1', 'x-forwarded-for': '203.0.113.9' },
      }, resolve);
      req.on('error', reject);
      req.end('{"tag":"prod"}');
    });
    assert.equal(res.statusCode, 201);
    assert.equal(res.headers['x-upstream'], 'yes');
    let text = '';
    for await (const chunk of res) text += chunk;
    assert.deepEqual(JSON.parse(text), { ok: true, method: 'PUT', url: '/registry/models/llama?version=3&x=a%20b' });
    const upstream = seen[0]!;
    assert.equal(upstream.body, '{"tag":"prod"}');
    assert.equal(upstream.headers['x-api-key'], 'registry-secret');
    assert.equal(upstream.headers['authorization'], undefined);
    assert.equal(upstream.headers['cookie'], undefined);
    assert.equal(upstream.headers['x-private'], undefined);
    assert.equal(upstream.headers['gatehouse-justification'], undefined);
    assert.equal(upstream.headers['x-trace'], 't1');
    // the caller's own claim is kept, and the address the gateway saw appended last
    assert.equal(upstream.headers['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
  });

  test('binary answers stream through intact; hop-by-hop response headers are dropped; the record keeps the size, not the bytes', async () => {
    const res = await call('/c/registry/weights/model.safetensors');
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['x-hop'], undefined);
    const bytes = Buffer.from(await res.body.arrayBuffer());
    assert.equal(bytes.length, 64 * 1024);
    assert.ok(bytes.every((b) => b === 7));
    const id = res.headers['gatehouse-exchange-id'] as string;
    const { stdout } = await gateway.cli(['sessions', 'show', id, '--json']);
    const record = JSON.parse(stdout) as { operation: string; bytesOut: number; response: { body: string | null } };
    assert.equal(record.operation, 'http.GET /weights/model.safetensors');
    assert.equal(record.bytesOut, 64 * 1024);
    assert.equal(record.response.body, null);
  });

  test('an answer declared over the response limit: 502 response_too_large before any byte', async () => {
    const res = await call('/c/capped/weights/model.safetensors');
    assert.equal(res.statusCode, 502);
    assert.equal(((await res.body.json()) as { error: { code: string } }).error.code, 'response_too_large');
  });

  test('a chunked answer that grows over the limit is cut, not completed, and recorded as response_too_large', async () => {
    const res = await call('/c/capped/chunked-weights');
    assert.equal(res.statusCode, 200);
    const id = res.headers['gatehouse-exchange-id'] as string;
    let received = 0;
    await assert.rejects(async () => {
      for await (const chunk of res.body) received += chunk.length;
    });
    assert.ok(received <= 16 * 1024, `received ${received} bytes`);
    const record = JSON.parse((await gateway.cli(['sessions', 'show', id, '--json'])).stdout) as { complete: boolean; errorCode: string };
    assert.equal(record.complete, false);
    assert.equal(record.errorCode, 'response_too_large');
  });

  test('a body over the limit: 413 before the upstream sees it', async () => {
    seen = [];
    const res = await call('/c/registry/upload', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x'.repeat(2048) });
    assert.equal(res.statusCode, 413);
    assert.equal(((await res.body.json()) as { error: { code: string } }).error.code, 'request_too_large');
    assert.equal(seen.length, 0);
  });

  // Raw (TLS) sockets: what counts is the order of what the gateway writes (100 Continue or not).
  const rawExchange = (head: string, body?: string): Promise<{ first: string; all: string }> =>
    new Promise((resolve, reject) => {
      const { hostname, port } = new URL(gateway.url);
      const socket = connect({ port: Number(port), host: hostname, ca: pki.ca, servername: 'localhost' });
      let all = '';
      let first: string | undefined;
      socket.setTimeout(5000, () => socket.destroy(new Error(`no answer; got ${JSON.stringify(all)}`)));
      socket.on('error', reject);
      socket.on('data', (d: Buffer) => {
        all += d.toString('latin1');
        if (first === undefined && all.includes('\r\n\r\n')) {
          first = all.slice(0, all.indexOf('\r\n\r\n'));
          if (first.startsWith('HTTP/1.1 100') && body !== undefined) socket.write(body);
        }
      });
      socket.on('close', () => resolve({ first: first ?? '', all }));
      socket.write(head);
    });

  test('Expect: 100-continue with a Content-Length over the limit: 413 at once, never 100 Continue', async () => {
    seen = [];
    const { first, all } = await rawExchange(`POST /c/registry/upload HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer ${key}\r\ncontent-type: text/plain\r\ncontent-length: 2048\r\nexpect: 100-continue\r\n\r\n`);
    assert.match(first, /^HTTP\/1\.1 413 /);
    assert.match(first, /\r\nconnection: close\r\n/i);
    assert.doesNotMatch(all, /HTTP\/1\.1 100/);
    assert.equal((JSON.parse(all.slice(all.indexOf('\r\n\r\n') + 4)) as { error: { code: string; type: string } }).error.code, 'request_too_large');
    assert.equal(seen.length, 0);
  });

  test('Expect: 100-continue within the limit: 100 Continue, then the body goes through', async () => {
    seen = [];
    const { first, all } = await rawExchange(`POST /c/registry/upload HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer ${key}\r\ncontent-type: text/plain\r\ncontent-length: 5\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n`, 'hello');
    assert.match(first, /^HTTP\/1\.1 100 Continue/);
    assert.match(all, /\r\n\r\nHTTP\/1\.1 201 /);
    assert.deepEqual(seen.map((s) => s.body), ['hello']);
  });

  test('a chunked body that grows over the limit: 413 too, not a dropped connection', async () => {
    seen = [];
    async function* parts() {
      for (let i = 0; i < 8; i++) yield Buffer.alloc(512, 120);
    }
    const res = await request(`${gateway.url}/c/registry/upload`, { dispatcher, method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'text/plain' }, body: Readable.from(parts()) });
    assert.equal(res.statusCode, 413);
    assert.equal(res.headers['connection'], 'close');
    assert.equal(((await res.body.json()) as { error: { code: string } }).error.code, 'request_too_large');
    assert.equal(seen.length, 0);
  });

  test('an unreachable upstream: 502 upstream_unreachable', async () => {
    const res = await call('/c/down/anything');
    assert.equal(res.statusCode, 502);
    const body = (await res.body.json()) as { error: { code: string; type: string } };
    assert.equal(body.error.code, 'upstream_unreachable');
    assert.equal(body.error.type, 'upstream_error');
  });

  test('an upstream slower than its headers timeout: 504 upstream_timeout', async () => {
    const started = performance.now();
    const res = await call('/c/slow/anything');
    assert.equal(res.statusCode, 504);
    assert.equal(((await res.body.json()) as { error: { code: string } }).error.code, 'upstream_timeout');
    assert.ok(performance.now() - started < 3_000);
  });

  test('a target silent mid-answer beyond timeouts.body: the answer is cut and recorded as upstream_timeout', async () => {
    const res = await call('/c/stalling/stall');
    assert.equal(res.statusCode, 200);
    const id = res.headers['gatehouse-exchange-id'] as string;
    let text = '';
    await assert.rejects(async () => {
      for await (const chunk of res.body) text += chunk.toString();
    });
    assert.equal(text, 'first part;');
    const record = JSON.parse((await gateway.cli(['sessions', 'show', id, '--json'])).stdout) as { complete: boolean; errorCode: string };
    assert.equal(record.complete, false);
    assert.equal(record.errorCode, 'upstream_timeout');
  });

  test('a target with a private CA is reached with the configured CA, and refused without it', async () => {
    const ok = await call('/c/private/models');
    assert.equal(ok.statusCode, 201);
    assert.deepEqual(await ok.body.json(), { ok: true, method: 'GET', url: '/registry/models' });
    const refused = await call('/c/untrusted/models');
    assert.equal(refused.statusCode, 502);
    assert.equal(((await refused.body.json()) as { error: { code: string } }).error.code, 'upstream_unreachable');
  });

  test('a client that goes away aborts the upstream request, and the record says incomplete', async () => {
    const controller = new AbortController();
    const res = await request(`${gateway.url}/c/registry/trickle`, { dispatcher, headers: { authorization: `Bearer ${key}` }, signal: controller.signal });
    assert.equal(res.statusCode, 200);
    const id = res.headers['gatehouse-exchange-id'] as string;
    for await (const chunk of res.body) {
      assert.equal(chunk.toString(), 'first part;');
      break;
    }
    controller.abort();
    await Promise.race([abortedUpstream, new Promise((_, reject) => setTimeout(() => reject(new Error('upstream request was not aborted')), 3_000))]);
    let record: { complete: boolean; errorCode: string | null; bytesOut: number } | undefined;
    for (let i = 0; i < 20 && !record?.errorCode; i++) {
      record = JSON.parse((await gateway.cli(['sessions', 'show', id, '--json'])).stdout);
      if (!record?.errorCode) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(record!.complete, false);
    assert.equal(record!.errorCode, 'client_closed');
    assert.equal(record!.bytesOut, 'first part;'.length);
  });
  // A client that hung up while sending its body was recorded and counted as 503
  // store_unavailable: Node's "aborted" error carries code ECONNRESET, which read as a
  // store connection reset. It is client_closed, and nothing reaches the target.
  test('a client that goes away in the middle of its request body is recorded as client_closed, not store_unavailable', async () => {
    const seenBefore = seen.length;
    const { hostname, port } = new URL(gateway.url);
    await new Promise<void>((resolve, reject) => {
      const socket = connect({ port: Number(port), host: hostname, ca: pki.ca, servername: 'localhost' }, () => {
        socket.write(`POST /c/registry/upload-cut HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${key}\r\nContent-Type: application/json\r\nContent-Length: 900\r\n\r\n{"part":"one"`);
        setTimeout(() => socket.destroy(), 200);
      });
      socket.on('error', reject);
      socket.on('close', () => resolve());
    });
    let record: { operation: string; status: number; errorCode: string | null; errorDetail: string | null } | undefined;
    for (let i = 0; i < 50 && record?.operation !== 'http.POST /upload-cut'; i++) {
      const [latest] = JSON.parse((await gateway.cli(['sessions', 'list', '--limit', '1', '--json'])).stdout) as { id: string }[];
      record = latest && JSON.parse((await gateway.cli(['sessions', 'show', latest.id, '--json'])).stdout);
      if (record?.operation !== 'http.POST /upload-cut') await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(record!.operation, 'http.POST /upload-cut');
    assert.equal(record!.errorCode, 'client_closed');
    assert.equal(record!.status, 499);
    assert.match(record!.errorDetail ?? '', /^the client closed the connection after 13 bytes of the request body \(content-length 900\)/);
    assert.equal(seen.length, seenBefore);
  });
  // An `http` connection with nothing to read its answer (no credential to scan for, no
  // masking) passes the client's Accept-Encoding on, so a client that accepts gzip (curl
  // --compressed, browsers, python requests) gets a gzip answer: its compressed bytes
  // were recorded as text (mojibake in `sessions show`, nothing for `text` search).
  test('a compressed answer or request body is recorded by size only, not as its compressed bytes', async () => {
    const res = await call('/c/capped/gzipped', { method: 'POST', headers: { 'accept-encoding': 'gzip', 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: gzipSync('{"question":"zipped"}') });
    assert.equal(res.statusCode, 200);
    const wire = Buffer.from(await res.body.arrayBuffer());
    assert.deepEqual(JSON.parse(gunzipSync(wire).toString()), { answer: 'compressed on the wire' });
    const id = res.headers['gatehouse-exchange-id'] as string;
    const record = JSON.parse((await gateway.cli(['sessions', 'show', id, '--json'])).stdout) as { bytesOut: number; response: { body: string | null }; request: { body: string | null } };
    assert.equal(record.response.body, null);
    assert.equal(record.bytesOut, wire.length);
    assert.equal(record.request.body, null);
  });
  // A connection with a credential has its answers scanned for it (credential-echo.ts): a
  // compressed one is decoded, sent and recorded as the text it is.
  test('a compressed answer on a connection with a credential is decoded for its client and its record', async () => {
    const res = await call('/c/registry/gzipped', { method: 'POST', headers: { 'accept-encoding': 'gzip', 'content-type': 'application/json' }, body: '{"question":"plain"}' });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-encoding'], undefined);
    const text = await res.body.text();
    assert.deepEqual(JSON.parse(text), { answer: 'compressed on the wire' });
    const id = res.headers['gatehouse-exchange-id'] as string;
    const record = JSON.parse((await gateway.cli(['sessions', 'show', id, '--json'])).stdout) as { response: { body: string | null } };
    assert.equal(record.response.body, text);
  });
  test("a target URL's query is sent on every request, replacing the caller's parameter of that name", async () => {
    const res = await call('/c/pinned/models?api-version=2099-01-01&limit=2');
    assert.equal(res.statusCode, 201);
    assert.deepEqual(await res.body.json(), { ok: true, method: 'GET', url: '/registry/models?api-version=2024-06-01&limit=2' });
    const bare = await call('/c/pinned/models');
    assert.deepEqual(await bare.body.json(), { ok: true, method: 'GET', url: '/registry/models?api-version=2024-06-01' });
  });
});
