// A caller's text reaches the operator's terminal through the CLI: `sessions show`
// prints a prompt, `reviews show` the preview a reviewer approves on. A bidirectional
// control in it (U+202E RIGHT-TO-LEFT OVERRIDE …) makes the terminal show the text
// after it reversed, so a reviewer would read another amount or statement than the one
// approved ("Trojan Source"). The CLI prints each escaped, as `\u202e`.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { demoConnectionYaml, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const upstreamKey = 'sk-upstream-cli-bidi';
// Shown by a terminal as "refund 10 EUR to account 1000 ok": the digits after U+202E read backwards.
const prompt = 'refund 10 EUR to account \u202e0001\u202c ok \u2066x\u2069 \u200f';
const bidi = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

describe('bidirectional controls in recorded text are shown escaped by the CLI', () => {
  let upstream: DemoUpstream;
  let gateway: GatewayProcess;
  let key: string;

  before(async () => {
    upstream = await startDemoUpstream({ apiKey: upstreamKey });
    const extra = `approvals:
  defaults: { reviewers: [reviewers], holdFor: 50ms }
policy:
  rules:
    - name: refunds-need-approval
      effect: require_approval
      when: [{ keywords: [refund] }]
`;
    gateway = await startGatewayProcess(demoConnectionYaml(upstream.url, extra), { env: { UPSTREAM_KEY: upstreamKey } });
    key = await gateway.createKey('clerk', ['ml']);
  });
  after(async () => {
    await gateway?.stop();
    await upstream?.close();
  });

  test('sessions show and reviews show print \\u202e, not the character', async () => {
    const res = await fetch(`${gateway.url}/c/demo/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: prompt }] }),
    });
    assert.equal(res.status, 403);
    const refusal = (await res.json()) as { error: { code: string; review_id: string } };
    assert.equal(refusal.error.code, 'approval_required');
    const escaped = 'refund 10 EUR to account \\u202e0001\\u202c ok \\u2066x\\u2069 \\u200f';

    const shown = (await gateway.cli(['sessions', 'show', res.headers.get('gatehouse-exchange-id')!])).stdout;
    assert.doesNotMatch(shown, bidi);
    assert.ok(shown.includes(escaped), shown);
    const review = (await gateway.cli(['reviews', 'show', refusal.error.review_id])).stdout;
    assert.doesNotMatch(review, bidi);
    assert.ok(review.includes(escaped), review);
    const listed = (await gateway.cli(['sessions', 'list', '--limit', '1'])).stdout;
    assert.doesNotMatch(listed, bidi);
  });
});
