// Revocation across two gateway processes sharing one PostgreSQL store: revoke on one,
// the next request on the other fails, and a stream in flight on the other is cut.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { createTestPostgresDatabase } from '../helpers/databases.js';
import { demoConnectionYaml, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const upstreamKey = 'sk-upstream-revoke';
const database = await createTestPostgresDatabase();

describe('revocation across two gateways on PostgreSQL', { skip: 'skip' in database ? database.skip : undefined }, () => {
  let upstream: DemoUpstream;
  let a: GatewayProcess;
  let b: GatewayProcess;
  let adminKey: string;

  before(async () => {
    if ('skip' in database) return;
    upstream = await startDemoUpstream({ apiKey: upstreamKey, streamDelayMs: 200 });
    const store = 'store:\n  postgres: { url: "${STORE_URL}" }\n';
    const env = { UPSTREAM_KEY: upstreamKey, STORE_URL: database.url };
    a = await startGatewayProcess(demoConnectionYaml(upstream.url), { env, store });
    b = await startGatewayProcess(demoConnectionYaml(upstream.url), { env, store });
    adminKey = await a.createKey('admin', ['admins']);
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await upstream?.close();
    if (!('skip' in database)) await database.drop();
  });

  const client = (gateway: GatewayProcess, key: string) => new OpenAI({ baseURL: `${gateway.url}/c/demo`, apiKey: key, maxRetries: 0 });
  const errorCode = (error: unknown) => (error as { error?: { code?: string } }).error?.code;
  const revokeOnA = async (body: unknown) => {
    const res = await fetch(`${a.adminUrl}/api/revocations`, { method: 'POST', headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal(res.status, 200, await res.clone().text());
    return Date.now();
  };

  /** Retries `check` until it passes (records land asynchronously), for at most 3 s. */
  async function eventually<T>(check: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + 3000;
    for (;;) {
      try {
        return await check();
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  /** Starts a long stream on `gateway` and resolves once the first chunk arrived. */
  async function streamInFlight(gateway: GatewayProcess, key: string) {
    const prompt = Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ');
    const stream = await client(gateway, key).chat.completions.create({ model: 'demo-chat', stream: true, messages: [{ role: 'user', content: prompt }] });
    const iterator = stream[Symbol.asyncIterator]();
    const first = await iterator.next();
    assert.equal(first.done, false);
    const rest = (async () => {
      let chunks = 1;
      try {
        for (;;) {
          const next = await iterator.next();
          if (next.done) return { chunks, cut: false, at: Date.now() };
          chunks++;
        }
      } catch {
        return { chunks, cut: true, at: Date.now() };
      }
    })();
    return { done: rest };
  }

  test('an API key revoked on gateway A fails on gateway B at the next request, and B cuts its stream', async () => {
    const key = await a.createKey('contractor', ['ml']);
    const answer = await client(b, key).chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(answer.choices[0]!.message.content, 'Demo reply to: hi');

    const streaming = await streamInFlight(b, key);
    const revokedAt = await revokeOnA({ kind: 'key', value: 'contractor', reason: 'offboarded' });
    const result = await streaming.done;
    assert.equal(result.cut, true, `the stream was cut (got ${result.chunks} chunks)`);
    assert.ok(result.at - revokedAt < 1000, `cut ${result.at - revokedAt} ms after the revocation`);
    assert.ok(result.chunks < 60, `stream ended early after ${result.chunks} chunks`);
    // recorded as cut by the revocation, not as the client hanging up
    const cutRecord = await eventually(async () => {
      const res = await fetch(`${a.adminUrl}/api/sessions?subject=key:contractor&limit=1`, { headers: { authorization: `Bearer ${adminKey}` } });
      const [latest] = ((await res.json()) as { sessions: Array<{ stream: boolean; complete: boolean; errorCode: string | null }> }).sessions;
      assert.ok(latest?.stream && latest.errorCode !== null, 'the cut stream is recorded');
      return latest;
    });
    assert.deepEqual({ complete: cutRecord.complete, errorCode: cutRecord.errorCode }, { complete: false, errorCode: 'credential_revoked' });

    await assert.rejects(client(b, key).chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] }), (error: unknown) => {
      assert.ok(error instanceof OpenAI.AuthenticationError);
      assert.equal(errorCode(error), 'credential_revoked');
      return true;
    });
  });

  test('disabling a user (subject) on A refuses its gateway tokens on B within a second', async () => {
    const key = await a.createKey('agent-7', ['ml'], ['--kind', 'agent']);
    const res = await fetch(`${a.url}/auth/token`, { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: JSON.stringify({ connections: ['demo'] }) });
    const { access_token: token } = (await res.json()) as { access_token: string };
    await client(b, token).chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] });

    const streaming = await streamInFlight(b, token);
    const revokedAt = await revokeOnA({ kind: 'user', value: 'key:agent-7' });
    const result = await streaming.done;
    assert.equal(result.cut, true);
    assert.ok(result.at - revokedAt < 1000, `cut ${result.at - revokedAt} ms after the revocation`);
    for (const credential of [token, key]) {
      await assert.rejects(client(b, credential).chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] }), (error: unknown) => errorCode(error) === 'credential_revoked');
    }
  });
});
