// Failed-authentication throttling with the real gateway process: after N refused
// credentials from one address, every attempt from it (a valid key included) is refused
// with 429 and Retry-After before the credential is checked, on every listener; the
// throttle is one audit event, the refused attempts none. Client addresses other than
// 127.0.0.1 are other loopback addresses (127.0.0.2 …), bound by the client.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import OpenAI from 'openai';
import pg from 'pg';
import SQLite from 'better-sqlite3';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { createTestPostgresDatabase } from '../helpers/databases.js';
import { demoConnectionYaml, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { clearOfWindowEnd, fetchFrom } from '../helpers/throttle-clients.js';
import { deleteKeys, redisUnavailable, testRedisUrl, uniqueKeyPrefix } from '../helpers/redis.js';

const run = promisify(execFile);
const upstreamKey = 'sk-upstream-target-secret';
const database = await createTestPostgresDatabase();
const noPostgres = 'skip' in database ? database.skip : undefined;
const noRedis = await redisUnavailable();

const chatBody = JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] });

function wrongSecret(key: string): string {
  return `${key.slice(0, -43)}${'Z'.repeat(43)}`;
}

describe('failed-authentication throttling (defaults: 10 per address per minute)', () => {
  let upstream: DemoUpstream;
  let gateway: GatewayProcess;
  let key: string;
  let admin: string;

  before(async () => {
    upstream = await startDemoUpstream({ apiKey: upstreamKey });
    gateway = await startGatewayProcess(demoConnectionYaml(upstream.url) + `identity:\n  authThrottle:\n    exempt: [127.0.0.3/32, "fd00::/8"]\n`, { env: { UPSTREAM_KEY: upstreamKey } });
    key = await gateway.createKey('ml-bot', ['ml']);
    admin = await gateway.createKey('ops', ['admins']);
  });
  after(async () => {
    await gateway?.stop();
    await upstream?.close();
  });

  test('the 11th bad key gets 429 with Retry-After; a good key from that address is refused too; one audit event; the refused attempts are not recorded', async () => {
    await clearOfWindowEnd(60_000, 15_000);
    const client = (apiKey: string) => new OpenAI({ apiKey, baseURL: `${gateway.url}/c/demo`, maxRetries: 0 });
    const bad = wrongSecret(key);
    for (let i = 1; i <= 10; i++) {
      const error = await client(bad).chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] }).then(() => undefined, (e: unknown) => e);
      assert.ok(error instanceof OpenAI.AuthenticationError, `attempt ${i}: ${String(error)}`);
    }
    const throttled = await client(bad).chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] }).then(() => undefined, (e: unknown) => e);
    assert.ok(throttled instanceof OpenAI.RateLimitError, String(throttled));
    assert.equal(throttled.code, 'auth_throttled');
    assert.match(throttled.message, /Too many failed authentications from this address/);
    const retryAfter = Number(throttled.headers?.get('retry-after'));
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `retry-after ${String(throttled.headers?.get('retry-after'))}`);

    // The valid key from the same address: refused as well, without being checked.
    const good = await fetch(`${gateway.url}/c/demo/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: chatBody });
    assert.equal(good.status, 429);
    assert.ok(Number(good.headers.get('retry-after')) >= 1);
    assert.equal(((await good.json()) as { error: { code: string } }).error.code, 'auth_throttled');
    // The same address on /auth/token and the admin API.
    const token = await fetch(`${gateway.url}/auth/token`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: '{"connections":["demo"]}' });
    assert.equal(token.status, 429);
    assert.equal(((await token.json()) as { error: { code: string } }).error.code, 'auth_throttled');
    const adminAnswer = await fetch(`${gateway.adminUrl}/api/sessions`, { headers: { authorization: `Bearer ${admin}` } });
    assert.equal(adminAnswer.status, 429);
    assert.ok(Number(adminAnswer.headers.get('retry-after')) >= 1);
    assert.deepEqual(Object.keys(((await adminAnswer.json()) as { error: Record<string, string> }).error), ['code', 'message']);

    // Another address is not affected.
    const other = await fetchFrom('127.0.0.2')(`${gateway.url}/c/demo/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: chatBody });
    assert.equal(other.status, 200);

    // One auth.throttled event, naming the address; ten refusals on record, not thirteen.
    await gateway.waitForLog(/failed authentications throttled/);
    const events = await queryEvents(gateway);
    const throttledEvents = events.filter((e) => e.kind === 'auth.throttled');
    assert.equal(throttledEvents.length, 1, JSON.stringify(throttledEvents));
    assert.equal(throttledEvents[0]!.target, 'address:127.0.0.1');
    assert.deepEqual({ ...throttledEvents[0]!.details, throttledForMs: 0 }, { listener: 'data', scope: 'address', client: '127.0.0.1', failures: 10, windowMs: 60_000, throttledForMs: 0 });
    assert.equal(events.filter((e) => e.kind === 'exchange.refused').length, 10);
    // Their number is in the metrics instead: the 11th bad key, the good key and /auth/token; the admin API's one.
    const metrics = await (await fetch(`${gateway.adminUrl}/metrics`)).text();
    assert.match(metrics, /gatehouse_auth_throttled_total\{listener="data"\} 3\n/);
    assert.match(metrics, /gatehouse_auth_throttled_total\{listener="admin"\} 1\n/);
  });

  test('an exempt address is never throttled', async () => {
    const from3 = fetchFrom('127.0.0.3');
    for (let i = 0; i < 15; i++) {
      const res = await from3(`${gateway.url}/c/demo/models`, { headers: { authorization: `Bearer ${wrongSecret(key)}` } });
      assert.equal(res.status, 401);
      await res.arrayBuffer();
    }
  });

  test('the admin API counts its own refused keys and answers 429 in its JSON shape', async () => {
    await clearOfWindowEnd(60_000, 15_000);
    const from4 = fetchFrom('127.0.0.4');
    for (let i = 0; i < 10; i++) {
      const res = await from4(`${gateway.adminUrl}/api/sessions`, { headers: { authorization: `Bearer ${wrongSecret(admin)}` } });
      assert.equal(res.status, 401);
      await res.arrayBuffer();
    }
    const res = await from4(`${gateway.adminUrl}/api/sessions`, { headers: { authorization: `Bearer ${admin}` } });
    assert.equal(res.status, 429);
    assert.ok(Number(res.headers.get('retry-after')) >= 1);
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'auth_throttled');
    // Health and metrics take no credential: never throttled.
    assert.equal((await from4(`${gateway.adminUrl}/healthz`)).status, 200);
  });
});

