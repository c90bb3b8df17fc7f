// Security regression: an approval binds the API key that asked, not only its subject.
// A review approved for key `ci-bot` was used by another key of the same name (issued
// after the approval by `keys rotate`, or by `keys create` after the first was revoked):
// whoever held the new key inherited a consent given to a request of the old one. Now
// another key of the subject is refused with Gatehouse-Review (approval_invalid, saying
// so), and sent without it opens a review of its own; the key that asked still uses it.
// HTTP (the openai connection of sdk-gateway) and PostgreSQL (an in-process proxy) alike.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { startTestProxy, type TestProxy } from '../helpers/postgres-proxy.js';
import { startSdkGateway, type SdkGateway } from '../helpers/sdk-gateway.js';
import { approveDeletes, testApprovals, reviewerAlice } from '../helpers/pg-approvals.js';

describe('HTTP: an approval is for the API key that asked', () => {
  let sdk: SdkGateway;
  let reviewerKey: string;
  before(async () => {
    sdk = await startSdkGateway({
      extraYaml: `policy:
  rules:
    - name: prod-prompts
      effect: require_approval
      when:
        - keywords: [production database]
approvals:
  defaults: { reviewers: [dba], holdFor: 300ms }
  pollInterval: 50ms
`,
    });
    sdk.upstream((_req, _body, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: 'c1', object: 'chat.completion', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: 'done' }, finish_reason: 'stop' }] })));
    reviewerKey = (await sdk.gateway.apiKeys.create({ name: 'dba-1', kind: 'human', groups: ['dba'], expiresAt: null })).token;
  });
  after(() => sdk?.close());

  const chat = (key: string, headers: Record<string, string> = {}) =>
    fetch(`${sdk.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'Drop the production database' }] }),
    });

  test('security: the key of a rotation (issued after the approval) cannot use it; the key that asked can', async () => {
    const { token: oldKey, key: old } = await sdk.gateway.apiKeys.create({ name: 'ci-bot', kind: 'agent', groups: ['ml'], expiresAt: null });
    const first = (await (await chat(oldKey)).json()) as any;
    assert.equal(first.error.code, 'approval_required');
    const id = first.error.review_id as string;
    const voted = await fetch(`${sdk.gateway.adminUrl}/api/reviews/${id}/approve`, { method: 'POST', headers: { authorization: `Bearer ${reviewerKey}`, 'content-type': 'application/json' }, body: '{}' });
    assert.equal(voted.status, 200);

    const { token: newKey } = await sdk.gateway.apiKeys.rotate('ci-bot', { overlapMs: 3_600_000 });
    const withHeader = await chat(newKey, { 'gatehouse-review': id });
    assert.equal(withHeader.status, 403);
    const refused = (await withHeader.json()) as any;
    assert.equal(refused.error.code, 'approval_invalid');
    assert.equal(refused.error.message, `Review ${id} was requested with another credential (API key ${old.id}); it does not approve this request.`);
    const without = (await (await chat(newKey)).json()) as any;
    assert.equal(without.error.code, 'approval_required', 'held on a review of its own');
    assert.notEqual(without.error.review_id, id);

    const used = await chat(oldKey, { 'gatehouse-review': id });
    assert.equal(used.status, 200);
    assert.equal(sdk.received.length, 1, 'only the key that asked was sent on');
  });
});

const approvals = testApprovals({ holdFor: 300 });
const alice = reviewerAlice;
const proxyOrSkip = await startTestProxy({ policy: approveDeletes, approvals });

describe('PostgreSQL: an approval is for the API key that asked', { skip: 'skip' in proxyOrSkip ? proxyOrSkip.skip : undefined }, () => {
  const proxy = proxyOrSkip as TestProxy;
  after(() => proxy.close());

  /** Runs `sql` as the key `token` in a session of its own; the notices it got and its error code. */
  async function run(token: string, sql: string): Promise<{ notices: string[]; code: string | undefined }> {
    const client = new pg.Client(proxy.clientConfig({ password: token }));
    const notices: string[] = [];
    client.on('notice', (n) => notices.push(n.message ?? ''));
    await client.connect();
    try {
      await client.query(sql);
      return { notices, code: undefined };
    } catch (error) {
      return { notices, code: (error as { code?: string }).code };
    } finally {
      await client.end();
    }
  }

  test('security: another key of the subject (revoked and created again) runs the approved statement only on a review of its own', async () => {
    const direct = new pg.Client({ connectionString: proxy.directUrl });
    await direct.connect();
    try {
      await direct.query('create table jobs (id int); insert into jobs values (1), (2)');
      const sql = 'delete from jobs where id = 1';
      const first = await run(proxy.token, sql);
      assert.equal(first.code, '57014');
      const id = /review (rv_[0-9a-z]+)/.exec(first.notices[0] ?? '')?.[1];
      assert.ok(id, `a notice names the review: ${JSON.stringify(first.notices)}`);
      await proxy.approvals!.service.vote(id, alice, 'approve', { via: 'api' });

      const [previous] = await proxy.apiKeys.revokeAll('agent');
      const { token: newKey } = await proxy.apiKeys.create({ name: 'agent', kind: 'agent', groups: ['dba'], expiresAt: null });
      const other = await run(newKey, sql);
      assert.equal(other.code, '57014', 'held, and not approved in time');
      const otherId = /review (rv_[0-9a-z]+)/.exec(other.notices[0] ?? '')?.[1];
      assert.ok(otherId && otherId !== id, `a review of its own, got ${JSON.stringify(other.notices)}`);
      assert.deepEqual((await direct.query('select id from jobs order by id')).rows, [{ id: 1 }, { id: 2 }]);
      assert.equal((await proxy.approvals!.service.get(id))!.state, 'approved', 'the approval stays for the key that asked');
      assert.ok(previous, 'the first key was revoked');
    } finally {
      await direct.end();
    }
  });
});
