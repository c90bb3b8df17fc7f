// A policy reload that adds a require_approval rule with its own `approvals.rules`
// entry, or changes a rule's reviewers, takes effect with the rule: the reload used to
// swap the rules but keep the approvals options read at start, so the new rule's
// reviews went to the default reviewers with the default hold, and a reviewer group
// removed from the config could still vote. The gateway runs from a config file,
// reloaded through the admin API as docs/policy.md says.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { loadConfig } from '../../src/config/index.js';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { createLogger } from '../../src/observability/index.js';
import { startGateway, type Gateway } from '../../src/server/index.js';

process.env.HC_RELOAD_UPSTREAM_KEY = 'sk-reload-upstream';

let dir: string;
let configPath: string;
let upstream: DemoUpstream;
let gateway: Gateway;
const keys: Record<string, string> = {};

const configYaml = (extraRules: string, approvalRules: string) => `gateway: { listen: { host: 127.0.0.1, port: 0 } }
admin: { listen: { host: 127.0.0.1, port: 0 }, groups: [admins] }
log: { level: silent }
store: { sqlite: { path: ${join(dir, 'g.db')} } }
connections:
  - name: demo
    type: openai
    target: ${upstream.url}
    credential: { secret: "\${HC_RELOAD_UPSTREAM_KEY}" }
    access: { groups: [ml] }
policy:
  rules:
    - name: prod-prompts
      effect: require_approval
      when:
        - keywords: [production database]
${extraRules}approvals:
  defaults: { reviewers: [security-oncall], holdFor: 20s }
  pollInterval: 100ms
  rules:
${approvalRules}`;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-approvals-reload-'));
  configPath = join(dir, 'gatehouse.yaml');
  upstream = await startDemoUpstream({ apiKey: 'sk-reload-upstream' });
  writeFileSync(configPath, configYaml('', '    prod-prompts: { reviewers: [dba] }\n'));
  gateway = await startGateway(loadConfig(configPath), { configFile: configPath, logger: createLogger('silent') });
  for (const [name, groups] of [['alice', ['ml']], ['sec', ['security-oncall']], ['dba', ['dba']], ['lead', ['dba-leads']], ['root', ['admins']]] as const) {
    keys[name] = (await gateway.apiKeys.create({ name, kind: 'human', groups: [...groups], expiresAt: null })).token;
  }
});

after(async () => {
  await gateway?.close();
  await upstream?.close();
  rmSync(dir, { recursive: true, force: true });
});

const admin = async (key: string, path: string, init: RequestInit = {}) => {
  const res = await fetch(`${gateway.adminUrl}${path}`, { ...init, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' } });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
};

const ask = async (content: string, rule: string) => {
  const client = new OpenAI({ baseURL: `${gateway.dataPlaneUrl}/c/demo`, apiKey: keys.alice!, maxRetries: 0 });
  const started = Date.now();
  const error = await client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content }] }).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(error instanceof OpenAI.PermissionDeniedError, `held, then refused: ${String(error)}`);
  const body = error.error as { code?: string; review_id?: string; rule?: string };
  assert.equal(body.code, 'approval_required');
  assert.equal(body.rule, rule, 'the envelope names the rule that asked for approval');
  return { id: body.review_id!, heldMs: Date.now() - started };
};

test('a rule added by a reload gets its approvals.rules options; changed reviewers apply to new reviews', { timeout: 60_000 }, async () => {
  writeFileSync(
    configPath,
    configYaml(
      `    - name: finance-prompts
      effect: require_approval
      when:
        - keywords: [quarterly numbers]
`,
      '    prod-prompts: { reviewers: [dba-leads], holdFor: 1s }\n    finance-prompts: { reviewers: [dba], holdFor: 1s }\n',
    ),
  );
  const reloaded = await admin(keys.root!, '/api/policy/reload', { method: 'POST' });
  assert.equal(reloaded.status, 200, JSON.stringify(reloaded.body));
  assert.equal(reloaded.body.changed, true);

  // The new rule: its own reviewers and its own hold (1 s, not the default 20 s).
  const finance = await ask('show me the quarterly numbers', 'finance-prompts');
  assert.ok(finance.heldMs < 10_000, `held ${finance.heldMs} ms: the rule's holdFor (1s) applies`);
  const review = (await admin(keys.dba!, `/api/reviews/${finance.id}`)).body;
  assert.deepEqual(review.reviewerGroups, ['dba']);
  const bySec = await admin(keys.sec!, `/api/reviews/${finance.id}/approve`, { method: 'POST', body: '{}' });
  assert.equal(bySec.status, 403, 'the default reviewers do not review this rule');
  assert.equal((await admin(keys.dba!, `/api/reviews/${finance.id}/approve`, { method: 'POST', body: '{}' })).status, 200);

  // The changed rule: dba no longer reviews prod-prompts, dba-leads does.
  const prod = await ask('read the production database', 'prod-prompts');
  const prodReview = (await admin(keys.lead!, `/api/reviews/${prod.id}`)).body;
  assert.deepEqual(prodReview.reviewerGroups, ['dba-leads']);
  assert.equal((await admin(keys.dba!, `/api/reviews/${prod.id}/approve`, { method: 'POST', body: '{}' })).status, 403);
});
