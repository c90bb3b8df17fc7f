// An identified caller refused a change on the admin API (a non-admin trying to revoke,
// reload the policy or create a revocation) is an `admin.refused` audit event: who, what,
// why. An unknown credential's refusal is a failed authentication, chained as
// `auth.refused` (test/e2e/audit-anonymous-refusals.test.ts), not as admin.refused.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startSdkGateway, type SdkGateway } from '../helpers/sdk-gateway.js';

let sdk: SdkGateway;
let mlKey: string;

before(async () => {
  sdk = await startSdkGateway();
  mlKey = (await sdk.gateway.apiKeys.create({ name: 'ml-bot', kind: 'service', groups: ['ml'], expiresAt: null })).token;
});

after(async () => {
  await sdk?.close();
});

const post = (path: string, key: string, body: unknown) =>
  fetch(`${sdk.gateway.adminUrl}${path}`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });

test('a non-admin trying to revoke or reload is on record; an unknown key is a failed authentication, and a read is not chained', async () => {
  assert.equal((await post('/api/revocations', mlKey, { kind: 'subject', value: 'key:admin', reason: 'take over' })).status, 403);
  assert.equal((await post('/api/policy/reload', mlKey, {})).status, 403);
  assert.equal((await post('/api/revocations', 'ghk_notakeyatall0123456789', { kind: 'subject', value: 'key:admin' })).status, 401);
  assert.equal((await fetch(`${sdk.gateway.adminUrl}/api/sessions`, { headers: { authorization: `Bearer ${mlKey}` } })).status, 403);
  const events = await sdk.gateway.store.db.selectFrom('audit_events').select(['kind', 'actor', 'target', 'details']).where('kind', '=', 'admin.refused').orderBy('seq').execute();
  assert.deepEqual(
    events.map((e) => [e.actor, e.target, (JSON.parse(e.details as string) as { code: string; rule?: string }).rule]),
    [
      ['key:ml-bot', 'POST /api/revocations', 'admin-groups'],
      ['key:ml-bot', 'POST /api/policy/reload', 'admin-groups'],
    ],
  );
  const failed = await sdk.gateway.store.db.selectFrom('audit_events').select(['actor', 'target']).where('kind', '=', 'auth.refused').execute();
  assert.deepEqual(failed, [{ actor: null, target: 'POST /api/revocations' }]);
  const details = JSON.parse(events[0]!.details as string) as { code: string; groups: string[] };
  assert.equal(details.code, 'access_denied');
  assert.deepEqual(details.groups, ['ml']);
  // The chain still verifies with them.
  const adminKey = (await sdk.gateway.apiKeys.create({ name: 'admin', kind: 'service', groups: ['admins'], expiresAt: null })).token;
  const verify = await fetch(`${sdk.gateway.adminUrl}/api/audit/verify`, { headers: { authorization: `Bearer ${adminKey}` } });
  assert.equal(verify.status, 200, await verify.clone().text());
  assert.equal(((await verify.json()) as { ok: boolean }).ok, true);
});
