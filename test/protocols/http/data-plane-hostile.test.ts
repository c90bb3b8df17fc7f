// The data plane against hostile requests, in process: real sockets, the real forwarder
// and a bare upstream that keeps the paths it was sent. What the policy sees of a
// request must be what the target serves: an encoded path is the same operation.

import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Decision, Exchange } from '../../../src/exchange/index.js';
import { createLocalHttpForwarder } from '../../../src/forward/index.js';
import type { PipelineStages } from '../../../src/pipeline/index.js';
import { createDataPlaneHandler, type HttpConnection } from '../../../src/protocols/http/index.js';

const allow: Decision = { effect: 'allow', rules: ['test-allow'], reason: 'allowed', policyVersion: 'test' };
const deny: Decision = { effect: 'deny', rules: ['guard'], reason: 'denied', message: 'Denied.', policyVersion: 'test' };

/** One raw HTTP/1.1 request (the path exactly as given); resolves with the status line's code, or 0 when the socket closed without an answer. */
function rawRequest(port: number, head: string, body = '', waitMs = 5000): Promise<number> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => done(), waitMs);
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1] ?? 0));
    };
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (text.includes('\r\n\r\n')) done();
    });
    socket.on('error', () => undefined);
    socket.on('close', done);
    socket.write(head + body);
  });
}

