// The `gatehouse reviews` CLI on SQLite: it votes straight on the store, under the
// same reviewer rules as the API, and a request held by a gateway in another process
// is released by the store poll (SQLite has no LISTEN/NOTIFY).

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseConfig } from '../../src/config/index.js';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import type { Decision, Exchange } from '../../src/exchange/index.js';
import { createLogger } from '../../src/observability/index.js';
import { compilePolicy, type DecisionPolicy } from '../../src/policy/index.js';
import { startGateway, type Gateway } from '../../src/server/index.js';
import { runCli } from '../helpers/gateway-process.js';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHmac } from 'node:crypto';

function approvalFor(word: string): DecisionPolicy {
  const base = compilePolicy([{ connection: 'demo', groups: ['ml'] }]);
  return {
    version: base.version,
    decide(exchange: Exchange): Decision {
      const decision = base.decide(exchange);
      if (decision.effect === 'allow' && exchange.facts.text?.includes(word)) return { ...decision, effect: 'require_approval', rules: ['risky'] };
      return decision;
    },
  };
}

describe('gatehouse reviews (CLI) on SQLite', () => {
  let dir: string;
  let configPath: string;
  let upstream: DemoUpstream;
  let gateway: Gateway;
  let requesterKey: string;
  let reviewerKey: string;
  let hooks: Server;
  const notified: { event: string | undefined; signature: string | undefined; timestamp: string | undefined; body: string }[] = [];
  const hookSecret = 'hook-secret-reviews';

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-reviews-cli-'));
    upstream = await startDemoUpstream({ apiKey: 'sk-up' });
    hooks = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        notified.push({ event: req.headers['gatehouse-event'] as string, signature: req.headers['gatehouse-signature'] as string, timestamp: req.headers['gatehouse-timestamp'] as string, body });
        res.end();
      });
    });
    await new Promise<void>((resolve) => hooks.listen(0, '127.0.0.1', resolve));
    const hookUrl = `http://127.0.0.1:${(hooks.address() as AddressInfo).port}/hook`;
    const yaml = `gateway: { listen: { host: 127.0.0.1, port: 0 } }
admin: { listen: { host: 127.0.0.1, port: 0 }, groups: [admins] }
log: { level: silent }
store: { sqlite: { path: ${join(dir, 'gatehouse.db')} } }
connections:
  - { name: demo, type: openai, target: "${upstream.url}", credential: { secret: "\${UPSTREAM_KEY}" }, access: { groups: [ml] } }
# 60s: each step spawns a CLI process, which took over 5 s at load 15-20 (the 20 s hold ran out before the approval)
approvals:
  defaults: { reviewers: [reviewers], holdFor: 60s }
  pollInterval: 200ms
  notify: { webhooks: [{ url: "${hookUrl}", secret: "\${HOOK_SECRET}" }] }
`;
    configPath = join(dir, 'gatehouse.yaml');
    writeFileSync(configPath, yaml);
    gateway = await startGateway(parseConfig(yaml, configPath, { UPSTREAM_KEY: 'sk-up', HOOK_SECRET: hookSecret }), { policy: approvalFor('RISKY'), logger: createLogger('silent') });
    requesterKey = (await gateway.apiKeys.create({ name: 'bot', kind: 'agent', groups: ['ml', 'reviewers'], expiresAt: null })).token;
    reviewerKey = (await gateway.apiKeys.create({ name: 'carol', kind: 'human', groups: ['reviewers'], expiresAt: null })).token;
  });

  after(async () => {
    await gateway?.close();
    await upstream?.close();
    await new Promise((resolve) => hooks?.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  const cli = (args: string[], key?: string, env: NodeJS.ProcessEnv = { HOOK_SECRET: hookSecret }) => runCli(['reviews', ...args, '--config', configPath], { ...process.env, UPSTREAM_KEY: 'sk-up', ...env, ...(key ? { GATEHOUSE_REVIEWER_KEY: key } : {}) });

  test('list, refuse a self-approval, approve as a reviewer: the held request is answered', async () => {
    const held = fetch(`${gateway.dataPlaneUrl}/c/demo/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${requesterKey}`, 'content-type': 'application/json', 'gatehouse-justification': 'quarterly report' },
      body: JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: 'a RISKY question' }] }),
    });
    let reviews: Array<{ id: string; justification: string }> = [];
    for (let i = 0; i < 50 && reviews.length === 0; i++) {
      const listed = await cli(['list', '--state', 'pending', '--json']);
      assert.equal(listed.code, 0, listed.stderr);
      reviews = JSON.parse(listed.stdout);
      if (reviews.length === 0) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(reviews.length, 1);
    assert.equal(reviews[0]!.justification, 'quarterly report');
    const id = reviews[0]!.id;

    const noKey = await cli(['approve', id]);
    assert.equal(noKey.code, 2);
    assert.match(noKey.stderr, /set GATEHOUSE_REVIEWER_KEY to the reviewer's API key/);

    const self = await cli(['approve', id], requesterKey);
    assert.equal(self.code, 1);
    assert.equal(self.stderr, 'gatehouse: review_vote_refused: key:bot requested this review and may not review it (no self-approval).\n');

    const approved = await cli(['approve', id, '--comment', 'looks fine'], reviewerKey);
    assert.equal(approved.code, 0, approved.stderr);
    assert.match(approved.stdout, new RegExp(`^review ${id}: approved\\n`));
    assert.match(approved.stdout, /vote {10}approve by key:carol \(cli\) .*: looks fine/);

    const res = await held;
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as any).choices[0].message.content, 'Demo reply to: a RISKY question');

    const shown = await cli(['show', id]);
    assert.match(shown.stdout, /: executed\n/);

    // The exchange's record names the review that let it through.
    const exchangeId = res.headers.get('gatehouse-exchange-id')!;
    let session = { code: 1, stdout: '', stderr: '' };
    for (let i = 0; i < 50 && !/^result /m.test(session.stdout); i++) {
      session = await runCli(['sessions', 'show', exchangeId, '--config', configPath], { ...process.env, UPSTREAM_KEY: 'sk-up' });
      if (!/^result /m.test(session.stdout)) await new Promise((r) => setTimeout(r, 100));
    }
    assert.match(session.stdout, new RegExp(`^approval  review ${id}, via held\n`, 'm'), session.stdout + session.stderr);

    // Every review event is in the audit chain under its own kind, the CLI's vote included
    // (kinds were doubled, "review.review.created", and a vote cast with the CLI was not chained).
    const bundle = join(dir, 'review-bundle');
    const exported = await runCli(['audit', 'export', '--out', bundle, '--config', configPath], { ...process.env, UPSTREAM_KEY: 'sk-up' });
    assert.equal(exported.code, 0, exported.stderr);
    const events = readFileSync(join(bundle, 'events.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { kind: string; actor: string; target: string; details: Record<string, any> });
    const ofReview = events.filter((e) => e.target === `review:${id}`);
    // The CLI's vote is chained when the gateway applies the CLI's journal, so the held
    // request's review.executed, chained by the gateway, may come before it (operations.md).
    const kinds = ofReview.map((e) => `${e.kind} ${e.actor}`);
    assert.deepEqual(kinds.filter((k) => k !== 'review.executed key:bot'), ['review.created key:bot', 'review.voted key:carol', 'review.approved key:carol']);
    assert.equal(kinds.filter((k) => k === 'review.executed key:bot').length, 1, kinds.join(', '));
    // Security regression: the chain (and so the bundle) holds why the request was asked for
    // and why it was approved, and what exactly; only the reviews table had them, which a
    // write to the store could change unseen.
    const [created, voted, approvedEvent] = ['review.created', 'review.voted', 'review.approved'].map((kind) => ofReview.find((e) => e.kind === kind)!);
    assert.equal(created!.details['justification'], 'quarterly report');
    assert.match(created!.details['digest'], /^sha256:[0-9a-f]{64}$/);
    assert.deepEqual(created!.details['rules'], ['risky']);
    assert.deepEqual(voted!.details['vote'], { vote: 'approve', comment: 'looks fine', grantMs: null, via: 'cli' });
    assert.deepEqual(approvedEvent!.details['vote'], voted!.details['vote']);
  });

  test('a reviewer whose user is revoked cannot vote with the CLI either', async () => {
    const daveKey = (await gateway.apiKeys.create({ name: 'dave', kind: 'human', groups: ['reviewers'], expiresAt: null })).token;
    const held = fetch(`${gateway.dataPlaneUrl}/c/demo/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${requesterKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: 'another RISKY question' }] }),
    });
    let id: string | undefined;
    for (let i = 0; i < 50 && id === undefined; i++) {
      const listed = JSON.parse((await cli(['list', '--state', 'pending', '--json'])).stdout) as Array<{ id: string }>;
      id = listed[0]?.id;
      if (id === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(id);
    const revoked = await runCli(['revoke', 'user', 'key:dave', '--reason', 'left the team', '--config', configPath], { ...process.env, UPSTREAM_KEY: 'sk-up' });
    assert.equal(revoked.code, 0, revoked.stderr);
    // Before, the CLI checked only the key itself: dave's vote approved the request.
    const vote = await cli(['approve', id], daveKey);
    assert.equal(vote.code, 1);
    assert.match(vote.stderr, /credential_revoked/);
    assert.match((await cli(['show', id])).stdout, /: pending\n/);
    assert.equal((await cli(['deny', id], reviewerKey)).code, 0);
    assert.equal((await held).status, 403);
  });

  test('security: a review keeps credentials in its preview as their type label (it goes to webhooks and stays after a denial)', async () => {
    const held = fetch(`${gateway.dataPlaneUrl}/c/demo/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${requesterKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: 'RISKY: deploy with AKIAIOSFODNN7EXAMPLE and ghp_16C7e42F292c6912E7710c838347Ae178B4a' }] }),
    });
    let reviews: Array<{ id: string; promptPreview: string }> = [];
    for (let i = 0; i < 50 && reviews.length === 0; i++) {
      reviews = JSON.parse((await cli(['list', '--state', 'pending', '--json'])).stdout);
      if (reviews.length === 0) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(reviews.length, 1);
    assert.equal(reviews[0]!.promptPreview, 'RISKY: deploy with [AWS_ACCESS_KEY] and [GITHUB_TOKEN]');
    assert.equal((await cli(['deny', reviews[0]!.id], reviewerKey)).code, 0);
    assert.equal((await held).status, 403);
  });

  test('reviews list --limit takes a positive integer: not a SQLite error and a stack, nor 0 for no limit', async () => {
    for (const limit of ['abc', '0', '2.5']) {
      const listed = await cli(['list', '--limit', limit]);
      assert.deepEqual([listed.code, listed.stderr], [2, 'gatehouse: --limit must be a positive integer\n'], limit);
    }
    const one = await cli(['list', '--limit', '1', '--json']);
    assert.equal(one.code, 0, one.stderr);
    assert.equal((JSON.parse(one.stdout) as unknown[]).length, 1);
  });

  test('reviews list naming a connection or subject no review has says so on stderr, with the nearest names; stdout stays []', async () => {
    const typo = await cli(['list', '--connection', 'dmeo', '--subject', 'bot', '--json']);
    assert.equal(typo.code, 0, typo.stderr);
    assert.equal(typo.stdout, '[]\n');
    assert.deepEqual(typo.stderr.trimEnd().split('\n'), [
      'gatehouse: no review has --connection "dmeo", and no configured connection has that name; connections configured or recorded, closest first: demo',
      'gatehouse: no review has --subject "bot"; recorded subjects, closest first: key:bot',
    ]);
    // Values that exist, in a combination that matches nothing: a true "none", no hint.
    const none = await cli(['list', '--connection', 'demo', '--subject', 'key:bot', '--state', 'cancelled', '--json']);
    assert.deepEqual([none.code, none.stdout, none.stderr], [0, '[]\n', '']);
  });

  test('a grant is refused and shown in the units it was given in (maxGrant 8h), not in milliseconds', async () => {
    const held = fetch(`${gateway.dataPlaneUrl}/c/demo/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${requesterKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: 'another RISKY question' }] }),
    });
    let id: string | undefined;
    for (let i = 0; i < 50 && id === undefined; i++) {
      const listed = await cli(['list', '--state', 'pending', '--json']);
      id = (JSON.parse(listed.stdout) as Array<{ id: string }>)[0]?.id;
      if (id === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(id);
    const tooLong = await cli(['approve', id, '--grant', '9h'], reviewerKey);
    assert.equal(tooLong.code, 1);
    assert.equal(tooLong.stderr, 'gatehouse: invalid_vote: grantFor must be more than 0 and at most 8h (maxGrant).\n');
    const approved = await cli(['approve', id, '--grant', '90m'], reviewerKey);
    assert.equal(approved.code, 0, approved.stderr);
    assert.match(approved.stdout, /^ {2}grant {9}90m, until \d{4}-/m);
    assert.equal((await held).status, 200);
  });

  test('a vote cast with the CLI notifies the webhooks as one cast through the admin API does', async () => {
    // Another requester: bot holds the grant of the test before.
    const erinKey = (await gateway.apiKeys.create({ name: 'erin', kind: 'agent', groups: ['ml'], expiresAt: null })).token;
    const held = fetch(`${gateway.dataPlaneUrl}/c/demo/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${erinKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: 'a RISKY one to deny' }] }),
    });
    let id: string | undefined;
    for (let i = 0; i < 50 && id === undefined; i++) {
      const listed = await cli(['list', '--state', 'pending', '--json'], undefined, {});
      assert.equal(listed.code, 0, `list needs no notification secret: ${listed.stderr}`);
      id = (JSON.parse(listed.stdout) as Array<{ id: string }>)[0]?.id;
      if (id === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(id);
    // A vote cannot notify without the webhook's secret: refused, naming it, before anything changes.
    const noSecret = await cli(['deny', id], reviewerKey, {});
    assert.equal(noSecret.code, 1, noSecret.stderr);
    assert.match(noSecret.stderr, /approvals\.notify\.webhooks\[0\]\.secret/);

    const denied = await cli(['deny', id, '--comment', 'not today'], reviewerKey);
    assert.equal(denied.code, 0, denied.stderr);
    assert.match(denied.stdout, new RegExp(`^review ${id}: denied\\n`));
    assert.equal((await held).status, 403);

    type Payload = { type: string; actor: string; review: { id: string; state: string }; links: Record<string, unknown> };
    const ofReview = notified.map((n) => ({ ...n, payload: JSON.parse(n.body) as Payload })).filter((n) => n.payload.review.id === id);
    // review.created from the gateway, review.denied from the CLI: the same envelope, signed alike.
    assert.deepEqual(ofReview.map((n) => [n.event, n.payload.type, n.payload.actor, n.payload.review.state]), [
      ['review.created', 'review.created', 'key:erin', 'pending'],
      ['review.denied', 'review.denied', 'key:carol', 'denied'],
    ]);
    for (const n of ofReview) {
      assert.equal(n.signature, `sha256=${createHmac('sha256', hookSecret).update(`${n.timestamp}.${n.body}`).digest('hex')}`);
      assert.deepEqual(Object.keys(n.payload).sort(), ['actor', 'at', 'links', 'review', 'type']);
    }
  });
});
