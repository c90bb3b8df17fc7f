// A request held for approval whose prompt, model or justification holds U+0000 opens
// its review on a PostgreSQL store too (PostgreSQL's text cannot hold the character: the
// review's insert failed and the caller got an error instead of a review), and a
// reviewer's comment holding one is kept. Both are stored with U+FFFD in its place.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { createTestPostgresDatabase } from '../helpers/databases.js';
import { demoConnectionYaml, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const upstreamKey = 'sk-upstream-approval-nul';
const approvals = `approvals:
  defaults: { reviewers: [reviewers], holdFor: 1s }
policy:
  rules:
    - name: hold-drop
      effect: require_approval
      when:
        - keywords: [drop]
`;

describe('approvals: U+0000 in what a review stores, on PostgreSQL', () => {
  let upstream: DemoUpstream;
  let database: Awaited<ReturnType<typeof createTestPostgresDatabase>>;
  let gateway: GatewayProcess | undefined;

  before(async () => {
    upstream = await startDemoUpstream({ apiKey: upstreamKey });
    database = await createTestPostgresDatabase();
  });
  after(async () => {
    await gateway?.stop();
    await upstream?.close();
    if ('drop' in database) await database.drop();
  });

  test('the held request opens its review (403 approval_required after holdFor), and a vote with such a comment is taken', async (t) => {
    if ('skip' in database) return t.skip(database.skip);
    const env = { ...process.env, UPSTREAM_KEY: upstreamKey, PG_URL: database.url };
    gateway = await startGatewayProcess(demoConnectionYaml(upstream.url, approvals), { env, store: 'store:\n  postgres:\n    url: "${PG_URL}"\n' });
    const key = await gateway.createKey('etl-bot', ['ml']);
    const reviewer = await gateway.createKey('rita', ['reviewers']);
    const res = await fetch(`${gateway.url}/c/demo/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'gatehouse-justification': 'nightly job' },
      body: '{"model":"demo\\u0000chat","messages":[{"role":"user","content":"drop the staging\\u0000 table"}]}',
    });
    const body = (await res.json()) as { error: { code: string; review_id: string } };
    assert.equal(res.status, 403, JSON.stringify(body));
    assert.equal(body.error.code, 'approval_required');
    const review = await fetch(`${gateway.adminUrl}/api/reviews/${body.error.review_id}`, { headers: { authorization: `Bearer ${reviewer}` } });
    const shown = (await review.json()) as { review: { model: string; promptPreview: string } } & Record<string, unknown>;
    assert.equal(review.status, 200, JSON.stringify(shown));
    assert.ok(JSON.stringify(shown).includes('drop the staging\ufffd table'), JSON.stringify(shown));
    const vote = await fetch(`${gateway.adminUrl}/api/reviews/${body.error.review_id}/deny`, {
      method: 'POST',
      headers: { authorization: `Bearer ${reviewer}`, 'content-type': 'application/json' },
      body: '{"comment":"not\\u0000 tonight"}',
    });
    const voted = await vote.text();
    assert.equal(vote.status, 200, voted);
    assert.ok(voted.includes('not\ufffd tonight') || voted.includes('not\\ufffd tonight'), voted);
  });
});