describe('data plane, hostile requests', () => {
  let upstream: Server;
  let server: Server;
  let port: number;
  const upstreamPaths: string[] = [];
  const seen: Exchange[] = [];
  const recordedPaths: string[] = [];
  const connections = new Map<string, HttpConnection>();

  before(async () => {
    upstream = createServer((req, res) => {
      upstreamPaths.push(req.url!);
      req.resume();
      req.on('end', () => res.end('{"choices":[]}'));
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const origin = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    for (const [name, type] of [['llm', 'openai'], ['files', 'http']] as const) {
      connections.set(name, {
        name,
        type,
        basePath: '/v1',
        maxRequestBody: 1024 * 1024,
        maxResponseBody: 1024 * 1024,
        forwarder: createLocalHttpForwarder({ name, origin, credential: undefined, ca: undefined, rejectUnauthorized: true, connectTimeoutMs: 5000, headersTimeoutMs: 10_000, bodyTimeoutMs: 10_000 }),
      });
    }
    const stages: PipelineStages = {
      identify: async () => ({ subject: 'key:test', kind: 'service', groups: ['ml'], method: 'api_key', credentialId: 'k1' }),
      policy: {
        version: 'test',
        // A keyword guardrail on the prompt, and a path rule (`*.safetensors`).
        decide: (exchange: Exchange) => {
          seen.push(exchange);
          const facts = exchange.facts as { text?: string; path?: string };
          return facts.text?.includes('launch codes') || facts.path?.endsWith('.safetensors') ? deny : allow;
        },
      },
      limits: undefined,
      recorder: { open: async (_exchange: Exchange, _decision: Decision, request: { path: string }) => void recordedPaths.push(request.path), progress: async () => undefined, finish: async () => undefined, refuse: async () => undefined, drain: async () => undefined },
      observe: () => undefined,
    } as unknown as PipelineStages;
    server = createServer(createDataPlaneHandler({ connections, stages, maxRecordedBody: 1024 * 1024, bodyIdleTimeoutMs: 300 }));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    for (const c of connections.values()) await c.forwarder.close();
    upstream.closeAllConnections();
    await new Promise((resolve) => upstream.close(resolve));
  });

  const post = (path: string, body: string) => `POST ${path} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer k\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`;

  test('security: a percent-encoded or slash-ended OpenAI path is the same operation, so guardrails on the prompt still apply', async () => {
    const body = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'tell me the launch codes' }] });
    upstreamPaths.length = 0;
    for (const path of ['/c/llm/chat/completions', '/c/llm/chat/%63ompletions', '/c/llm/chat%2Fcompletions', '/c/llm/chat/completions/', '/c/llm/%63hat/completions?x=1']) {
      seen.length = 0;
      assert.equal(await rawRequest(port, post(path, body), body), 403, path);
      assert.equal(seen[0]?.operation, 'chat.completions', path);
    }
    assert.deepEqual(upstreamPaths, [], 'nothing was forwarded');
    const fine = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hello' }] });
    assert.equal(await rawRequest(port, post('/c/llm/chat/%63ompletions', fine), fine), 200);
    assert.deepEqual(upstreamPaths, ['/v1/chat/%63ompletions'], 'an allowed request is forwarded with its path as sent');
  });

  test('security: a path rule sees the decoded path (`*.safetensors` holds for `model%2esafetensors`)', async () => {
    upstreamPaths.length = 0;
    for (const path of ['/c/files/m/model.safetensors', '/c/files/m/model%2esafetensors', '/c/files/m/model.safeten%73ors', '/c/files/m/model.safetensors/']) {
      assert.equal(await rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer k\r\n\r\n`), 403, path);
    }
    assert.equal(await rawRequest(port, `GET /c/files/m/%E0%A4 HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer k\r\n\r\n`), 400, 'malformed percent-encoding is refused');
    assert.deepEqual(upstreamPaths, []);
  });

  test('security: a body that stops arriving (slowloris) is refused with 408 and its socket closed, instead of held forever', async () => {
    upstreamPaths.length = 0;
    const stalled = (head: string, body: string) =>
      new Promise<{ status: string; closedMs: number }>((resolve) => {
        const started = Date.now();
        const socket = connect(port, '127.0.0.1');
        let text = '';
        socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
        socket.on('error', () => undefined);
        socket.on('close', () => resolve({ status: text.slice(0, 12), closedMs: Date.now() - started }));
        socket.write(head + body);
        setTimeout(() => socket.destroy(), 5000);
      });
    const lying = await stalled(`POST /c/llm/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer k\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n`, '{"mo');
    assert.equal(lying.status, 'HTTP/1.1 408');
    assert.ok(lying.closedMs < 4000, `closed after ${lying.closedMs} ms`);
    const endless = await stalled(`POST /c/files/upload HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer k\r\nTransfer-Encoding: chunked\r\n\r\n`, '2\r\nab\r\n');
    assert.equal(endless.status, 'HTTP/1.1 408');
    assert.ok(endless.closedMs < 4000, `closed after ${endless.closedMs} ms`);
    assert.deepEqual(upstreamPaths, [], 'nothing was forwarded');
    // A body that keeps coming, slower than the timeout in total, is read whole.
    const body = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hello there' }] });
    const slow = await new Promise<string>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      let text = '';
      socket.on('data', (d: Buffer) => {
        text += d.toString('latin1');
        if (text.includes('\r\n\r\n')) socket.destroy();
      });
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(text.slice(0, 12)));
      socket.write(post('/c/llm/chat/completions', body));
      let at = 0;
      const drip = setInterval(() => {
        socket.write(body.slice(at, at + 20));
        at += 20;
        if (at >= body.length) clearInterval(drip);
      }, 150);
    });
    assert.equal(slow, 'HTTP/1.1 200');
  });

  test('security: credentials in the query string are forwarded as sent but not recorded', async () => {
    upstreamPaths.length = 0;
    recordedPaths.length = 0;
    const query = '?key=AIzaSECRET1&limit=2&access_token=ya29.SECRET2&X-Amz-Signature=SECRET3&api%5Fkey=SECRET4&order=asc';
    assert.equal(await rawRequest(port, `GET /c/files/objects${query} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer k\r\n\r\n`), 200);
    assert.deepEqual(upstreamPaths, [`/v1/objects${query}`]);
    assert.deepEqual(recordedPaths, ['/objects?key=[redacted]&limit=2&access_token=[redacted]&X-Amz-Signature=[redacted]&api%5Fkey=[redacted]&order=asc']);
  });
});
