// A request held for approval while the policy changes: the reviewer's consent was given
// to a request decided under the old policy, so the running policy decides again when
// the hold ends. A reload that now denies the request used to be ignored: the approval
// released it to the target all the same.

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { demoConnectionYaml, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const upstreamKey = 'sk-upstream-policy-change';

describe('a held request when the policy changes before it is approved', () => {
  let upstream: DemoUpstream;
  let gateway: GatewayProcess;
  let asker: string;
  let admin: string;
  const config = `${demoConnectionYaml('UPSTREAM')}
policy:
  rules:
    - name: needs-approval
      effect: require_approval
      match: { connections: [demo] }
      when: [{ keywords: [please approve] }]
approvals:
  defaults: { reviewers: [reviewers], holdFor: 20s }
`;

  before(async () => {
    upstream = await startDemoUpstream({ apiKey: upstreamKey });
    gateway = await startGatewayProcess(config.replace('UPSTREAM', upstream.url), { env: { UPSTREAM_KEY: upstreamKey } });
    asker = await gateway.createKey('asker', ['ml']);
    admin = await gateway.createKey('admin', ['admins', 'reviewers']);
  });
  after(async () => {
    await gateway?.stop();
    await upstream?.close();
  });

  const adminApi = (path: string, body?: unknown) =>
    fetch(`${gateway.adminUrl}${path}`, { method: body === undefined ? 'GET' : 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const chat = (content: string) =>
    fetch(`${gateway.url}/c/demo/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${asker}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content }] }),
      signal: AbortSignal.timeout(30_000),
    }).then(async (res) => ({ status: res.status, body: (await res.json()) as { error?: { code: string; rule?: string; message: string }; choices?: unknown[] } }));
  async function pendingReview(): Promise<string> {
    for (let i = 0; i < 100; i++) {
      const { reviews } = (await (await adminApi('/api/reviews?state=pending')).json()) as { reviews: Array<{ id: string }> };
      if (reviews[0]) return reviews[0].id;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error('no review was opened');
  }
  async function reloadWith(extraRule: string) {
    const current = readFileSync(gateway.configPath, 'utf8');
    writeFileSync(gateway.configPath, current.replace('  rules:\n', `  rules:\n${extraRule}`));
    const res = await adminApi('/api/policy/reload', {});
    assert.equal(res.status, 200, await res.clone().text());
    return (await res.json()) as { changed: boolean };
  }

  test('a reload that denies the held request: the approval does not release it; it is refused by the deny rule', async () => {
    const held = chat('please approve the export');
    const review = await pendingReview();
    const reloaded = await reloadWith(`    - name: exports-forbidden
      effect: deny
      message: Exports are forbidden now.
      when: [{ keywords: [export] }]
`);
    assert.equal(reloaded.changed, true);
    const approved = await adminApi(`/api/reviews/${review}/approve`, { comment: 'ok' });
    assert.equal(approved.status, 200);
    const answer = await held;
    assert.deepEqual({ status: answer.status, code: answer.body.error?.code, rule: answer.body.error?.rule, message: answer.body.error?.message }, { status: 403, code: 'access_denied', rule: 'exports-forbidden', message: 'Exports are forbidden now.' });
    // Nothing reached the target, and the review is not spent.
    const shown = (await (await adminApi(`/api/reviews/${review}`)).json()) as { state: string };
    assert.equal(shown.state, 'approved');
  });

  test('a reload after which the request still needs approval: the old review does not approve it, a new request opens a new review', async () => {
    const held = chat('please approve the summary');
    const review = await pendingReview();
    await reloadWith(`    - name: unrelated
      effect: deny
      when: [{ keywords: [something else entirely] }]
`);
    assert.equal((await adminApi(`/api/reviews/${review}/approve`, {})).status, 200);
    const answer = await held;
    assert.equal(answer.status, 403);
    assert.equal(answer.body.error?.code, 'approval_invalid');
    assert.equal(answer.body.error?.rule, 'needs-approval');
    assert.match(answer.body.error!.message, new RegExp(`^The policy changed while this request was held, so review ${review} \\(given under the previous policy\\) does not approve it`));
    // Sent again: held on a new review under the running policy, released by its approval.
    const again = chat('please approve the summary');
    const next = await pendingReview();
    assert.notEqual(next, review);
    assert.equal((await adminApi(`/api/reviews/${next}/approve`, {})).status, 200);
    assert.equal((await again).status, 200);
  });
});
