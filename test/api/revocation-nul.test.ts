// A revocation whose value or reason holds U+0000 is refused with 400, on every store:
// PostgreSQL's text cannot hold the character, and on a PostgreSQL store the insert
// failed and the caller got 500 internal_error without a word of why.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startSdkGateway, type SdkGateway } from '../helpers/sdk-gateway.js';

let sdk: SdkGateway;
let adminKey: string;

before(async () => {
  sdk = await startSdkGateway();
  adminKey = (await sdk.gateway.apiKeys.create({ name: 'sec-admin', kind: 'human', groups: ['admins'], expiresAt: null })).token;
});

after(async () => {
  await sdk?.close();
});

const revoke = async (body: string) => {
  const res = await fetch(`${sdk.gateway.adminUrl}/api/revocations`, { method: 'POST', headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' }, body });
  return { status: res.status, body: (await res.json()) as unknown };
};

test('POST /api/revocations with U+0000 in the value or the reason: 400 invalid_request_body saying so', async () => {
  const refused = { status: 400, body: { error: { code: 'invalid_request_body', message: '"value" and "reason" must not contain the character U+0000.' } } };
  assert.deepEqual(await revoke('{"kind":"subject","value":"key:ghost","reason":"left\\u0000"}'), refused);
  assert.deepEqual(await revoke('{"kind":"subject","value":"key:gh\\u0000ost"}'), refused);
  assert.deepEqual((await sdk.gateway.store.db.selectFrom('identity_revocations').selectAll().execute()).length, 0);
  assert.equal((await revoke('{"kind":"subject","value":"key:ghost","reason":"left the team"}')).status, 200);
});
