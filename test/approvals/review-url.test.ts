// The review_url of an approval_required envelope is absolute or absent: with the admin
// API off and no approvals.apiUrl (or consoleUrl) there is no server to point at, and a
// relative `/api/reviews/rv_…` would name none the caller could reach.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { parseConfig } from '../../src/config/index.js';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { createLogger } from '../../src/observability/index.js';
import { startGateway, type Gateway } from '../../src/server/index.js';

describe('review_url in approval_required', () => {
  let dir: string;
  let upstream: DemoUpstream;
  const gateways: Gateway[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-review-url-'));
    upstream = await startDemoUpstream({ apiKey: 'sk-upstream' });
  });
  after(async () => {
    for (const g of gateways) await g.close();
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function refusal(name: string, admin: string, approvals: string): Promise<{ status: number; error: Record<string, unknown> }> {
    const config = parseConfig(
      `gateway: { listen: { host: 127.0.0.1, port: 0 } }
admin: ${admin}
log: { level: silent }
store: { sqlite: { path: ${join(dir, `${name}.db`)} } }
connections:
  - { name: demo, type: openai, target: ${upstream.url}, credential: { secret: "\${UPSTREAM_KEY}" }, access: { groups: [ml] } }
policy:
  rules:
    - { name: needs-review, effect: require_approval, when: [{ keywords: [DROP] }] }
approvals:
  defaults: { reviewers: [reviewers], holdFor: 100ms }
${approvals}`,
      join(dir, `${name}.yaml`),
      { UPSTREAM_KEY: 'sk-upstream' },
    );
    const gateway = await startGateway(config, { logger: createLogger('silent') });
    gateways.push(gateway);
    const { token } = await gateway.apiKeys.create({ name: 'bot', kind: 'agent', groups: ['ml'], expiresAt: null });
    const client = new OpenAI({ baseURL: `${gateway.dataPlaneUrl}/c/demo`, apiKey: token, maxRetries: 0 });
    try {
      await client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'DROP the table' }] });
    } catch (error) {
      assert.ok(error instanceof OpenAI.APIError);
      return { status: error.status!, error: error.error as Record<string, unknown> };
    }
    assert.fail('expected approval_required');
  }

  test('admin API off, no apiUrl: review_url is left out (never a relative path)', async () => {
    const { status, error } = await refusal('off', '{ enabled: false }', '');
    assert.equal(status, 403);
    assert.equal(error['code'], 'approval_required');
    assert.match(String(error['review_id']), /^rv_/);
    assert.equal('review_url' in error, false, JSON.stringify(error));
  });

  test('admin API off, apiUrl set: review_url is built from it', async () => {
    const { error } = await refusal('api-url', '{ enabled: false }', '  apiUrl: https://reviews.example.com/');
    assert.equal(error['review_url'], `https://reviews.example.com/api/reviews/${String(error['review_id'])}`);
  });

  test('admin API on: review_url points at the admin listener', async () => {
    const { error } = await refusal('admin-on', '{ listen: { host: 127.0.0.1, port: 0 } }', '');
    assert.match(String(error['review_url']), new RegExp(`^http://127\\.0\\.0\\.1:\\d+/api/reviews/${String(error['review_id'])}$`));
  });
});
