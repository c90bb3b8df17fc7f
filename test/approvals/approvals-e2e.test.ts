// End to end, on the machine's PostgreSQL: two gateways share one store; a request
// held on gateway A is released by a reviewer voting through gateway B's admin API
// (LISTEN/NOTIFY), and the official openai client simply gets its answer. Then the
// refusals a user would meet: self-approval, a retry with another body or identity,
// a used or expired approval, a denial, and a pending review surviving a restart.
// The gateways run in this process via startGateway(config, { policy }) with a test
// policy that asks for approval when the prompt contains a trigger word.

import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { signWebhook, type Review } from '../../src/approvals/index.js';
import { parseConfig } from '../../src/config/index.js';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import type { Decision, Exchange } from '../../src/exchange/index.js';
import { createLogger } from '../../src/observability/index.js';
import { compilePolicy, type DecisionPolicy } from '../../src/policy/index.js';
import { startGateway, type Gateway } from '../../src/server/index.js';
import { createTestPostgresDatabase } from '../helpers/databases.js';

const upstreamKey = 'sk-upstream-approvals';
const webhookSecret = 'whsec-test-approvals';

/** require_approval (rule named by the trigger word) when the prompt contains one. */
function testPolicy(): DecisionPolicy {
  const base = compilePolicy([{ connection: 'demo', groups: ['ml'] }]);
  const triggers: Record<string, string> = { DROP: 'risky-prompts', DELETE: 'quick-hold', EXPIRE: 'short-lived', GRANT: 'grantable' };
  return {
    version: base.version,
    decide(exchange: Exchange): Decision {
      const decision = base.decide(exchange);
      if (decision.effect !== 'allow') return decision;
      const word = Object.keys(triggers).find((w) => exchange.facts.text?.includes(w));
      if (!word) return decision;
      return { effect: 'require_approval', rules: [triggers[word]!], reason: 'rule-require-approval', policyVersion: decision.policyVersion };
    },
  };
}

