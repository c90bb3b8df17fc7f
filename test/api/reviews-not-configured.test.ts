// Without an `approvals:` section the /api/reviews routes do not exist; the refusal says
// why (the gateway has no approvals), where a bare "No such route." left a reviewer
// guessing whether the URL or the gateway was wrong. The CLI already said so.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startSdkGateway, type SdkGateway } from '../helpers/sdk-gateway.js';

let sdk: SdkGateway;
let adminKey: string;

before(async () => {
  sdk = await startSdkGateway();
  adminKey = (await sdk.gateway.apiKeys.create({ name: 'admin', kind: 'human', groups: ['admins'], expiresAt: null })).token;
});

after(async () => {
  await sdk?.close();
});

const call = async (method: string, path: string) => {
  const res = await fetch(`${sdk.gateway.adminUrl}${path}`, { method, headers: { authorization: `Bearer ${adminKey}` } });
  return { status: res.status, body: (await res.json()) as { error: { code: string; message: string } } };
};

test('/api/reviews without approvals configured: 404 route_not_found saying approvals are not configured', async () => {
  const expected = { error: { code: 'route_not_found', message: 'Approvals are not configured on this gateway: its config has no "approvals:" section (see docs/approvals.md).' } };
  for (const [method, path] of [['GET', '/api/reviews'], ['GET', '/api/reviews/rv_01abc'], ['POST', '/api/reviews/rv_01abc/approve']] as const) {
    assert.deepEqual(await call(method, path), { status: 404, body: expected }, `${method} ${path}`);
  }
  // Any other unknown route is as before.
  assert.deepEqual(await call('GET', '/api/reviewsx'), { status: 404, body: { error: { code: 'route_not_found', message: 'No such route.' } } });
});
