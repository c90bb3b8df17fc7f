// A connection whose masking profile scrubs requests (`applyTo: request`) records an
// allowed request as the model received it, scrubbed. A refused request must not keep
// more: it is recorded scrubbed the same way (denied by a rule, by default-deny, held
// for an approval that did not come), and a review's preview (stored, and sent to
// reviewers' webhooks and Slack) shows the scrubbed prompt, not the caller's values.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const upstreamKey = 'sk-upstream-refused-scrubbed';
const card = '4111 1111 1111 1111';
const iban = 'DE89 3704 0044 0532 0130 00';

describe('a refused request is recorded scrubbed by the connection’s request profiles', () => {
  let upstream: DemoUpstream;
  let gateway: GatewayProcess;
  let member: OpenAI;
  let outsider: OpenAI;
  let adminKey: string;

  before(async () => {
    upstream = await startDemoUpstream({ apiKey: upstreamKey });
    const yaml = `gateway:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: 0 }
  groups: [admins]
masking:
  profiles:
    scrub-prompts: { applyTo: request, entities: [CREDIT_CARD, IBAN] }
connections:
  - name: demo
    type: openai
    target: ${upstream.url}
    credential: { secret: "\${UPSTREAM_KEY}" }
    masking: [scrub-prompts]
    access: { groups: [ml] }
approvals:
  defaults: { reviewers: [reviewers], holdFor: 50ms }
policy:
  rules:
    - name: no-refunds
      effect: deny
      when: [{ keywords: [refund] }]
    - name: wires-need-approval
      effect: require_approval
      when: [{ keywords: [wire transfer] }]
`;
    gateway = await startGatewayProcess(yaml, { env: { UPSTREAM_KEY: upstreamKey } });
    member = new OpenAI({ baseURL: `${gateway.url}/c/demo`, apiKey: await gateway.createKey('analyst', ['ml']), maxRetries: 0 });
    outsider = new OpenAI({ baseURL: `${gateway.url}/c/demo`, apiKey: await gateway.createKey('stranger', ['sales']), maxRetries: 0 });
    adminKey = await gateway.createKey('auditor', ['admins', 'reviewers']);
  });
  after(async () => {
    await gateway?.stop();
    await upstream?.close();
  });

  const admin = async (path: string) => (await (await fetch(`${gateway.adminUrl}${path}`, { headers: { authorization: `Bearer ${adminKey}` } })).json()) as Record<string, any>;

  /** Sends the prompt, expects a 403, and returns the refusal's record and error body. */
  async function refused(client: OpenAI, prompt: string) {
    let id = '';
    let body: Record<string, any> = {};
    await assert.rejects(client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: prompt }] }), (error: unknown) => {
      assert.ok(error instanceof OpenAI.PermissionDeniedError);
      id = error.headers?.get('gatehouse-exchange-id') ?? '';
      body = error.error as Record<string, any>;
      return true;
    });
    assert.ok(id, 'the refusal names its exchange');
    return { recorded: await admin(`/api/sessions/${id}`), error: body };
  }

  test('allowed: recorded as the model received it', async () => {
    const { response } = await member.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: `pay with ${card}` }] }).withResponse();
    const recorded = await admin(`/api/sessions/${response.headers.get('gatehouse-exchange-id')}`);
    assert.equal(recorded['request'].promptText, 'pay with [CREDIT_CARD]');
  });

  test('denied by a rule: the card is not in the record', async () => {
    const { recorded } = await refused(member, `please refund ${card} today`);
    assert.equal(recorded['decision'], 'deny');
    assert.ok(!JSON.stringify(recorded).includes(card), 'no part of the record holds the card number');
    assert.equal(recorded['request'].promptText, 'please refund [CREDIT_CARD] today');
    assert.match(recorded['request'].body, /please refund \[CREDIT_CARD\] today/);
  });

  test('denied by default-deny: the IBAN is not in the record, nor found by a search', async () => {
    const { recorded } = await refused(outsider, `send it to ${iban}`);
    assert.deepEqual(recorded['rules'], ['default-deny']);
    assert.equal(recorded['request'].promptText, 'send it to [IBAN]');
    const found = await admin(`/api/sessions?text=${encodeURIComponent('3704')}`);
    assert.deepEqual(found['sessions'], [], 'a search finds no exchange by the IBAN');
  });

  test('refused as unreadable (not JSON): the card is not in the record either', async () => {
    const res = await fetch(`${gateway.url}/c/demo/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await gateway.createKey('sloppy', ['ml'])}`, 'content-type': 'application/json' },
      body: `{"model":"demo-chat","messages":[{"role":"user","content":"card ${card}"`,
    });
    assert.equal(res.status, 400);
    const recorded = await admin(`/api/sessions/${res.headers.get('gatehouse-exchange-id')}`);
    assert.equal(recorded['errorCode'], 'invalid_request_body');
    assert.ok(!JSON.stringify(recorded).includes(card), 'no part of the record holds the card number');
  });

  test('held for approval: neither the review preview nor the record holds the IBAN', async () => {
    const { recorded, error } = await refused(member, `wire transfer of 12 000 EUR to ${iban}`);
    assert.equal(error['code'], 'approval_required');
    assert.equal(recorded['request'].promptText, 'wire transfer of 12 000 EUR to [IBAN]');
    const review = await admin(`/api/reviews/${error['review_id']}`);
    assert.equal(review['promptPreview'], 'wire transfer of 12 000 EUR to [IBAN]');
  });
});
