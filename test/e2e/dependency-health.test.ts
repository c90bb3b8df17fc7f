// What an operator of a scaled-out gateway sees when its PostgreSQL store or its Redis
// goes away and comes back, without sending a request or probing /readyz: one log line
// when the dependency stops answering and one when it answers again (with how long it
// was gone), and `gatehouse_dependency_up{dependency}` on /metrics. During a Redis
// outage, requests under a limit are refused as before, but the log is not flooded
// with a `limit store error` line per request (it was: one each, under load thousands a
// second). `gatehouse_policy_info{version}` names the running policy, so a dashboard
// sees a gateway whose config differs from its peers'. Both dependencies are reached
// through TCP relays the test takes away (the machine's services keep running).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { createTestPostgresDatabase } from '../helpers/databases.js';
import { demoConnectionYaml, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { deleteKeys, redisUnavailable, testRedisUrl, uniqueKeyPrefix } from '../helpers/redis.js';
import { startTcpRelay, type TcpRelay } from '../helpers/tcp-relay.js';

const database = await createTestPostgresDatabase();
const redisSkip = await redisUnavailable();
const skip = 'skip' in database ? database.skip : redisSkip;

describe('dependency health in the log and on /metrics', { skip }, () => {
  const db = database as { url: string; drop(): Promise<void> };
  const prefix = uniqueKeyPrefix();
  let pgRelay: TcpRelay;
  let redisRelay: TcpRelay;
  let upstream: DemoUpstream;
  let gateway: GatewayProcess;
  let adminKey: string;

  before(async () => {
    const storeUrl = new URL(db.url);
    pgRelay = await startTcpRelay(Number(storeUrl.port || 5432), storeUrl.hostname);
    storeUrl.hostname = '127.0.0.1';
    storeUrl.port = String(pgRelay.port);
    const redisUrl = new URL(testRedisUrl);
    redisRelay = await startTcpRelay(Number(redisUrl.port || 6379), redisUrl.hostname);
    redisUrl.hostname = '127.0.0.1';
    redisUrl.port = String(redisRelay.port);
    upstream = await startDemoUpstream({ apiKey: 'sk-upstream-health' });
    const config = `${demoConnectionYaml(upstream.url).replace('access: { groups: [ml] }', 'access: { groups: [ml, bulk] }')}
policy:
  limits:
    store: redis
    redis: { url: "\${REDIS_URL}", keyPrefix: "${prefix}" }
    rules:
      - { name: bulk-requests, match: { groups: [bulk] }, window: 1h, requests: 1000 }
`;
    const env = { UPSTREAM_KEY: 'sk-upstream-health', STORE_URL: storeUrl.toString(), REDIS_URL: redisUrl.toString() };
    gateway = await startGatewayProcess(config, { env, store: 'store:\n  postgres: { url: "${STORE_URL}" }\n' });
    adminKey = await gateway.createKey('admin', ['admins']);
  });
  after(async () => {
    await pgRelay?.up(); // a gateway stops cleanly only with its store back
    await redisRelay?.up();
    await gateway?.stop();
    await pgRelay?.close();
    await redisRelay?.close();
    await upstream?.close();
    await deleteKeys(prefix);
    await db.drop();
  });

  const metric = async (name: string) => {
    const text = await (await fetch(`${gateway.adminUrl}/metrics`)).text();
    return text.split('\n').filter((line) => line.startsWith(name));
  };
  async function eventually(check: () => Promise<void>, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms;
    for (;;) {
      try {
        return await check();
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }
  const count = (text: string, pattern: RegExp) => text.split('\n').filter((line) => pattern.test(line)).length;

  test('the store goes away and comes back: one line each way, and gatehouse_dependency_up{dependency="store"} follows', async () => {
    assert.deepEqual(await metric('gatehouse_dependency_up{'), ['gatehouse_dependency_up{dependency="store"} 1', 'gatehouse_dependency_up{dependency="limits"} 1']);
    await pgRelay.down();
    await eventually(async () => assert.deepEqual(await metric('gatehouse_dependency_up{dependency="store"}'), ['gatehouse_dependency_up{dependency="store"} 0']));
    await new Promise((resolve) => setTimeout(resolve, 2500)); // more checks fail: still one line
    await pgRelay.up();
    await eventually(async () => assert.deepEqual(await metric('gatehouse_dependency_up{dependency="store"}'), ['gatehouse_dependency_up{dependency="store"} 1']));
    const logs = await gateway.waitForLog(/"msg":"the store answers again"/);
    assert.equal(count(logs, /"level":"warn".*"dependency":"store".*"msg":"the store does not answer: requests are refused until it does"/), 1, logs);
    assert.equal(count(logs, /"level":"info".*"dependency":"store","downMs":\d+,"msg":"the store answers again"/), 1, logs);
  });

  test('Redis goes away under load: requests under a limit are refused, the log says so once (not a line per request), and says when it is back', async () => {
    const bulk = await gateway.createKey('bulk-bot', ['bulk']);
    await redisRelay.down();
    const refused = await Promise.all(
      Array.from({ length: 40 }, () =>
        fetch(`${gateway.url}/c/demo/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${bulk}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] }),
        }).then(async (res) => `${res.status} ${((await res.json()) as { error?: { code: string } }).error?.code}`),
      ),
    );
    assert.deepEqual(new Set(refused), new Set(['503 limits_unavailable']));
    await eventually(async () => assert.deepEqual(await metric('gatehouse_dependency_up{dependency="limits"}'), ['gatehouse_dependency_up{dependency="limits"} 0']));
    await redisRelay.up();
    await eventually(async () => assert.deepEqual(await metric('gatehouse_dependency_up{dependency="limits"}'), ['gatehouse_dependency_up{dependency="limits"} 1']));
    const logs = await gateway.waitForLog(/"msg":"Redis \(limit counters\) answers again"/);
    assert.ok(count(logs, /"msg":"limit store error"/) <= 2, `one limit store error line per request:\n${logs}`);
    assert.match(logs, /"failures":1,"err":"Error: Redis did not answer: [^"]*","msg":"limit store error"/);
    assert.equal(count(logs, /"level":"warn".*"dependency":"limits".*"msg":"Redis \(limit counters\) does not answer: requests a limit applies to are refused until it does"/), 1, logs);
    assert.equal(count(logs, /"level":"info".*"dependency":"limits","downMs":\d+,"msg":"Redis \(limit counters\) answers again"/), 1, logs);
  });

  test('gatehouse_policy_info names the running policy version', async () => {
    const running = (await (await fetch(`${gateway.adminUrl}/api/policy`, { headers: { authorization: `Bearer ${adminKey}` } })).json()) as { version: string };
    assert.deepEqual(await metric('gatehouse_policy_info{'), [`gatehouse_policy_info{version="${running.version}"} 1`]);
  });
});
