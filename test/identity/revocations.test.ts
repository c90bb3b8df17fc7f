// Revocations against the real store on both dialects: what each kind revokes (and what
// it leaves alone), propagation to another service instance through the generation
// counter, lifting, and the in-flight registry cutting a revoked identity's exchanges.

import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { SignJWT, generateKeyPair } from 'jose';
import { GatehouseError } from '../../src/errors/index.js';
import type { Identity } from '../../src/exchange/index.js';
import { InFlightRegistry, RevocationService, revocationValue } from '../../src/identity/index.js';
import { openStore, type Store } from '../../src/store/index.js';
import { testDialects, type TestDatabase } from '../helpers/databases.js';

const t0 = 1795395550000;
const alice = (extra: Partial<Identity> = {}): Identity => ({ subject: 'oidc:corp:alice', kind: 'human', groups: ['ml'], method: 'oidc', credentialId: 'jti:a1', issuedAt: t0 - 1000, ...extra });

describe('what a revocation names, from what an operator typed', () => {
  const sources = { oidc: ['corp'], saml: 'idp' };
  test('a token is named by its jti; pasted whole, only its jti is kept', async () => {
    const { privateKey } = await generateKeyPair('ES256');
    const withJti = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'ES256' }).setJti('j-1').setExpirationTime('5m').sign(privateKey);
    const withoutJti = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'ES256' }).setExpirationTime('5m').sign(privateKey);
    assert.equal(revocationValue('token', 'j-1'), 'jti:j-1');
    assert.equal(revocationValue('token', 'jti:j-1'), 'jti:j-1');
    assert.equal(revocationValue('token', withJti), 'jti:j-1');
    assert.throws(() => revocationValue('token', withoutJti), /no "jti" claim/);
    assert.throws(() => revocationValue('subject', withJti), /a subject is named by its subject, not by a token/);
    assert.throws(() => revocationValue('token', `ghk_${'a'.repeat(16)}_${'b'.repeat(43)}`), /this is an API key/);
  });
  test('a token pasted with its "Bearer " prefix, cut short, or inside other text is never stored as a jti', async () => {
    const { privateKey } = await generateKeyPair('ES256');
    const token = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'ES256' }).setJti('j-2').setExpirationTime('5m').sign(privateKey);
    assert.equal(revocationValue('token', `Bearer ${token}`), 'jti:j-2');
    assert.equal(revocationValue('token', `bearer  ${token}\n`), 'jti:j-2');
    const [h, p] = token.split('.');
    for (const mangled of [`${h}.${p}.`.slice(0, -5), `${h}.${p}`, `Authorization: Bearer ${token}`, `token=${token}`]) {
      assert.throws(() => revocationValue('token', mangled), /looks like a token but cannot be read|no spaces/, mangled);
    }
    assert.throws(() => revocationValue('token', 'j 2'), /no spaces/);
    assert.equal(revocationValue('token', ' j-3 '), 'jti:j-3');
  });
  test('a subject or user must be a subject of a configured source', () => {
    for (const ok of ['key:ci-bot', 'oidc:corp:alice', 'oidc:corp:a:b', 'saml:idp:alice@example.com']) assert.equal(revocationValue('user', ok, sources), ok);
    for (const bad of ['alice', 'key:', 'oidc:corp', 'oidc::alice', 'saml:idp:', 'alice@example.com']) assert.throws(() => revocationValue('subject', bad, sources), /is not a subject/, bad);
    assert.throws(() => revocationValue('user', 'oidc:Corp:alice', sources), /no OIDC issuer is named "Corp" \(configured: corp\)/);
    assert.throws(() => revocationValue('user', 'saml:corp:alice', sources), /no SAML identity provider is named "corp"/);
    assert.equal(revocationValue('user', 'oidc:other:alice'), 'oidc:other:alice', 'without sources only the form is checked');
  });
});

