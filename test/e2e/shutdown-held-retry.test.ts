// A rolling restart of a scaled-out deployment while a request is held for approval:
// two gateways share one PostgreSQL store; gateway A holds the request and is stopped
// (SIGTERM) before anyone decides. When A's grace period ends, its caller is answered
// 503 gateway_shutdown (it got an empty reply: the connection was closed before the
// answer the record claimed was written), so it retries on gateway B, where the same
// review is waiting; approved through B, the retry is answered.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { createTestPostgresDatabase } from '../helpers/databases.js';
import { demoConnectionYaml, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const upstreamKey = 'sk-upstream-held-retry';
const database = await createTestPostgresDatabase();

describe('a held request on a gateway that stops', { skip: 'skip' in database ? database.skip : false }, () => {
  const db = database as { url: string; drop(): Promise<void> };
  let upstream: DemoUpstream;
  let a: GatewayProcess;
  let b: GatewayProcess;

  before(async () => {
    upstream = await startDemoUpstream({ apiKey: upstreamKey });
    const config = `${demoConnectionYaml(upstream.url).replace('gateway:\n  listen: { host: 127.0.0.1, port: 0 }', 'gateway:\n  listen: { host: 127.0.0.1, port: 0 }\n  shutdownGrace: 1s')}
policy:
  rules:
    - { name: needs-approval, effect: require_approval, match: { connections: [demo] } }
approvals:
  defaults: { reviewers: [reviewers], holdFor: 60s }
`;
    const env = { UPSTREAM_KEY: upstreamKey, STORE_URL: db.url };
    const store = 'store:\n  postgres: { url: "${STORE_URL}" }\n';
    [a, b] = await Promise.all([startGatewayProcess(config, { env, store }), startGatewayProcess(config, { env, store })]);
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await upstream?.close();
    await db.drop();
  });

  test('SIGTERM while holding: the caller gets 503 gateway_shutdown, retries on the other gateway, and the review decided there answers it', async () => {
    const key = await b.createKey('ml-bot', ['ml']);
    const reviewer = await b.createKey('reviewer', ['reviewers']);
    const ask = (gateway: GatewayProcess) =>
      new OpenAI({ baseURL: `${gateway.url}/c/demo`, apiKey: key, maxRetries: 0, timeout: 30_000 }).chat.completions
        .create({ model: 'demo-chat', messages: [{ role: 'user', content: 'held across a restart' }] })
        .withResponse();
    const held = ask(a).then(
      () => undefined,
      (error: unknown) => error as InstanceType<typeof OpenAI.APIError>,
    );
    const reviews = async () => ((await (await fetch(`${b.adminUrl}/api/reviews?state=pending`, { headers: { authorization: `Bearer ${reviewer}` } })).json()) as { reviews: Array<{ id: string }> }).reviews;
    for (let i = 0; i < 100 && (await reviews()).length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    const [review] = await reviews();
    assert.ok(review, 'the request is held');

    const stopped = a.stop('SIGTERM');
    const refused = await held;
    assert.ok(refused instanceof OpenAI.APIError, `the caller got ${String(refused)}`);
    assert.deepEqual({ status: refused.status, code: refused.code }, { status: 503, code: 'gateway_shutdown' });
    assert.equal(await stopped, 0);

    // The retry on B waits on the same review; approved there, it is answered.
    const retry = ask(b);
    for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 100));
    const approved = await fetch(`${b.adminUrl}/api/reviews/${review.id}/approve`, { method: 'POST', headers: { authorization: `Bearer ${reviewer}`, 'content-type': 'application/json' }, body: '{}' });
    assert.equal(approved.status, 200);
    const { data } = await retry;
    assert.match(data.choices[0]!.message.content ?? '', /held across a restart/);
    assert.equal((await reviews()).length, 0);
  });
});