async function queryEvents(gateway: GatewayProcess): Promise<Array<{ kind: string; target: string | null; details: Record<string, unknown> }>> {
  // Records reach the store file in batches; a CLI read applies what is pending.
  await gateway.cli(['sessions', 'list', '--limit', '1']);
  const db = new SQLite(`${gateway.dir}/gatehouse.db`, { readonly: true });
  try {
    return (db.prepare('select kind, target, details from audit_events order by seq').all() as Array<{ kind: string; target: string | null; details: string }>).map((e) => ({ ...e, details: JSON.parse(e.details) as Record<string, unknown> }));
  } finally {
    db.close();
  }
}

describe('per account: a distributed guess at one API key', () => {
  let upstream: DemoUpstream;
  let gateway: GatewayProcess;

  before(async () => {
    upstream = await startDemoUpstream({ apiKey: upstreamKey });
    gateway = await startGatewayProcess(demoConnectionYaml(upstream.url) + `identity:\n  authThrottle:\n    perAddress: { limit: 100, window: 1h }\n    perAccount: { limit: 3, window: 1h }\n`, { env: { UPSTREAM_KEY: upstreamKey } });
  });
  after(async () => {
    await gateway?.stop();
    await upstream?.close();
  });

  test('failures claiming one key id from three addresses lock that key id for those addresses only: its owner, from a clean address, still gets through', async () => {
    await clearOfWindowEnd(3_600_000, 30_000);
    const target = await gateway.createKey('target-bot', ['ml']);
    const chat = (address: string, apiKey: string) => fetchFrom(address)(`${gateway.url}/c/demo/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }, body: chatBody });
    for (const address of ['127.0.0.5', '127.0.0.6', '127.0.0.7']) {
      const res = await fetchFrom(address)(`${gateway.url}/c/demo/models`, { headers: { authorization: `Bearer ${wrongSecret(target)}` } });
      assert.equal(res.status, 401);
      await res.arrayBuffer();
    }
    // The key id is over its limit; its owner, from an address that never failed against it, is checked as usual.
    const owner = await chat('127.0.0.8', target);
    assert.equal(owner.status, 200, await owner.text());
    assert.equal((await chat('127.0.0.8', target)).status, 200);
    // An attacker's address is refused unchecked, even with the right secret.
    const refused = await chat('127.0.0.5', target);
    assert.equal(refused.status, 429);
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);
    assert.match(((await refused.json()) as { error: { message: string } }).error.message, /Too many failed authentications for this API key from this address/);
    // A new address gets one wrong guess at it (checked: 401), then is refused like the others.
    assert.equal((await chat('127.0.0.10', wrongSecret(target))).status, 401);
    assert.equal((await chat('127.0.0.10', target)).status, 429);
    assert.equal((await chat('127.0.0.10', wrongSecret(target))).status, 429);
    await gateway.waitForLog(/failed authentications throttled/);
    const events = (await queryEvents(gateway)).filter((e) => e.kind === 'auth.throttled');
    assert.equal(events.length, 1);
    assert.equal(events[0]!.target, `key-id:${target.split('_')[1]}`);
    assert.equal(events[0]!.details['scope'], 'account');
    // Refused unchecked: the attacker's right key, and 127.0.0.10's two attempts after its failure.
    const metrics = await (await fetch(`${gateway.adminUrl}/metrics`)).text();
    assert.match(metrics, /gatehouse_auth_throttled_total\{listener="data"\} 3\n/);
  });

  test('another key id is not affected by the throttled one', async () => {
    const other = await gateway.createKey('other-bot', ['ml']);
    const fine = await fetchFrom('127.0.0.5')(`${gateway.url}/c/demo/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${other}`, 'content-type': 'application/json' }, body: chatBody });
    assert.equal(fine.status, 200);
  });
});

describe('turned off', () => {
  let upstream: DemoUpstream;
  let gateway: GatewayProcess;
  before(async () => {
    upstream = await startDemoUpstream({ apiKey: upstreamKey });
    gateway = await startGatewayProcess(demoConnectionYaml(upstream.url) + `identity:\n  authThrottle: { enabled: false }\n`, { env: { UPSTREAM_KEY: upstreamKey } });
  });
  after(async () => {
    await gateway?.stop();
    await upstream?.close();
  });

  test('20 bad keys are all checked (401), and a good key then works', async () => {
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${gateway.url}/c/demo/models`, { headers: { authorization: 'Bearer ghk_0123456789abcdef_' + 'A'.repeat(43) } });
      assert.equal(res.status, 401);
      await res.arrayBuffer();
    }
    const key = await gateway.createKey('ml-bot', ['ml']);
    assert.equal((await fetch(`${gateway.url}/c/demo/models`, { headers: { authorization: `Bearer ${key}` } })).status, 200);
  });

});

