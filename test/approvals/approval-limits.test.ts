// An approved request that a limit then refuses (429) was never sent: its single-use
// approval must stay usable, so the caller's retry with Gatehouse-Review goes through.
// (The approval used to be spent before the limits ran: the 429 burned the reviewer's
// consent, and the retry was refused as "already used".) And a caller that never learnt
// the review's id uses the approval by sending the same request again. Config as docs/policy.md and
// docs/approvals.md show it, the official openai client, real sockets.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { startSdkGateway, type SdkGateway } from '../helpers/sdk-gateway.js';

let sdk: SdkGateway;
let reviewerKey: string;
let releaseSlow: () => void = () => undefined;
let busyRefusals = 0;

const answer = (content: string) => JSON.stringify({ id: 'c1', object: 'chat.completion', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }] });

before(async () => {
  sdk = await startSdkGateway({
    extraYaml: `policy:
  rules:
    - name: prod-prompts
      effect: require_approval
      when:
        - keywords: [production database]
  limits:
    rules:
      - name: one-at-a-time
        match: { connections: [openai] }
        per: connection
        concurrent: 1
approvals:
  defaults: { reviewers: [dba], holdFor: 20s }
  pollInterval: 100ms
`,
  });
  sdk.upstream((_req, body, res) => {
    const reply = () => res.writeHead(200, { 'content-type': 'application/json' }).end(answer('done'));
    // The target's own rate limiter refuses the first attempt (as OpenAI and vLLM do).
    if (body.toString().includes('busy model') && busyRefusals++ === 0) {
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after-ms': '10' }).end(JSON.stringify({ error: { message: 'Rate limit reached', type: 'rate_limit_error', code: 'rate_limit_exceeded' } }));
      return;
    }
    if (!body.toString().includes('slow')) {
      reply();
      return;
    }
    releaseSlow = () => {
      releaseSlow = () => undefined;
      reply();
    };
  });
  reviewerKey = (await sdk.gateway.apiKeys.create({ name: 'dba-1', kind: 'human', groups: ['dba'], expiresAt: null })).token;
});

after(async () => {
  releaseSlow();
  await sdk?.close();
});

const admin = async (path: string, init: RequestInit = {}) => {
  const res = await fetch(`${sdk.gateway.adminUrl}${path}`, { ...init, headers: { authorization: `Bearer ${reviewerKey}`, 'content-type': 'application/json' } });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
};

test('a 429 after the approval leaves the approval unused; the retry with Gatehouse-Review is answered', { timeout: 60_000 }, async () => {
  const other = await sdk.client(['ml']);
  const alice = await sdk.client(['ml']);
  const messages = [{ role: 'user' as const, content: 'Read the production database' }];

  // Someone else holds the connection's only slot.
  const slow = other.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'slow one' }] });
  for (let i = 0; i < 100 && sdk.received.length === 0; i++) await new Promise((r) => setTimeout(r, 20));

  const held = alice.chat.completions.create({ model: 'm', messages }).then(
    () => undefined,
    (error: unknown) => error,
  );
  let id: string | undefined;
  for (let i = 0; i < 100 && id === undefined; i++) {
    id = (await admin('/api/reviews?state=pending')).body.reviews?.[0]?.id;
    if (id === undefined) await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(id, 'a review was opened');
  assert.equal((await admin(`/api/reviews/${id}/approve`, { method: 'POST', body: '{}' })).status, 200);

  const refused = await held;
  assert.ok(refused instanceof OpenAI.RateLimitError, `a 429, got ${String(refused)}`);
  assert.equal((refused.error as { code?: string }).code, 'rate_limited');
  const afterRefusal = (await admin(`/api/reviews/${id}`)).body;
  assert.equal(afterRefusal.state, 'approved', 'a refused request does not use the approval');
  assert.equal(afterRefusal.executedAt, null);

  releaseSlow();
  await slow;
  const retried = await alice.chat.completions.create({ model: 'm', messages }, { headers: { 'Gatehouse-Review': id } });
  assert.equal(retried.choices[0]?.message.content, 'done');
  const used = (await admin(`/api/reviews/${id}`)).body;
  assert.equal(used.state, 'executed');

  // Single use still holds.
  await assert.rejects(alice.chat.completions.create({ model: 'm', messages }, { headers: { 'Gatehouse-Review': id } }), (error: unknown) => {
    assert.ok(error instanceof OpenAI.PermissionDeniedError);
    assert.equal((error.error as { code?: string }).code, 'approval_invalid');
    assert.equal((error.error as { rule?: string }).rule, 'prod-prompts', 'the envelope names the rule that asked for approval');
    return true;
  });
});

