// Security regression, end to end: a target that sends the credential the gateway
// injected back (an httpbin-style /headers, an error quoting the refused key, a
// streamed answer, a compressed one) must not hand it to the caller or the recording.
// The real gateway process, a real upstream on 127.0.0.1, the openai client and fetch.

import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import OpenAI from 'openai';
import { credentialMarker, markerFor } from '../../src/protocols/http/credential-echo.js';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

// A quote, a backslash and slashes: the JSON-escaped form differs from the raw one.
const secret = 'sk-echo/test"key\\0123456789abcdefghij';
const jsonForm = JSON.stringify(secret).slice(1, -1);
const basicPair = 'svc-reader:pa/ss word-0123456789';
const basicSecret = Buffer.from(basicPair).toString('base64');
const forms = [secret, jsonForm, jsonForm.replaceAll('/', '\\/'), encodeURIComponent(secret), basicSecret, basicPair, encodeURIComponent(basicPair)];

function sseBody(): Buffer {
  const chunk = (content: string) => `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;
  return Buffer.from(chunk('your key is ') + chunk(`Bearer ${secret} ok`) + 'data: [DONE]\n\n');
}

function echoUpstream(seen: Array<IncomingMessage['headers']>) {
  return (req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    req.on('end', () => {
      seen.push(req.headers);
      const url = req.url!;
      const echo = JSON.stringify({ headers: req.headers, url });
      if (url.startsWith('/v1/chat/completions')) {
        // The event stream cut in two at the offset the test asks for, written apart.
        const body = sseBody();
        const cut = Number(req.headers['x-cut'] ?? 0);
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(body.subarray(0, cut));
        setTimeout(() => res.end(body.subarray(cut)), 2);
      } else if (url.startsWith('/v1/refuse') || url.startsWith('/api/refuse')) {
        const key = req.headers['authorization']!;
        res.writeHead(401, { 'content-type': 'application/json', 'x-echo-key': key });
        res.end(JSON.stringify({ error: { message: `Incorrect API key provided: ${key}. Retry at https://example.test/?k=${encodeURIComponent(key.slice(key.indexOf(' ') + 1))}`, type: 'invalid_request_error' } }));
      } else if (url.startsWith('/api/bomb')) {
        // 4 MiB of zeros in about 4 KiB of gzip.
        const body = gzipSync(Buffer.alloc(4 * 1024 * 1024));
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-encoding': 'gzip', 'content-length': body.length });
        res.end(body);
      } else if (url.startsWith('/api/slashed')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(echo.replaceAll('/', '\\/'));
      } else if (url.startsWith('/api/compressed')) {
        // Compressed whatever the request asked for.
        const encoding = new URL(url, 'http://x').searchParams.get('encoding')!;
        const body = encoding === 'gzip' ? gzipSync(echo) : encoding === 'deflate' ? deflateSync(echo) : encoding === 'br' ? brotliCompressSync(echo) : Buffer.from(echo);
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': encoding, 'content-length': body.length });
        res.end(req.method === 'HEAD' ? undefined : body);
      } else {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(echo) });
        res.end(echo);
      }
    });
  };
}

