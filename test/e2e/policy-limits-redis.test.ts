// Limits shared by two gateway processes through the real Redis: under concurrent load
// split across both, exactly N requests are allowed and the rest refused with 429 and
// Retry-After; concurrency slots are shared the same way and released at the end.
// Each run uses its own Redis key prefix and deletes its keys afterwards.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { demoConnectionYaml, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { deleteKeys, redisUnavailable, testRedisUrl, uniqueKeyPrefix } from '../helpers/redis.js';

const upstreamKey = 'sk-upstream-target-secret';
const skip = await redisUnavailable();

describe('limits across two gateways sharing Redis', { skip }, () => {
  const prefix = uniqueKeyPrefix();
  let upstream: DemoUpstream;
  const gateways: GatewayProcess[] = [];
  const keys: string[][] = [];

  before(async () => {
    upstream = await startDemoUpstream({ apiKey: upstreamKey, streamDelayMs: 150 });
    const config = `${demoConnectionYaml(upstream.url).replace('access: { groups: [ml] }', 'access: { groups: [bulk, slow] }')}
policy:
  limits:
    store: redis
    redis:
      url: \${REDIS_URL}
      keyPrefix: "${prefix}"
    rules:
      - name: bulk-requests
        per: identity
        match: { groups: [bulk] }
        window: 1h
        requests: 10
      - name: slow-concurrency
        per: connection
        match: { groups: [slow] }
        concurrent: 2
`;
    for (let i = 0; i < 2; i++) {
      const gateway = await startGatewayProcess(config, { env: { UPSTREAM_KEY: upstreamKey, REDIS_URL: testRedisUrl } });
      gateways.push(gateway);
      keys.push([await gateway.createKey('bulk-bot', ['bulk']), await gateway.createKey('slow-bot', ['slow'])]);
    }
  });

  after(async () => {
    await Promise.all(gateways.map((g) => g.stop()));
    await upstream?.close();
    await deleteKeys(prefix);
  });

  function chat(gateway: number, key: string, stream = false) {
    return fetch(`${gateways[gateway]!.url}/c/demo/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo-chat', stream, messages: [{ role: 'user', content: 'one two three four five six' }] }),
    }).then(async (res) => ({ status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.text() }));
  }

  test('30 concurrent requests over both gateways: exactly 10 allowed, 20 refused with 429 and Retry-After', async () => {
    // Fixed 1 h windows: stay clear of a window boundary so all 30 land in one window.
    const intoHour = Date.now() % 3_600_000;
    if (intoHour > 3_590_000) await new Promise((r) => setTimeout(r, 3_600_000 - intoHour + 500));
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => chat(i % 2, keys[i % 2]![0]!)));
    const allowed = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status === 429);
    assert.equal(allowed.length, 10, `statuses: ${results.map((r) => r.status).join(',')}`);
    assert.equal(refused.length, 20);
    for (const r of refused) {
      const seconds = Number(r.retryAfter);
      assert.ok(Number.isInteger(seconds) && seconds >= 1 && seconds <= 3600, `retry-after ${r.retryAfter}`);
      const body = JSON.parse(r.body) as { error: { code: string; rule: string } };
      assert.equal(body.error.code, 'rate_limited');
      assert.equal(body.error.rule, 'bulk-requests');
    }
    // Both gateways did some of the allowing (the counter is shared, not per process).
    const second = await Promise.all([chat(0, keys[0]![0]!), chat(1, keys[1]![0]!)]);
    assert.deepEqual(second.map((r) => r.status), [429, 429]);
  });

  test('a concurrency limit of 2 holds across both gateways, and slots are released at the end', async () => {
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => chat(i % 2, keys[i % 2]![1]!, true)));
    const statuses = results.map((r) => r.status).sort();
    assert.deepEqual(statuses, [200, 200, 429, 429, 429, 429]);
    const refused = results.find((r) => r.status === 429)!;
    assert.equal(refused.retryAfter, '1');
    assert.match(refused.body, /Rate limit \\"slow-concurrency\\" reached: too many concurrent requests\. Retry after 1 s\./);
    // All slots were released: two more fit again, one on each gateway.
    const again = await Promise.all([chat(0, keys[0]![1]!, true), chat(1, keys[1]![1]!, true)]);
    assert.deepEqual(again.map((r) => r.status), [200, 200]);
  });
});