interface Received {
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

const pg = await createTestPostgresDatabase();

describe('approvals end to end across two gateways on PostgreSQL', { skip: 'skip' in pg ? pg.skip : undefined }, () => {
  const url = 'url' in pg ? pg.url : '';
  let upstream: DemoUpstream;
  let hooks: Server;
  const received: Received[] = [];
  let a: Gateway;
  let b: Gateway;
  let requesterKey: string;
  let otherMlKey: string;
  let aliceKey: string;
  let bobKey: string;
  let outsiderKey: string;
  let client: OpenAI;
  const sse: string[] = [];
  const sseAbort = new AbortController();

  const config = (hooksUrl: string) =>
    parseConfig(
      `gateway: { listen: { host: 127.0.0.1, port: 0 } }
admin: { listen: { host: 127.0.0.1, port: 0 }, groups: [admins] }
log: { level: silent }
store: { postgres: { url: "\${PG_URL}" } }
connections:
  - name: demo
    type: openai
    target: ${upstream.url}
    credential: { secret: "\${UPSTREAM_KEY}" }
    access: { groups: [ml] }
approvals:
  defaults: { reviewers: [reviewers], holdFor: 20s }
  rules:
    quick-hold: { holdFor: 300ms }
    short-lived: { holdFor: 300ms, expiresAfter: 1500ms }
    grantable: { holdFor: 20s, maxGrant: 1h }
  notify:
    webhooks: [{ url: "${hooksUrl}/hook", secret: "\${HOOK_SECRET}", initialBackoff: 50ms }]
    slack: { webhookUrl: "\${SLACK_URL}" }
`,
      '/tmp/approvals-e2e.yaml',
      { PG_URL: url, UPSTREAM_KEY: upstreamKey, HOOK_SECRET: webhookSecret, SLACK_URL: `${hooksUrl}/slack/T000/B000/XXXX` },
    );

  const start = (hooksUrl: string) => startGateway(config(hooksUrl), { policy: testPolicy(), logger: createLogger('silent') });

  before(async () => {
    upstream = await startDemoUpstream({ apiKey: upstreamKey });
    let failFirstHook = true;
    hooks = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        // The first webhook delivery fails, to prove the retry.
        if (req.url === '/hook' && failFirstHook) {
          failFirstHook = false;
          res.writeHead(503).end();
          return;
        }
        received.push({ path: req.url ?? '', headers: req.headers, body });
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((resolve) => hooks.listen(0, '127.0.0.1', resolve));
    const hooksUrl = `http://127.0.0.1:${(hooks.address() as AddressInfo).port}`;
    a = await start(hooksUrl);
    b = await start(hooksUrl);
    const key = async (name: string, groups: string[]) => (await a.apiKeys.create({ name, kind: 'agent', groups, expiresAt: null })).token;
    // The requester is also a reviewer: only the no-self-approval rule stops it.
    requesterKey = await key('ml-bot', ['ml', 'reviewers']);
    otherMlKey = await key('ml-bot-2', ['ml']);
    aliceKey = await key('alice', ['reviewers']);
    bobKey = await key('bob', ['reviewers']);
    outsiderKey = await key('mallory', ['ml']);
    client = new OpenAI({ baseURL: `${a.dataPlaneUrl}/c/demo`, apiKey: requesterKey, maxRetries: 0, defaultHeaders: { 'Gatehouse-Justification': 'incident INC-42: clean up' } });

    // A console following gateway B's event stream.
    const events = await fetch(`${b.adminUrl}/api/reviews/events`, { headers: { authorization: `Bearer ${aliceKey}` }, signal: sseAbort.signal });
    assert.equal(events.status, 200);
    assert.equal(events.headers.get('content-type'), 'text/event-stream');
    void (async () => {
      const decoder = new TextDecoder();
      try {
        for await (const chunk of events.body!) sse.push(decoder.decode(chunk as Uint8Array));
      } catch {
        // aborted at the end
      }
    })();
  });

  after(async () => {
    sseAbort.abort();
    await Promise.all([a?.close(), b?.close()]);
    await new Promise((resolve) => hooks?.close(resolve));
    await upstream?.close();
    if ('drop' in pg) await pg.drop();
  });

  const admin = async (gateway: Gateway, key: string, path: string, body?: unknown) => {
    const res = await fetch(`${gateway.adminUrl}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as any };
  };

  const chat = (gateway: Gateway, key: string, prompt: string, headers: Record<string, string> = {}) =>
    fetch(`${gateway.dataPlaneUrl}/c/demo/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: prompt }] }),
    });

  async function waitForPending(gateway: Gateway, connection: string, predicate: (r: Review) => boolean): Promise<Review> {
    for (let i = 0; i < 100; i++) {
      const { body } = await admin(gateway, aliceKey, `/api/reviews?state=pending&connection=${connection}`);
      const found = (body.reviews as Review[]).find(predicate);
      if (found) return found;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('no pending review appeared');
  }

  test('a held request continues when a reviewer approves through the other gateway; the client just gets its answer', async () => {
    const prompt = 'Please DROP the staging table';
    const started = Date.now();
    const answer = client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: prompt }] }).withResponse();

    const review = await waitForPending(b, 'demo', (r) => r.promptPreview === prompt);
    assert.equal(review.subject, 'key:ml-bot');
    assert.equal(review.connection, 'demo');
    assert.equal(review.operation, 'chat.completions');
    assert.match(review.digest, /^sha256:[0-9a-f]{64}$/);
    assert.deepEqual(review.rules, ['risky-prompts']);
    assert.deepEqual(review.reviewerGroups, ['reviewers']);
    assert.equal(review.justification, 'incident INC-42: clean up');

    const self = await admin(b, requesterKey, `/api/reviews/${review.id}/approve`, { comment: 'me' });
    assert.equal(self.status, 403);
    assert.equal(self.body.error.code, 'review_vote_refused');
    assert.equal(self.body.error.message, 'key:ml-bot requested this review and may not review it (no self-approval).');

    const outsider = await admin(b, outsiderKey, `/api/reviews/${review.id}/approve`, {});
    assert.equal(outsider.status, 403);
    assert.equal(outsider.body.error.message, `key:mallory is not in a reviewer group for review ${review.id} (reviewers).`);

    const approved = await admin(b, aliceKey, `/api/reviews/${review.id}/approve`, { comment: 'ok for staging' });
    assert.equal(approved.status, 200);
    assert.equal(approved.body.state, 'approved');
    assert.deepEqual(approved.body.votes.map((v: any) => [v.voter, v.vote, v.comment]), [['key:alice', 'approve', 'ok for staging']]);

    const { data, response } = await answer;
    assert.equal(data.choices[0]!.message.content, `Demo reply to: ${prompt}`);
    const releasedIn = Date.now() - started;
    assert.ok(releasedIn < 15_000, `released in ${releasedIn} ms`);

    const exchangeId = response.headers.get('gatehouse-exchange-id')!;
    const { body: session } = await admin(a, await adminKey(a), `/api/sessions/${exchangeId}`);
    assert.deepEqual(session.approval, { reviewId: review.id, via: 'held' });
    assert.equal(session.decision, 'require_approval');
    const { body: done } = await admin(a, aliceKey, `/api/reviews/${review.id}`);
    assert.equal(done.state, 'executed');
    assert.equal(done.executedByExchange, exchangeId);

    // Second vote after the decision: the review is closed.
    const late = await admin(b, bobKey, `/api/reviews/${review.id}/approve`, {});
    assert.equal(late.status, 409);
    assert.equal(late.body.error.code, 'review_not_pending');

    // The webhook (retried once after a 503) carries a valid signature and the review.
    const hookCalls = await eventually(() => received.filter((r) => r.path === '/hook' && JSON.parse(r.body).review.id === review.id), (calls) => calls.length >= 3);
    for (const call of hookCalls) {
      const timestamp = Number(call.headers['gatehouse-timestamp']);
      assert.ok(Math.abs(timestamp - Date.now() / 1000) < 120);
      assert.equal(call.headers['gatehouse-signature'], signWebhook(webhookSecret, timestamp, call.body));
      assert.notEqual(call.headers['gatehouse-signature'], signWebhook('wrong-secret', timestamp, call.body));
    }
    // Each gateway delivers its own events (B the vote, A the execution), so they may
    // arrive in either order; `at` says the order they happened in.
    const events = hookCalls.map((c) => JSON.parse(c.body) as { type: string; at: string });
    assert.deepEqual(events.map((e) => e.type).sort(), ['review.approved', 'review.created', 'review.executed']);
    const at = (type: string) => Date.parse(events.find((e) => e.type === type)!.at);
    assert.ok(at('review.created') <= at('review.approved') && at('review.approved') <= at('review.executed'));
    const created = JSON.parse(hookCalls.find((c) => JSON.parse(c.body).type === 'review.created')!.body);
    assert.equal(created.review.justification, 'incident INC-42: clean up');
    assert.equal(created.links.review, `${a.adminUrl}/api/reviews/${review.id}`);
    assert.equal(created.links.approve, `${a.adminUrl}/api/reviews/${review.id}/approve`);

    // Slack: a Block Kit message with approve / deny links.
    const slack = await eventually(() => received.filter((r) => r.path.startsWith('/slack/') && r.body.includes(review.id)), (c) => c.length >= 1);
    const message = JSON.parse(slack[0]!.body);
    assert.match(message.text, /^Approval needed: key:ml-bot → demo chat\.completions/);
    const actions = message.blocks.find((block: any) => block.type === 'actions');
    assert.deepEqual(actions.elements.map((e: any) => [e.action_id, e.url]), [
      ['approve', `${a.adminUrl}/api/reviews/${review.id}/approve`],
      ['deny', `${a.adminUrl}/api/reviews/${review.id}/deny`],
      ['open', `${a.adminUrl}/api/reviews/${review.id}`],
    ]);
    assert.ok(message.blocks.some((block: any) => block.type === 'section' && block.text?.text.includes('incident INC-42')));

    // Gateway B's event stream saw the review created on A (LISTEN/NOTIFY) and its decision.
    const stream = await eventually(() => sse.join(''), (text) => text.includes(`event: review.executed\nid: ${review.id}`));
    assert.ok(stream.includes(`event: review.created\nid: ${review.id}\ndata: {`));
    assert.ok(stream.includes(`event: review.approved\nid: ${review.id}\ndata: {`));
  });

  test('not approved in time: 403 approval_required with the review id; a retry must match identity and body, and works once', async () => {
    const prompt = 'DELETE rows older than a year';
    const res = await chat(a, requesterKey, prompt);
    assert.equal(res.status, 403);
    const refused = (await res.json()) as any;
    assert.equal(refused.error.code, 'approval_required');
    const id = refused.error.review_id as string;
    assert.match(id, /^rv_/);
    assert.equal(refused.error.review_url, `${a.adminUrl}/api/reviews/${id}`);

    // Retrying before approval is held again, then refused the same way.
    const early = await chat(a, requesterKey, prompt, { 'gatehouse-review': id });
    assert.equal(early.status, 403);
    assert.equal(((await early.json()) as any).error.code, 'approval_required');

    assert.equal((await admin(b, bobKey, `/api/reviews/${id}/approve`, { comment: 'fine' })).status, 200);

    const otherBody = await chat(a, requesterKey, 'DELETE every row', { 'gatehouse-review': id });
    assert.equal(otherBody.status, 403);
    assert.deepEqual(((await otherBody.json()) as any).error, {
      message: `Review ${id} is for a different request body or query; it does not approve this request.`,
      type: 'permission_error',
      code: 'approval_invalid',
      param: null,
      rule: 'quick-hold',
      review_id: id,
      review_url: `${a.adminUrl}/api/reviews/${id}`,
    });

    // Security regression: the query string is part of what was approved. A retry with the
    // same body and another query (`?dry_run=false` after `?dry_run=true` was approved, or
    // none here) was let through: the digest covered the body alone.
    const otherQuery = await fetch(`${a.dataPlaneUrl}/c/demo/chat/completions?dry_run=false`, {
      method: 'POST',
      headers: { authorization: `Bearer ${requesterKey}`, 'content-type': 'application/json', 'gatehouse-review': id },
      body: JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: prompt }] }),
    });
    assert.equal(otherQuery.status, 403);
    assert.equal(((await otherQuery.json()) as any).error.code, 'approval_invalid');

    // A header naming no review gets no review_id or review_url back (a URL of a review
    // that does not exist, built from what the caller sent); the message names the value.
    const unknown = await chat(a, requesterKey, prompt, { 'gatehouse-review': '../../api/keys' });
    assert.equal(unknown.status, 403);
    assert.deepEqual(((await unknown.json()) as any).error, {
      message: 'No review with id "../../api/keys".',
      type: 'permission_error',
      code: 'approval_invalid',
      param: null,
      rule: 'quick-hold',
    });

    const otherIdentity = await chat(a, otherMlKey, prompt, { 'gatehouse-review': id });
    assert.equal(otherIdentity.status, 403);
    assert.equal(((await otherIdentity.json()) as any).error.message, `Review ${id} was requested by another identity; it does not approve this request.`);

    const retry = await chat(b, requesterKey, prompt, { 'gatehouse-review': id });
    assert.equal(retry.status, 200);
    assert.equal(((await retry.json()) as any).choices[0].message.content, `Demo reply to: ${prompt}`);
    const sessionRes = await admin(b, await adminKey(b), `/api/sessions/${retry.headers.get("gatehouse-exchange-id")}`);
    assert.equal(sessionRes.status, 200, JSON.stringify(sessionRes.body));
    const session = sessionRes.body;
    assert.deepEqual(session.approval, { reviewId: id, via: 'retry' });

    const again = await chat(a, requesterKey, prompt, { 'gatehouse-review': id });
    assert.equal(again.status, 403);
    assert.equal(((await again.json()) as any).error.message, `Review ${id} has already been used; an approval is good for one request.`);
  });

  test('a denied review refuses the held request with approval_denied', async () => {
    const prompt = 'DROP the production database';
    const pending = chat(a, requesterKey, prompt);
    const review = await waitForPending(b, 'demo', (r) => r.promptPreview === prompt);
    const denied = await admin(b, aliceKey, `/api/reviews/${review.id}/deny`, { reason: 'not in production' });
    assert.equal(denied.status, 200);
    assert.equal(denied.body.state, 'denied');
    assert.equal(denied.body.votes[0].comment, 'not in production');
    const res = await pending;
    assert.equal(res.status, 403);
    const body = (await res.json()) as any;
    assert.equal(body.error.code, 'approval_denied');
    assert.equal(body.error.message, `Review ${review.id} was denied by key:alice.`);
  });

  test('security: a held request whose key is revoked meanwhile (through the other gateway) is ended at once with credential_revoked, not left waiting out its hold', async () => {
    const doomed = (await a.apiKeys.create({ name: 'doomed-bot', kind: 'agent', groups: ['ml'], expiresAt: null })).token;
    const prompt = 'DROP the staging tables';
    const pending = chat(a, doomed, prompt);
    await waitForPending(b, 'demo', (r) => r.promptPreview === prompt);
    const revokedAt = Date.now();
    const revoked = await admin(b, await adminKey(b), '/api/revocations', { kind: 'key', value: 'doomed-bot', reason: 'leaked' });
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    const res = await pending;
    const took = Date.now() - revokedAt;
    assert.equal(res.status, 401);
    assert.equal(((await res.json()) as any).error.code, 'credential_revoked');
    // The hold is 20 s; the revocation reaches A by its 250 ms poll.
    assert.ok(took < 5000, `ended ${took} ms after the revocation`);
  });

  test('security: a held request whose key expires meanwhile is ended at the expiry with credential_expired; an approval given afterwards sends nothing and stays unused', async () => {
    const expiresAt = Date.now() + 1500;
    const shortLived = (await a.apiKeys.create({ name: 'short-lived-bot', kind: 'agent', groups: ['ml'], expiresAt })).token;
    const prompt = 'DROP the expiring tables';
    const pending = chat(a, shortLived, prompt);
    const review = await waitForPending(b, 'demo', (r) => r.promptPreview === prompt);
    const res = await pending;
    const endedAt = Date.now();
    assert.equal(res.status, 401);
    const body = (await res.json()) as any;
    assert.equal(body.error.code, 'credential_expired');
    assert.equal(body.error.message, 'The credential expired while this request was held for approval, so it was not sent.');
    // The hold is 20 s: it ended at the expiry, not at its end.
    assert.ok(endedAt - expiresAt < 5000, `ended ${endedAt - expiresAt} ms after the expiry`);
    const approved = await admin(b, aliceKey, `/api/reviews/${review.id}/approve`, { comment: 'too late' });
    assert.equal(approved.status, 200);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await admin(b, aliceKey, `/api/reviews/${review.id}`)).body.state, 'approved', 'nothing used the approval');
  });

  test('a review nobody decides expires, which is a denial', async () => {
    const prompt = 'EXPIRE the cache';
    const res = await chat(a, requesterKey, prompt);
    const id = ((await res.json()) as any).error.review_id as string;
    await new Promise((r) => setTimeout(r, 1800));
    const { body: review } = await admin(b, aliceKey, `/api/reviews/${id}`);
    assert.equal(review.state, 'expired');
    assert.equal(review.decidedBy, 'gatehouse');
    const vote = await admin(b, aliceKey, `/api/reviews/${id}/approve`, {});
    assert.equal(vote.status, 409);
    const retry = await chat(a, requesterKey, prompt, { 'gatehouse-review': id });
    assert.equal(retry.status, 403);
    assert.equal(((await retry.json()) as any).error.code, 'approval_expired');
  });

  test('a grant lets later matching requests through without a new review, recorded as such', async () => {
    const pending = chat(a, requesterKey, 'GRANT me the report');
    const review = await waitForPending(b, 'demo', (r) => r.promptPreview === 'GRANT me the report');
    const tooLong = await admin(b, aliceKey, `/api/reviews/${review.id}/approve`, { grantFor: '2h' });
    assert.equal(tooLong.status, 400);
    assert.equal(tooLong.body.error.code, 'invalid_vote');
    const approved = await admin(b, aliceKey, `/api/reviews/${review.id}/approve`, { grantFor: '30m', comment: 'for the audit week' });
    assert.equal(approved.status, 200);
    assert.equal(approved.body.grant.durationMs, 1_800_000);
    assert.equal((await pending).status, 200);

    const later = await chat(b, requesterKey, 'GRANT me another report');
    assert.equal(later.status, 200);
    const { body: session } = await admin(b, await adminKey(b), `/api/sessions/${later.headers.get('gatehouse-exchange-id')}`);
    assert.deepEqual(session.approval, { reviewId: review.id, via: 'grant' });
    // The grant is for this identity and this rule only.
    const other = await chat(b, otherMlKey, 'GRANT me the report too');
    assert.equal(other.status, 403);
    assert.equal(((await other.json()) as any).error.code, 'approval_required');
    const otherRule = await chat(b, requesterKey, 'DELETE under a grant for another rule');
    assert.equal(otherRule.status, 403);
    assert.equal(((await otherRule.json()) as any).error.code, 'approval_required');
  });

  test('a pending review survives a gateway restart, can be approved, and the retry goes through', async () => {
    const prompt = 'DELETE the temp files after restart';
    const res = await chat(a, requesterKey, prompt);
    const id = ((await res.json()) as any).error.review_id as string;
    const hooksUrl = `http://127.0.0.1:${(hooks.address() as AddressInfo).port}`;
    await a.close();
    a = await start(hooksUrl);
    const shown = await admin(a, aliceKey, `/api/reviews/${id}`);
    assert.equal(shown.status, 200, JSON.stringify(shown.body));
    assert.equal(shown.body.state, 'pending');
    assert.equal((await admin(a, aliceKey, `/api/reviews/${id}/approve`, {})).status, 200);
    const retry = await chat(a, requesterKey, prompt, { 'gatehouse-review': id });
    assert.equal(retry.status, 200);
  });

  test('the reviews list filters, and needs a reviewer or admin group', async () => {
    const { status, body } = await admin(a, aliceKey, '/api/reviews?subject=key:ml-bot&state=executed');
    assert.equal(status, 200);
    assert.ok(body.reviews.length >= 3);
    assert.ok(body.reviews.every((r: Review) => r.subject === 'key:ml-bot' && r.state === 'executed'));
    const bad = await admin(a, aliceKey, '/api/reviews?state=maybe');
    assert.equal(bad.status, 400);
    const misspelt = await admin(a, aliceKey, '/api/reviews?stat=pending');
    assert.deepEqual([misspelt.status, misspelt.body.error.code], [400, 'invalid_query']);
    const forbidden = await admin(a, outsiderKey, '/api/reviews');
    assert.equal(forbidden.status, 403);
    assert.equal(forbidden.body.error.message, 'key:mallory is not in a reviewer or admin group.');
  });

  const adminKeys = new Map<Gateway, string>();
  async function adminKey(gateway: Gateway): Promise<string> {
    let key = adminKeys.get(gateway);
    if (!key) {
      key = (await gateway.apiKeys.create({ name: `admin-${adminKeys.size}-${Date.now()}`, kind: 'human', groups: ['admins'], expiresAt: null })).token;
      adminKeys.set(gateway, key);
    }
    return key;
  }
});

async function eventually<T>(get: () => T, ok: (value: T) => boolean, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = get();
    if (ok(value) || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
}
