// A request refused for carrying a credential (the secrets-in-prompts pack) is recorded
// without it: the recorded body and prompt text have the credential redacted to its type
// label; the caller's body is kept only sealed (audit.raw), for an authorised reveal.
// A request that passes is recorded as sent.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { demoConnectionYaml, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const upstreamKey = 'sk-upstream-refused-secrets';
const pasted = 'sk-proj-Zq81mWc4TnY2vKp9LdX7sRb3HfG6jUe0';

describe('a request refused for a credential is recorded without it', () => {
  let upstream: DemoUpstream;
  let gateway: GatewayProcess;
  let client: OpenAI;
  let adminKey: string;

  before(async () => {
    upstream = await startDemoUpstream({ apiKey: upstreamKey });
    const extra = `policy:
  packs: [secrets-in-prompts]
audit:
  raw: { enabled: true, key: "\${RAW_KEY}", revealGroups: [admins] }
`;
    gateway = await startGatewayProcess(demoConnectionYaml(upstream.url, extra), { env: { UPSTREAM_KEY: upstreamKey, RAW_KEY: 'c'.repeat(64) } });
    client = new OpenAI({ baseURL: `${gateway.url}/c/demo`, apiKey: await gateway.createKey('analyst', ['ml']), maxRetries: 0 });
    adminKey = await gateway.createKey('auditor', ['admins']);
  });
  after(async () => {
    await gateway?.stop();
    await upstream?.close();
  });

  const headers = () => ({ authorization: `Bearer ${adminKey}` });
  const record = async (id: string) => (await (await fetch(`${gateway.adminUrl}/api/sessions/${id}`, { headers: headers() })).json()) as Record<string, any>;

  test('refused: the body and prompt text are recorded with [OPENAI_KEY]; the reveal gives the caller’s body', async () => {
    const prompt = `why does ${pasted} not work with the batch API?`;
    let id = '';
    await assert.rejects(
      client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: prompt }] }).withResponse(),
      (error: unknown) => {
        assert.ok(error instanceof OpenAI.PermissionDeniedError);
        id = error.headers?.get('gatehouse-exchange-id') ?? '';
        return true;
      },
    );
    assert.ok(id, 'the refusal names its exchange');
    const recorded = await record(id);
    assert.equal(recorded['decision'], 'deny');
    assert.ok(!JSON.stringify(recorded).includes(pasted), 'no part of the record holds the key');
    assert.equal(recorded['request'].promptText, 'why does [OPENAI_KEY] not work with the batch API?');
    assert.match(recorded['request'].body, /"content":"why does \[OPENAI_KEY\] not work with the batch API\?"/);
    const { stdout } = await gateway.cli(['sessions', 'show', id]);
    assert.ok(!stdout.includes(pasted), 'sessions show prints no key');

    const raw = (await (await fetch(`${gateway.adminUrl}/api/sessions/${id}/reveal`, { method: 'POST', headers: headers() })).json()) as { request: string };
    assert.ok(raw.request.includes(pasted), 'the sealed body is the caller’s');
  });

  test('allowed: a request without a credential is recorded as sent', async () => {
    const { response } = await client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'sk-learn is a library' }] }).withResponse();
    const recorded = await record(response.headers.get('gatehouse-exchange-id')!);
    assert.equal(recorded['request'].promptText, 'sk-learn is a library');
  });
});
