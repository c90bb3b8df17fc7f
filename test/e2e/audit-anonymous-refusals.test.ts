// Refusals of callers who were not identified (no credential, an unknown or wrong key)
// are in the hash chain wherever they happen: on the data plane as `exchange.refused`,
// and at POST /auth/token and the admin API as `auth.refused` (before, those two left
// nothing, or only a log line, so a guessing run against an admin key could be erased
// without a trace). Deleting one of them is found by `verify`.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { verifyChain } from '../../src/audit/index.js';
import { startSdkGateway, type SdkGateway } from '../helpers/sdk-gateway.js';

describe('anonymous refusals are chained, and deleting one is detected', () => {
  let sdk: SdkGateway;
  const wrongKey = `ghk_${'a'.repeat(16)}_${'s'.repeat(43)}`;
  before(async () => {
    sdk = await startSdkGateway();
  });
  after(async () => sdk?.close());

  const verify = () => verifyChain(sdk.gateway.store.db, { publicKeyPem: sdk.gateway.audit.signer?.publicKeyPem });
  const events = async () =>
    (await sdk.gateway.store.db.selectFrom('audit_events').select(['seq', 'kind', 'actor', 'target', 'details']).where('kind', 'in', ['auth.refused', 'exchange.refused']).orderBy('seq').execute()).map((e) => ({
      ...e,
      seq: Number(e.seq),
      details: JSON.parse(e.details) as Record<string, unknown>,
    }));

  test('no key or a wrong key at the data plane, POST /auth/token and the admin API: each refusal is an event with no actor', async () => {
    const { dataPlaneUrl, adminUrl } = sdk.gateway;
    const json = { 'content-type': 'application/json' };
    const statuses = [
      (await fetch(`${sdk.baseURL}/chat/completions`, { method: 'POST', headers: { ...json, authorization: `Bearer ${wrongKey}` }, body: '{}' })).status,
      (await fetch(`${dataPlaneUrl}/auth/token`, { method: 'POST', headers: json, body: '{"connections":["openai"]}' })).status,
      (await fetch(`${dataPlaneUrl}/auth/token`, { method: 'POST', headers: { ...json, authorization: `Bearer ${wrongKey}` }, body: '{"connections":["openai"]}' })).status,
      (await fetch(`${adminUrl}/api/sessions`, { headers: { authorization: `Bearer ${wrongKey}` } })).status,
      (await fetch(`${adminUrl}/api/revocations`, { method: 'POST', headers: json, body: '{"kind":"subject","value":"key:x"}' })).status,
    ];
    assert.deepEqual(statuses, [401, 401, 401, 401, 401]);
    await sdk.gateway.settleRecords();
    const chained = await events();
    assert.deepEqual(
      chained.map((e) => [e.kind, e.actor, e.kind === 'auth.refused' ? e.target : 'exchange', e.details['listener'] ?? null, e.details['code'] ?? e.details['errorCode']]),
      [
        ['exchange.refused', null, 'exchange', null, 'invalid_credential'],
        ['auth.refused', null, 'POST /auth/token', 'data', 'unauthenticated'],
        ['auth.refused', null, 'POST /auth/token', 'data', 'invalid_credential'],
        ['auth.refused', null, 'GET /api/sessions', 'admin', 'invalid_credential'],
        ['auth.refused', null, 'POST /api/revocations', 'admin', 'unauthenticated'],
      ],
    );
    // Who was claimed (the key id) and from where; never the secret.
    assert.match(String(chained[2]!.details['reason']), /claimed key id a{16}/);
    assert.equal(chained[2]!.details['client'], '127.0.0.1');
    assert.ok(!JSON.stringify(chained).includes('s'.repeat(43)));
    assert.equal((await verify()).ok, true);
  });

  test('deleting an auth.refused event, or the row of a refused exchange, breaks verification', async () => {
    const db = sdk.gateway.store.db;
    const chained = await events();
    const admin = chained.find((e) => e.target === 'GET /api/sessions')!;
    await db.deleteFrom('audit_events').where('seq', '=', admin.seq).execute();
    const afterEvent = await verify();
    assert.equal(afterEvent.ok, false);
    assert.ok(afterEvent.problems.some((p) => p.seq === admin.seq && /is missing \(deleted\)|events after seq \d+ were deleted/.test(p.message)), JSON.stringify(afterEvent.problems));

    const refused = chained.find((e) => e.kind === 'exchange.refused')!;
    await db.deleteFrom('exchanges').where('id', '=', refused.target!).execute();
    const afterRow = await verify();
    assert.ok(afterRow.problems.some((p) => p.message === `exchange ${refused.target}, recorded by event seq ${refused.seq} (${afterRow.problems.find((q) => q.exchangeId === refused.target)?.eventId}), has been deleted`), JSON.stringify(afterRow.problems));
  });
});
