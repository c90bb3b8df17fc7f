import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { hasDotSegment, joinUpstreamPath, parseDataPlanePath } from '../../../src/protocols/http/connection.js';

describe('parseDataPlanePath', () => {
  const cases: ReadonlyArray<readonly [string, { connection: string; rest: string } | undefined]> = [
    ['/c/demo/chat/completions', { connection: 'demo', rest: '/chat/completions' }],
    ['/c/demo/v1/chat/completions', { connection: 'demo', rest: '/v1/chat/completions' }],
    ['/c/demo', { connection: 'demo', rest: '/' }],
    ['/c/demo/', { connection: 'demo', rest: '/' }],
    ['/c/demo?x=1', { connection: 'demo', rest: '/?x=1' }],
    ['/c/demo?next=/a/b', { connection: 'demo', rest: '/?next=/a/b' }],
    ['/c/demo/models?limit=2', { connection: 'demo', rest: '/models?limit=2' }],
    ['/c/demo/models?after=a/b&limit=2', { connection: 'demo', rest: '/models?after=a/b&limit=2' }],
    // The connection name is percent-decoded; the rest is passed on untouched.
    ['/c/my%2Dconn/x%20y', { connection: 'my-conn', rest: '/x%20y' }],
    ['/c/%64emo/models', { connection: 'demo', rest: '/models' }],
    ['/c/caf%C3%A9/x', { connection: 'café', rest: '/x' }],
    ['/c/a%2Fb/x', { connection: 'a/b', rest: '/x' }],
    // Malformed percent-encoding in the name: no route, never a throw.
    ['/c/%E0%A4%A/x', undefined],
    ['/c/%/x', undefined],
    ['/c/%zz', undefined],
    // Not data-plane paths.
    ['/x/demo/chat/completions', undefined],
    ['/', undefined],
    ['', undefined],
    ['/c', undefined],
    ['/c/', undefined],
    ['/c//chat/completions', undefined],
    ['/c/?x=1', undefined],
    ['/cdemo/x', undefined],
    ['/C/demo/x', undefined],
    ['http://gw/c/demo/x', undefined],
  ];
  for (const [url, expected] of cases) {
    test(`${JSON.stringify(url)} → ${expected ? `${expected.connection} ${expected.rest}` : 'undefined'}`, () => {
      assert.deepEqual(parseDataPlanePath(url), expected);
    });
  }

  test('dot segments, plain or percent-encoded, are detected so they cannot leave the connection', () => {
    for (const url of ['/c/demo/../admin', '/c/demo/v1/../../admin', '/c/demo/%2e%2e/admin', '/c/demo/%2E./admin', '/c/demo/./x', '/c/demo/..', '/c/demo/..?x=1']) {
      const route = parseDataPlanePath(url);
      assert.ok(route === undefined || hasDotSegment(route.rest), `${url} → ${JSON.stringify(route)}`);
    }
    for (const url of ['/c/demo/v1.2/models', '/c/demo/.well-known/x', '/c/demo/a..b', '/c/demo/x?path=../y']) {
      assert.equal(hasDotSegment(parseDataPlanePath(url)!.rest), false, url);
    }
  });

  test('security: dot segments a target could resolve some other way are refused too (backslash, fragment, ;params, encoded twice, encoded slash)', () => {
    const escapes = ['/c/demo/..\\admin', '/c/demo/%2e%2e\\admin', '/c/demo/..#x', '/c/demo/..;/admin', '/c/demo/..%2fadmin', '/c/demo/..%5cadmin', '/c/demo/%252e%252e/admin', '/c/demo/v1/%25252e%25252e/admin', '/c/demo/.%2E?x'];
    for (const url of escapes) assert.equal(hasDotSegment(parseDataPlanePath(url)!.rest), true, url);
    // What a WHATWG URL parser (new URL, as Node targets use) makes of the forwarded path
    // stays under the base path for every path that is not refused.
    for (const url of [...escapes, '/c/demo/chat/completions', '/c/demo/files/100%25', '/c/demo/a..b/%2e%2e.x', '/c/demo/...', '/c/demo/.well-known/x']) {
      const rest = parseDataPlanePath(url)!.rest;
      if (hasDotSegment(rest)) continue;
      assert.ok(new URL(joinUpstreamPath('/v1', rest), 'http://target').pathname.startsWith('/v1/'), url);
    }
    for (const url of ['/c/demo/files/100%25', '/c/demo/a..b/%2e%2e.x', '/c/demo/...', '/c/demo/models/org%2Fmodel']) assert.equal(hasDotSegment(parseDataPlanePath(url)!.rest), false, url);
  });
});

describe('joinUpstreamPath', () => {
  const cases: ReadonlyArray<readonly [string, string, string]> = [
    ['', '/chat/completions', '/chat/completions'],
    ['/', '/chat/completions', '/chat/completions'],
    ['/v1', '/chat/completions', '/v1/chat/completions'],
    ['/v1/', '/chat/completions', '/v1/chat/completions'],
    ['/openai/v1', '/models?limit=2', '/openai/v1/models?limit=2'],
    ['/v1', '/', '/v1/'],
    ['/v1', '/?x=1', '/v1/?x=1'],
    ['', '/?x=1', '/?x=1'],
  ];
  for (const [base, rest, expected] of cases) {
    test(`${JSON.stringify(base)} + ${JSON.stringify(rest)} → ${expected}`, () => {
      assert.equal(joinUpstreamPath(base, rest), expected);
    });
  }

  test('composes with parseDataPlanePath', () => {
    const route = parseDataPlanePath('/c/openai/chat/completions?api-version=2024-10-21');
    assert.ok(route);
    assert.equal(joinUpstreamPath('/v1', route.rest), '/v1/chat/completions?api-version=2024-10-21');
  });

  // A target's query (Azure OpenAI's api-version) was dropped: every request went without it.
  test("a target's query goes on every request, before the caller's, and replaces a caller's parameter of the same name", () => {
    const base = '/openai/deployments/gpt4o';
    assert.equal(joinUpstreamPath(base, '/chat/completions', 'api-version=2024-06-01'), '/openai/deployments/gpt4o/chat/completions?api-version=2024-06-01');
    assert.equal(joinUpstreamPath(base, '/chat/completions?api-version=2099-01-01&x=a%20b', 'api-version=2024-06-01'), '/openai/deployments/gpt4o/chat/completions?api-version=2024-06-01&x=a%20b');
    assert.equal(joinUpstreamPath(base, '/files?api%2Dversion=1&limit=2&', 'api-version=2024-06-01&tenant=t1'), '/openai/deployments/gpt4o/files?api-version=2024-06-01&tenant=t1&limit=2');
    assert.equal(joinUpstreamPath('', '/?', 'k=v'), '/?k=v');
  });
});
