// A vote's body through the admin API: a misspelt field is refused (400 invalid_vote
// naming it) rather than dropped, since `{"grant": "30m"}` (the CLI flag's name) used
// to approve one request where the reviewer meant a 30-minute grant, and say nothing.
// And the requester may open the review_url its 403 gives it (its own review, with a
// denial's reason); it used to be refused as not a reviewer.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { startSdkGateway, type SdkGateway } from '../helpers/sdk-gateway.js';

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
  defaults: { reviewers: [dba], holdFor: 1s }
`,
  });
  sdk.upstream((_req, _body, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"choices":[]}'));
  reviewerKey = (await sdk.gateway.apiKeys.create({ name: 'dba-1', kind: 'human', groups: ['dba'], expiresAt: null })).token;
});

after(async () => {
  await sdk?.close();
});

const vote = async (id: string, action: string, body: unknown) => {
  const res = await fetch(`${sdk.gateway.adminUrl}/api/reviews/${id}/${action}`, { method: 'POST', headers: { authorization: `Bearer ${reviewerKey}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
};

test('a vote with a misspelt field is refused, naming it; the review stays pending', { timeout: 30_000 }, async () => {
  const client = await sdk.client(['ml']);
  const refused = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'production database totals' }] }).catch((e: unknown) => e);
  assert.ok(refused instanceof OpenAI.PermissionDeniedError);
  const id = (refused.error as { review_id: string }).review_id;

  const typo = await vote(id, 'approve', { grant: '30m' });
  assert.equal(typo.status, 400);
  assert.deepEqual(typo.body, { error: { code: 'invalid_vote', message: 'Unknown field "grant": an approval takes "comment" and "grantFor".' } });
  const denyTypo = await vote(id, 'deny', { reasn: 'no' });
  assert.equal(denyTypo.status, 400);
  assert.match(denyTypo.body.error.message, /^Unknown field "reasn": a denial takes "reason" and "comment"\.$/);

  const granted = await vote(id, 'approve', { comment: 'ok', grantFor: '30m' });
  assert.equal(granted.status, 200, JSON.stringify(granted.body));
  assert.equal(granted.body.state, 'approved');
  assert.equal(granted.body.grant.durationMs, 30 * 60_000);
  assert.equal(granted.body.votes.length, 1);
});

test("the requester reads its own review at the review_url of its 403, a denial's reason included; another caller may not", { timeout: 30_000 }, async () => {
  const { token } = await sdk.gateway.apiKeys.create({ name: 'asker', kind: 'human', groups: ['ml'], expiresAt: null });
  const { token: otherToken } = await sdk.gateway.apiKeys.create({ name: 'bystander', kind: 'human', groups: ['ml'], expiresAt: null });
  const client = new OpenAI({ baseURL: sdk.baseURL, apiKey: token, maxRetries: 0 });
  const refused = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'production database salaries' }] }).catch((e: unknown) => e);
  assert.ok(refused instanceof OpenAI.PermissionDeniedError);
  const { review_id: id, review_url: url } = refused.error as { review_id: string; review_url: string };
  assert.equal((await vote(id, 'deny', { reason: 'salaries need HR sign-off' })).status, 200);

  const own = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(own.status, 200);
  const review = (await own.json()) as { state: string; votes: Array<{ comment: string }> };
  assert.equal(review.state, 'denied');
  assert.equal(review.votes[0]?.comment, 'salaries need HR sign-off');

  for (const path of [url, `${sdk.gateway.adminUrl}/api/reviews/rv_nonexistent`]) {
    const other = await fetch(path, { headers: { authorization: `Bearer ${otherToken}` } });
    assert.equal(other.status, 403);
    assert.equal(((await other.json()) as { error: { code: string } }).error.code, 'access_denied');
  }
  // Reading the list still needs a reviewer group.
  assert.equal((await fetch(`${sdk.gateway.adminUrl}/api/reviews`, { headers: { authorization: `Bearer ${token}` } })).status, 403);
});