describe('PostgreSQL listener', { skip: noPostgres }, () => {
  const db = database as { url: string; drop(): Promise<void> };
  let gateway: GatewayProcess;
  let token: string;
  let port: number;
  let dbname: string;

  before(async () => {
    const url = new URL(db.url);
    dbname = url.pathname.slice(1);
    gateway = await startGatewayProcess(
      `gateway:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: 0 }
  groups: [admins]
log: { level: info }
identity:
  authThrottle:
    perAddress: { limit: 2, window: 1h }
connections:
  - name: warehouse
    type: postgres
    listen: { host: 127.0.0.1, port: 0 }
    allowPlaintext: true
    target: postgres://${url.host}/${dbname}
    credential: { user: postgres, secret: "\${PG_SECRET}" }
    tls: { mode: disable }
    access: { groups: [analysts] }
`,
      { env: { PG_SECRET: 'unused-with-trust-auth' } },
    );
    token = await gateway.createKey('pg-bot', ['analysts']);
    port = await gateway.postgresPort('warehouse');
  });
  after(async () => {
    await gateway?.stop();
    await db.drop();
  });

  test('after 2 refused passwords, psql with the right one is refused with a clear message (SQLSTATE 28000)', async () => {
    await clearOfWindowEnd(3_600_000, 30_000);
    const connect = async (password: string) => {
      const client = new pg.Client({ host: '127.0.0.1', port, user: 'pg-bot', database: dbname, password });
      try {
        await client.connect();
        await client.end();
        return undefined;
      } catch (error) {
        return error as { code?: string; message: string };
      }
    };
    for (let i = 0; i < 2; i++) assert.equal((await connect(wrongSecret(token)))?.code, '28P01');
    const refused = await connect(token);
    assert.equal(refused?.code, '28000');
    assert.match(refused!.message, /Too many failed authentications from this address/);
    const env = { ...process.env, PGPASSWORD: token, PGHOST: '127.0.0.1', PGPORT: String(port), PGUSER: 'pg-bot', PGDATABASE: dbname, PGSSLMODE: 'disable' };
    const psql = await run('psql', ['-X', '-At', '-c', 'select 1'], { env }).then(
      () => assert.fail('psql was let in'),
      (error: { stderr: string }) => error.stderr,
    );
    assert.match(psql, /FATAL: {2}Too many failed authentications from this address/);
    const all = await queryEvents(gateway);
    const events = all.filter((e) => e.kind === 'auth.throttled');
    assert.equal(events.length, 1);
    assert.equal(events[0]!.details['listener'], 'postgres');
    // The two refused logins are on record; the two throttled ones are not.
    assert.equal(all.filter((e) => e.kind === 'exchange.refused').length, 2);
  });
});

