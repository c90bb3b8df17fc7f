// A revocation taken on one gateway reaches the others sharing a PostgreSQL store in
// milliseconds, not at their next poll: the write NOTIFYs and every gateway LISTENs.
// The gateways here poll only once a second (identity.revocation.pollInterval: 1s), so
// a gateway that waited for its poll would accept a revoked key for up to a second,
// about half a second on average; five revocations in a row are each refused on the
// other gateway within 250 ms of the revocation's answer. (The CLI writes revocations
// through the same code, so it NOTIFYs too.)

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { createTestPostgresDatabase } from '../helpers/databases.js';
import { demoConnectionYaml, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const upstreamKey = 'sk-upstream-revoke-notify';
const database = await createTestPostgresDatabase();

describe('revocation heard by the other gateways at once (PostgreSQL LISTEN/NOTIFY)', { skip: 'skip' in database ? database.skip : false }, () => {
  const db = database as { url: string; drop(): Promise<void> };
  let upstream: DemoUpstream;
  let a: GatewayProcess;
  let b: GatewayProcess;
  let adminKey: string;

  before(async () => {
    upstream = await startDemoUpstream({ apiKey: upstreamKey });
    const config = `${demoConnectionYaml(upstream.url)}
identity:
  revocation: { pollInterval: 1s }
  authThrottle: { enabled: false }
`;
    const env = { UPSTREAM_KEY: upstreamKey, STORE_URL: db.url };
    const store = 'store:\n  postgres: { url: "${STORE_URL}" }\n';
    [a, b] = await Promise.all([startGatewayProcess(config, { env, store }), startGatewayProcess(config, { env, store })]);
    adminKey = await a.createKey('admin', ['admins']);
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await upstream?.close();
    await db.drop();
  });

  const status = (gateway: GatewayProcess, key: string) =>
    fetch(`${gateway.url}/c/demo/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] }),
    }).then(
      async (res) => `${res.status} ${res.status === 200 ? '' : ((await res.json()) as { error: { code: string } }).error.code}`.trim(),
      // In flight on B when the revocation arrived: cut, its connection closed.
      () => 'cut',
    );
  /** Milliseconds from `since` until B refuses `key` as revoked. */
  async function refusedOnB(key: string, since: number): Promise<number> {
    for (;;) {
      const answer = await status(b, key);
      if (answer === '401 credential_revoked' || answer === 'cut') return Date.now() - since;
      assert.equal(answer, '200');
      assert.ok(Date.now() - since < 5_000, 'never refused');
    }
  }

  test('a key revoked through A is refused by B within milliseconds, five times in a row', async () => {
    const took: number[] = [];
    for (let i = 0; i < 5; i++) {
      const key = await a.createKey(`contractor-${i}`, ['ml']);
      assert.equal(await status(b, key), '200'); // B has seen (and cached) the key
      const res = await fetch(`${a.adminUrl}/api/revocations`, { method: 'POST', headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'key', value: `contractor-${i}` }) });
      assert.equal(res.status, 200);
      took.push(await refusedOnB(key, Date.now()));
    }
    assert.ok(Math.max(...took) < 250, `B refused the revoked keys after ${took.join(', ')} ms (its poll is every 1000 ms)`);
  });
});