describe('security: a target that echoes its credential', () => {
  const seen: Array<IncomingMessage['headers']> = [];
  let upstream: Server;
  let gateway: GatewayProcess;
  let key: string;
  let adminKey: string;

  before(async () => {
    upstream = createServer(echoUpstream(seen));
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const origin = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    const yaml = `gateway:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: 0 }
  groups: [admins]
log: { level: info }
connections:
  - name: demo
    type: openai
    target: ${origin}/v1
    credential: { secret: "\${UPSTREAM_KEY}" }
    access: { groups: [ml] }
  - name: api
    type: http
    target: ${origin}/api
    credential: { scheme: Basic, secret: "\${BASIC_KEY}" }
    limits: { maxResponseBody: 1MiB }
    access: { groups: [ml] }
`;
    gateway = await startGatewayProcess(yaml, { env: { UPSTREAM_KEY: secret, BASIC_KEY: basicSecret } });
    key = await gateway.createKey('bot', ['ml']);
    adminKey = await gateway.createKey('auditor', ['admins']);
  });

  after(async () => {
    await gateway?.stop();
    await new Promise((resolve) => upstream?.close(resolve));
  });

  const get = (path: string, init: RequestInit = {}) => fetch(`${gateway.url}${path}`, { ...init, headers: { authorization: `Bearer ${key}`, ...(init.headers as Record<string, string>) } });
  const record = async (id: string) => (await (await fetch(`${gateway.adminUrl}/api/sessions/${id}`, { headers: { authorization: `Bearer ${adminKey}` } })).json()) as Record<string, any>;
  const assertClean = (text: string, where: string) => {
    for (const form of forms) assert.ok(!text.includes(form), `${where} holds the credential (${form})`);
  };

  test('an httpbin-style /headers answer: the injected credential replaced, length and JSON kept, recorded scrubbed and counted', async () => {
    const res = await get('/c/demo/headers');
    assert.equal(res.status, 200);
    const text = await res.text();
    assertClean(text, 'the answer');
    const body = JSON.parse(text) as { headers: Record<string, string> };
    assert.equal(body.headers['authorization'], `Bearer ${markerFor(Buffer.byteLength(jsonForm))}`);
    assert.equal(Number(res.headers.get('content-length')), Buffer.byteLength(text), 'Content-Length still true');
    assert.equal(seen.at(-1)!['authorization'], `Bearer ${secret}`, 'the target did get the credential');

    const id = res.headers.get('gatehouse-exchange-id')!;
    const recorded = await record(id);
    assertClean(JSON.stringify(recorded), 'the record');
    assert.ok(JSON.stringify(recorded).includes(credentialMarker));
    assert.deepEqual(recorded['maskCounts'], { target_credential: 1 });
    const { stdout } = await gateway.cli(['sessions', 'show', id]);
    assertClean(stdout, 'sessions show');
    assert.match(stdout, /^masked {4}target_credential 1$/m);
    const logs = await gateway.waitForLog(/target echoed its credential/);
    assert.match(logs, new RegExp(`"exchange":"${id}".*target echoed its credential`));
    assertClean(logs, 'the logs');
    const metrics = await (await fetch(`${gateway.adminUrl}/metrics`)).text();
    assert.match(metrics, /gatehouse_target_credential_scrubs_total\{connection="demo"\} [1-9]/);
  });

  test('an error that quotes the refused key (in its message, a URL and a header), read with the openai client', async () => {
    const client = new OpenAI({ baseURL: `${gateway.url}/c/demo`, apiKey: key, maxRetries: 0 });
    const error = (await client.get('/refuse').catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    assert.ok(error instanceof OpenAI.APIError);
    assert.equal(error.status, 401);
    assertClean(error.message, 'the error message');
    assert.match(error.message, /Incorrect API key provided: Bearer \[REDACTED:target_credential\]\**\. Retry at https:\/\/example\.test\/\?k=\[REDACTED/);
    const headers = error.headers as unknown as Headers;
    assertClean(JSON.stringify([...headers]), 'the headers');
    assert.match(headers.get('x-echo-key')!, /^Bearer \[REDACTED:target_credential\]\**$/);
    const recorded = await record(headers.get('gatehouse-exchange-id')!);
    assertClean(JSON.stringify(recorded), 'the record');
    assert.deepEqual(recorded['maskCounts'], { target_credential: 3 });
  });

  test('security: a streamed answer cut at every offset: the openai client reads every event, without the credential', async () => {
    const client = new OpenAI({ baseURL: `${gateway.url}/c/demo`, apiKey: key, maxRetries: 0 });
    const length = sseBody().length;
    for (let cut = 1; cut < length; cut++) {
      const { data: stream, response } = await client.chat.completions.create({ model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] }, { headers: { 'x-cut': String(cut) } }).withResponse();
      let text = '';
      for await (const event of stream) text += event.choices[0]?.delta?.content ?? '';
      assert.equal(text, `your key is Bearer ${markerFor(Buffer.byteLength(jsonForm))} ok`, `cut at ${cut}`);
      if (cut === 1 || cut === length - 1) assertClean(JSON.stringify(await record(response.headers.get('gatehouse-exchange-id')!)), 'the record');
    }
  });

  test('Basic: the base64 credential and the decoded user:password pair, JSON with escaped slashes', async () => {
    const res = await get('/c/api/slashed');
    const text = await res.text();
    assertClean(text, 'the answer');
    assert.equal((JSON.parse(text) as { headers: Record<string, string> }).headers['authorization'], `Basic ${markerFor(basicSecret.length)}`);
    const refused = await get('/c/api/refuse');
    const error = await refused.text();
    assertClean(error, 'the error');
    assertClean(JSON.stringify([...refused.headers]), 'the headers');
  });

  test('a compressed answer the target sent despite Accept-Encoding: identity (gzip, deflate, br) is decoded, scrubbed and sent uncompressed; a HEAD answer stays empty', async () => {
    for (const encoding of ['gzip', 'deflate', 'br']) {
      const res = await get(`/c/api/compressed?encoding=${encoding}`, { headers: { 'accept-encoding': 'gzip, deflate, br' } });
      assert.equal(res.status, 200, encoding);
      assert.equal(seen.at(-1)!['accept-encoding'], 'identity', 'the gateway asked for an uncompressed answer');
      assert.equal(res.headers.get('content-encoding'), null, encoding);
      const text = await res.text();
      assertClean(text, `the ${encoding} answer`);
      assert.equal((JSON.parse(text) as { headers: Record<string, string> }).headers['authorization'], `Basic ${markerFor(basicSecret.length)}`);
      assert.deepEqual((await record(res.headers.get('gatehouse-exchange-id')!))['maskCounts'], { target_credential: 1 });
    }
    const head = await get('/c/api/compressed?encoding=gzip', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), '');
    // Decoded bytes count against the answer size limit: a small gzip bomb cannot expand past it.
    const bomb = await get('/c/api/bomb');
    await bomb.arrayBuffer().catch(() => undefined);
    const bombed = await record(bomb.headers.get('gatehouse-exchange-id')!);
    assert.equal(bombed['errorCode'], 'response_too_large');
    const unknown = await get('/c/api/compressed?encoding=zstd');
    assert.equal(unknown.status, 502);
    assert.equal(((await unknown.json()) as { error: { code: string } }).error.code, 'masking_failed');
    const refused = await record(unknown.headers.get('gatehouse-exchange-id')!);
    assert.equal(refused['errorDetail'], 'connection api: cannot scan a zstd-encoded answer for the target credential');
  });
});