describe('two gateways sharing Redis count failures together', { skip: noRedis }, () => {
  const prefix = uniqueKeyPrefix();
  let upstream: DemoUpstream;
  const gateways: GatewayProcess[] = [];
  const keys: string[] = [];

  before(async () => {
    upstream = await startDemoUpstream({ apiKey: upstreamKey });
    const config = `${demoConnectionYaml(upstream.url)}
identity:
  authThrottle:
    perAddress: { limit: 3, window: 1h }
    perAccount: { limit: 3, window: 1h }
policy:
  limits:
    store: redis
    redis:
      url: \${REDIS_URL}
      keyPrefix: "${prefix}"
`;
    for (let i = 0; i < 2; i++) {
      const gateway = await startGatewayProcess(config, { env: { UPSTREAM_KEY: upstreamKey, REDIS_URL: testRedisUrl } });
      gateways.push(gateway);
      keys.push(await gateway.createKey('ml-bot', ['ml']));
    }
  });
  after(async () => {
    await Promise.all(gateways.map((g) => g.stop()));
    await upstream?.close();
    await deleteKeys(prefix);
  });

  test('2 failures on one gateway and 1 on the other throttle the address on both; one event in all', async () => {
    await clearOfWindowEnd(3_600_000, 30_000);
    const from9 = fetchFrom('127.0.0.9');
    const call = (gateway: number, key: string) =>
      from9(`${gateways[gateway]!.url}/c/demo/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: chatBody }).then(async (res) => ({ status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.text() }));
    // Before any failure: allowed on both.
    assert.deepEqual([(await call(0, keys[0]!)).status, (await call(1, keys[1]!)).status], [200, 200]);
    assert.equal((await call(0, wrongSecret(keys[0]!))).status, 401);
    assert.equal((await call(0, wrongSecret(keys[0]!))).status, 401);
    assert.equal((await call(1, wrongSecret(keys[1]!))).status, 401);
    // Gateway 1 reached the limit itself; gateway 0 learns it from Redis (it counted the address before).
    for (const [gateway, key] of [[0, keys[0]!], [1, keys[1]!]] as const) {
      const answer = await call(gateway, key);
      assert.equal(answer.status, 429, `gateway ${gateway}: ${answer.body}`);
      assert.ok(Number(answer.retryAfter) >= 1);
    }
    await gateways[1]!.waitForLog(/failed authentications throttled/);
    const events = [...(await queryEvents(gateways[0]!)), ...(await queryEvents(gateways[1]!))].filter((e) => e.kind === 'auth.throttled');
    assert.equal(events.length, 1, JSON.stringify(events));
    assert.equal(events[0]!.target, 'address:127.0.0.9');
  });

  test('a key id over its limit: each gateway refuses the addresses that failed against it on any gateway, and lets its owner through', async () => {
    await clearOfWindowEnd(3_600_000, 30_000);
    const target = await gateways[0]!.createKey('target-bot', ['ml']);
    const chat = (gateway: number, address: string, apiKey: string) =>
      fetchFrom(address)(`${gateways[gateway]!.url}/c/demo/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }, body: chatBody }).then(async (res) => ({ status: res.status, body: await res.text() }));
    // Two failures from 127.0.0.11 on gateway 0, the third (the limit) from 127.0.0.12 on gateway 1.
    assert.equal((await chat(0, '127.0.0.11', wrongSecret(target))).status, 401);
    assert.equal((await chat(0, '127.0.0.11', wrongSecret(target))).status, 401);
    assert.equal((await chat(1, '127.0.0.12', wrongSecret(target))).status, 401);
    const owner = await chat(0, '127.0.0.13', target);
    assert.equal(owner.status, 200, owner.body);
    // Gateway 0 learns from Redis both that the key id is over and that 127.0.0.12 failed against it.
    for (const address of ['127.0.0.11', '127.0.0.12']) {
      const answer = await chat(0, address, target);
      assert.equal(answer.status, 429, `${address}: ${answer.body}`);
      assert.match(answer.body, /for this API key from this address/);
    }
  });
});