test('a caller that hung up while held sends the same request again: the approval given meanwhile is used, no second review', { timeout: 60_000 }, async () => {
  const { token } = await sdk.gateway.apiKeys.create({ name: 'impatient', kind: 'service', groups: ['ml'], expiresAt: null });
  const baseURL = sdk.baseURL;
  const messages = [{ role: 'user' as const, content: 'Count rows in the production database' }];
  // Its own timeout is shorter than the hold: it never sees the review's id.
  const impatient = new OpenAI({ baseURL, apiKey: token, maxRetries: 0, timeout: 1000 });
  await assert.rejects(impatient.chat.completions.create({ model: 'm', messages }), OpenAI.APIConnectionTimeoutError);

  const pending = (await admin('/api/reviews?state=pending&subject=key:impatient')).body.reviews as Array<{ id: string }>;
  assert.equal(pending.length, 1);
  const id = pending[0]!.id;
  assert.equal((await admin(`/api/reviews/${id}/approve`, { method: 'POST', body: '{}' })).status, 200);

  const again = new OpenAI({ baseURL, apiKey: token, maxRetries: 0 });
  const started = Date.now();
  const answered = await again.chat.completions.create({ model: 'm', messages });
  assert.equal(answered.choices[0]?.message.content, 'done');
  assert.ok(Date.now() - started < 5000, 'not held again');
  const all = (await admin('/api/reviews?subject=key:impatient')).body.reviews as Array<{ id: string; state: string }>;
  assert.deepEqual(
    all.map((r) => [r.id, r.state]),
    [[id, 'executed']],
  );

  // Used once: the same request once more opens a new review.
  const third = await new OpenAI({ baseURL, apiKey: token, maxRetries: 0, timeout: 1000 }).chat.completions.create({ model: 'm', messages }).then(
    () => 'answered',
    () => 'held',
  );
  assert.equal(third, 'held');
  assert.equal(((await admin('/api/reviews?state=pending&subject=key:impatient')).body.reviews as unknown[]).length, 1);
});

test("the target's own 429 gives the approval back: the openai client's automatic retry is answered, not held on a new review", { timeout: 60_000 }, async () => {
  const { token } = await sdk.gateway.apiKeys.create({ name: 'retrier', kind: 'service', groups: ['ml'], expiresAt: null });
  // The SDK's defaults: it retries a 429 on its own, honouring the target's retry-after.
  const client = new OpenAI({ baseURL: sdk.baseURL, apiKey: token, maxRetries: 2 });
  const messages = [{ role: 'user' as const, content: 'Summarise the production database on the busy model' }];
  const answered = client.chat.completions.create({ model: 'm', messages });
  let id: string | undefined;
  for (let i = 0; i < 100 && id === undefined; i++) {
    id = (await admin('/api/reviews?state=pending&subject=key:retrier')).body.reviews?.[0]?.id;
    if (id === undefined) await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(id, 'a review was opened');
  const started = Date.now();
  assert.equal((await admin(`/api/reviews/${id}/approve`, { method: 'POST', body: '{}' })).status, 200);

  // Before: the 429 had spent the approval, so the retry opened a second review and was
  // held until holdFor (20 s) ended in 403 approval_required, the reviewer's consent wasted.
  const answer = await answered;
  assert.equal(answer.choices[0]?.message.content, 'done');
  assert.ok(Date.now() - started < 10_000, 'the retry was not held again');
  assert.equal(busyRefusals, 2, 'the target saw the refused attempt and the retry');
  const reviews = (await admin('/api/reviews?subject=key:retrier')).body.reviews as Array<{ id: string; state: string }>;
  assert.deepEqual(
    reviews.map((r) => [r.id, r.state]),
    [[id, 'executed']],
    'one review, used by the retry',
  );

  // Still single use: the same request once more is held on a new review.
  const again = await new OpenAI({ baseURL: sdk.baseURL, apiKey: token, maxRetries: 0, timeout: 1000 }).chat.completions.create({ model: 'm', messages }).then(
    () => 'answered',
    () => 'held',
  );
  assert.equal(again, 'held');
});