for (const dialect of await testDialects()) {
  describe(`revocations on ${dialect.name}`, { skip: dialect.skip }, () => {
    let database: TestDatabase;
    let store: Store;
    let clock: number;
    let revocations: RevocationService;

    beforeEach(async () => {
      database = await dialect.create();
      store = await openStore(database.config);
      clock = t0;
      revocations = new RevocationService(store.db, { now: () => clock });
      await revocations.refresh();
    });
    afterEach(async () => {
      revocations.stop();
      await store.close();
      await database.cleanup();
    });

    test('a token revocation refuses that credential id only', async () => {
      const record = await revocations.revoke({ kind: 'token', value: 'jti:a1' });
      // Not a review's `rv_`: a responder tells the two apart by the id.
      assert.match(record.id, /^rvk_[0-9a-f]{16}$/);
      assert.throws(() => revocations.check(alice()), (e: unknown) => e instanceof GatehouseError && e.code === 'credential_revoked' && e.detail === 'token jti:a1 is revoked');
      assert.equal(revocations.reason(alice({ credentialId: 'jti:a2' })), undefined);
    });

    test('a Gatehouse token goes with the identity-provider token or API key it was exchanged for', async () => {
      const exchanged = (from: string) => alice({ method: 'gateway_token', credentialId: 'jti:gh1', exchangedFrom: from });
      assert.equal(revocations.reason(exchanged('jti:idp1')), undefined);
      await revocations.revoke({ kind: 'token', value: 'jti:idp1' });
      assert.equal(revocations.reason(exchanged('jti:idp1')), 'the credential it was exchanged for (jti:idp1) is revoked');
      await revocations.revoke({ kind: 'key', value: 'k_1' });
      assert.match(revocations.reason(exchanged('k_1'))!, /exchanged for \(k_1\)/);
      assert.equal(revocations.reason(exchanged('jti:idp2')), undefined);
    });

    test('a subject revocation refuses credentials issued until then, not later ones', async () => {
      await revocations.revoke({ kind: 'subject', value: 'oidc:corp:alice' });
      assert.match(revocations.reason(alice())!, /every credential of oidc:corp:alice issued before/);
      assert.ok(revocations.reason(alice({ issuedAt: undefined })), 'no iat counts as old');
      assert.equal(revocations.reason(alice({ issuedAt: t0 + 1000 })), undefined);
      assert.equal(revocations.reason(alice({ subject: 'oidc:corp:bob' })), undefined);
    });

    test('a user revocation refuses every credential of the subject until lifted', async () => {
      const record = await revocations.revoke({ kind: 'user', value: 'oidc:corp:alice', reason: 'offboarded', revokedBy: 'cli:test' });
      assert.equal(revocations.reason(alice({ issuedAt: t0 + 86_400_000 })), 'user oidc:corp:alice is disabled');
      assert.deepEqual((await revocations.list()).map((r) => [r.kind, r.value, r.reason, r.revokedBy]), [['user', 'oidc:corp:alice', 'offboarded', 'cli:test']]);
      assert.equal(await revocations.lift(record.id), true);
      assert.equal(revocations.reason(alice()), undefined);
      assert.equal(await revocations.lift(record.id), false);
    });

    test('a key revocation applies to API key identities with that id only', async () => {
      await revocations.revoke({ kind: 'key', value: 'k123' });
      const key: Identity = { subject: 'key:ci', kind: 'service', groups: [], method: 'api_key', credentialId: 'k123' };
      assert.equal(revocations.reason(key), 'key k123 is revoked');
      assert.equal(revocations.reason({ ...key, method: 'oidc' }), undefined);
    });

    test('another instance sees a revocation at its next refresh (the generation moved)', async () => {
      const other = new RevocationService(store.db, { now: () => clock });
      await other.refresh();
      assert.equal(other.reason(alice()), undefined);
      await revocations.revoke({ kind: 'token', value: 'jti:a1' });
      await other.refresh();
      assert.ok(other.reason(alice()));
    });

    test('the in-flight registry cuts the revoked identity only, and an exchange registered after the revocation at once', async () => {
      const inFlight = new InFlightRegistry((identity) => revocations.reason(identity));
      revocations.onChange(() => inFlight.cutRevoked());
      const cut: string[] = [];
      const releaseA = inFlight.register('ex_a', alice(), () => cut.push('ex_a'));
      inFlight.register('ex_b', alice({ subject: 'oidc:corp:bob', credentialId: 'jti:b1' }), () => cut.push('ex_b'));
      await revocations.revoke({ kind: 'subject', value: 'oidc:corp:alice' });
      assert.deepEqual(cut, ['ex_a']);
      assert.equal(inFlight.size, 1);
      releaseA();
      inFlight.register('ex_c', alice(), () => cut.push('ex_c'));
      assert.deepEqual(cut, ['ex_a', 'ex_c']);
      assert.equal(inFlight.size, 1);
    });

    test('invalid revocations are refused before anything is stored', async () => {
      await assert.rejects(revocations.revoke({ kind: 'everything' as 'token', value: 'x' }), RangeError);
      await assert.rejects(revocations.revoke({ kind: 'token', value: ' ' }), RangeError);
      assert.deepEqual(await revocations.list(), []);
    });
  });
}
