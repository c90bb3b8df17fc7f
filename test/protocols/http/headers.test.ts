import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { bearerToken, downstreamResponseHeaders, upstreamRequestHeaders } from '../../../src/protocols/http/headers.js';

const plain = { identityEncoding: false, bodyLength: undefined } as const;

describe('upstreamRequestHeaders', () => {
  test('drops hop-by-hop headers (RFC 9110 §7.6.1)', () => {
    const incoming: IncomingHttpHeaders = {
      connection: 'keep-alive',
      'keep-alive': 'timeout=5',
      'proxy-connection': 'keep-alive',
      'transfer-encoding': 'chunked',
      te: 'trailers',
      trailer: 'x-checksum',
      upgrade: 'websocket',
      'proxy-authenticate': 'Basic',
      'proxy-authorization': 'Basic abc',
      'content-type': 'application/json',
    };
    assert.deepEqual(upstreamRequestHeaders(incoming, plain), { 'content-type': 'application/json' });
  });

  test('drops every header the Connection header names, case-insensitively, string or list', () => {
    const incoming: IncomingHttpHeaders = { connection: 'Keep-Alive, X-Trace ,x-debug', 'x-trace': '1', 'x-debug': 'on', 'x-kept': 'yes' };
    assert.deepEqual(upstreamRequestHeaders(incoming, plain), { 'x-kept': 'yes' });
    const listed = { connection: ['close', 'x-secret'], 'x-secret': 's', accept: 'application/json' } as unknown as IncomingHttpHeaders;
    assert.deepEqual(upstreamRequestHeaders(listed, plain), { accept: 'application/json' });
  });

  test("never forwards the caller's credentials, host, cookies, expect, content-length or gatehouse-* headers", () => {
    const incoming: IncomingHttpHeaders = {
      authorization: 'Bearer gh_callers_key',
      cookie: 'session=1',
      host: 'gateway.local:8080',
      expect: '100-continue',
      'content-length': '999',
      'gatehouse-justification': 'ticket 42',
      'gatehouse-anything': 'x',
      'openai-organization': 'org-1',
      'user-agent': 'OpenAI/JS 6.0',
      'x-stainless-lang': 'js',
    };
    assert.deepEqual(upstreamRequestHeaders(incoming, plain), { 'openai-organization': 'org-1', 'user-agent': 'OpenAI/JS 6.0', 'x-stainless-lang': 'js' });
  });

  test('identity accept-encoding when asked, replacing the caller’s', () => {
    const incoming: IncomingHttpHeaders = { 'accept-encoding': 'gzip, br' };
    assert.deepEqual(upstreamRequestHeaders(incoming, { identityEncoding: true, bodyLength: undefined }), { 'accept-encoding': 'identity' });
    assert.deepEqual(upstreamRequestHeaders(incoming, plain), { 'accept-encoding': 'gzip, br' });
  });

  test('the caller’s address is appended to X-Forwarded-For, after what the caller sent', () => {
    assert.deepEqual(upstreamRequestHeaders({}, { ...plain, clientAddress: '192.0.2.7' }), { 'x-forwarded-for': '192.0.2.7' });
    assert.deepEqual(upstreamRequestHeaders({ 'x-forwarded-for': '10.0.0.1, 10.0.0.2' }, { ...plain, clientAddress: '::1' }), { 'x-forwarded-for': '10.0.0.1, 10.0.0.2, ::1' });
  });

  test('content-length is the body actually sent, not the caller’s', () => {
    assert.deepEqual(upstreamRequestHeaders({ 'content-length': '5', 'content-type': 'application/json' }, { identityEncoding: false, bodyLength: 42 }), { 'content-type': 'application/json', 'content-length': '42' });
    assert.deepEqual(upstreamRequestHeaders({ 'content-length': '0' }, { identityEncoding: false, bodyLength: 0 }), { 'content-length': '0' });
  });

  test('multi-valued headers are joined with ", "; undefined values skipped', () => {
    const incoming = { 'x-multi': ['a', 'b'], 'x-none': undefined } as unknown as IncomingHttpHeaders;
    assert.deepEqual(upstreamRequestHeaders(incoming, plain), { 'x-multi': 'a, b' });
  });

  test('does not modify its input', () => {
    const incoming: IncomingHttpHeaders = { authorization: 'Bearer x', connection: 'x-a', 'x-a': '1' };
    const copy = structuredClone(incoming);
    upstreamRequestHeaders(incoming, { identityEncoding: true, bodyLength: 3 });
    assert.deepEqual(incoming, copy);
  });
});

describe('downstreamResponseHeaders', () => {
  test('drops hop-by-hop and Connection-named headers, keeps the rest (arrays intact)', () => {
    const upstream = {
      connection: 'keep-alive, x-internal',
      'keep-alive': 'timeout=5',
      'transfer-encoding': 'chunked',
      'x-internal': 'secret',
      'content-type': 'text/event-stream',
      'set-cookie': ['a=1', 'b=2'],
      'x-request-id': 'req_1',
      'openai-processing-ms': '12',
      absent: undefined,
    };
    assert.deepEqual(downstreamResponseHeaders(upstream), {
      'content-type': 'text/event-stream',
      'set-cookie': ['a=1', 'b=2'],
      'x-request-id': 'req_1',
      'openai-processing-ms': '12',
    });
  });

  test('an answer without a Connection header keeps everything but hop-by-hop', () => {
    assert.deepEqual(downstreamResponseHeaders({ 'content-length': '10', upgrade: 'h2c', 'content-type': 'application/json' }), { 'content-length': '10', 'content-type': 'application/json' });
  });
});

describe('bearerToken', () => {
  const cases: ReadonlyArray<readonly [string | undefined, string | undefined]> = [
    ['Bearer gh_abc.def', 'gh_abc.def'],
    ['bearer gh_abc', 'gh_abc'],
    ['BEARER gh_abc', 'gh_abc'],
    ['BeArEr gh_abc', 'gh_abc'],
    ['Bearer   padded  ', 'padded'],
    [undefined, undefined],
    ['', undefined],
    ['Bearer', undefined],
    ['Bearer ', undefined],
    ['Bearer    ', undefined],
    ['Basic dXNlcjpwYXNz', undefined],
    ['Token abc', undefined],
    ['Bearerabc', undefined],
    ['abc', undefined],
  ];
  for (const [header, token] of cases) {
    test(`${JSON.stringify(header) ?? 'undefined'} → ${JSON.stringify(token) ?? 'undefined'}`, () => {
      assert.equal(bearerToken(header), token);
    });
  }
});
