// The keys and revocations tables are not hashed, yet they decide who gets in. Whoever
// could write the store undid the revocation of a leaked key (cleared revoked_at and
// deleted its revocation row), gave a key an admin group, or made it never expire, and
// `verify` still passed while the key worked again. Each act is chained when it is made,
// so verify holds the rows to the chain (src/audit/verify-credentials.ts), on both stores.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { openAuditTrail, verifyChain, type AuditTrail } from '../../src/audit/index.js';
import type { AuditConfig } from '../../src/config/audit-schema.js';
import { ApiKeyService, keyCreatedEvent, liftChained, RevocationService, revokeChained, revokeKeysChained } from '../../src/identity/index.js';
import { openStore, type Store } from '../../src/store/index.js';
import { testDialects, type TestDatabase } from '../helpers/databases.js';

function auditConfig(dir: string): AuditConfig {
  return {
    writerId: 'test-writer',
    signingKey: undefined,
    keyFile: join(dir, 'audit-signing-key.pem'),
    previousPublicKeys: [],
    checkpoint: { every: 1000, interval: 3_600_000 },
    progress: { interval: 250, bytes: 65_536 },
    sinks: [],
    alerts: { failedAuthThenSuccess: false, bulkRequests: false },
    raw: { enabled: false, key: undefined, revealGroups: [] },
  };
}

for (const dialect of await testDialects()) {
  describe(`keys and revocations changed outside the gateway, on ${dialect.name}`, { skip: dialect.skip }, () => {
    let database: TestDatabase;
    let store: Store;
    let trail: AuditTrail;
    let dir: string;
    let keys: ApiKeyService;
    let revocations: RevocationService;
    let leakedId: string;
    let aliceId: string;

    beforeEach(async () => {
      dir = mkdtempSync(join(tmpdir(), 'gatehouse-tamper-keys-'));
      database = await dialect.create();
      store = await openStore(database.config);
      trail = openAuditTrail(store.db, auditConfig(dir), { createKey: true, withSinks: false, sqlitePath: store.sqlitePath });
      keys = new ApiKeyService(store.db);
      revocations = new RevocationService(store.db);
      const create = (name: string, groups: string[], expiresAt: number | null) =>
        trail.log.change(async (trx, emit) => {
          const created = await keys.create({ name, kind: 'agent', groups, expiresAt }, trx);
          emit(keyCreatedEvent('cli:test', created.key));
          return created.key.id;
        });
      leakedId = await create('billing-agent', ['billing'], Date.now() + 86_400_000);
      aliceId = await create('alice', ['analysts'], null);
      await revokeKeysChained(trail.log.change, { apiKeys: keys, revocations }, 'billing-agent', 'cli:test', 'leaked');
    });
    afterEach(async () => {
      revocations.stop();
      await trail.close();
      await store.close();
      await database.cleanup();
      rmSync(dir, { recursive: true, force: true });
    });

    const verify = () => verifyChain(store.db, { publicKeyPem: trail.signer!.publicKeyPem });
    const messages = async () => (await verify()).problems.map((p) => p.message.replace(/evt_\w+/g, 'evt_…').replace(/seq \d+/g, 'seq N'));

    test('an untouched store, with a revocation made and one lifted, verifies', async () => {
      const user = await revokeChained(trail.log.change, revocations, { kind: 'user', value: 'oidc:corp:mallory', revokedBy: 'cli:test' });
      const lifted = await revokeChained(trail.log.change, revocations, { kind: 'user', value: 'oidc:corp:bob', revokedBy: 'cli:test' });
      assert.ok(await liftChained(trail.log.change, revocations, lifted.id, 'cli:test'));
      assert.ok(user.id);
      const report = await verify();
      assert.deepEqual(report.problems, []);
      assert.equal(report.ok, true);
    });

    test('security: a leaked key un-revoked in the store (revoked_at cleared, its revocation row deleted) is named', async () => {
      const revocation = (await store.db.selectFrom('identity_revocations').select('id').where('value', '=', leakedId).executeTakeFirstOrThrow()).id;
      await store.db.updateTable('api_keys').set({ revoked_at: null }).where('id', '=', leakedId).execute();
      await store.db.deleteFrom('identity_revocations').where('id', '=', revocation).execute();
      assert.deepEqual(await messages(), [`key ${leakedId}, revoked by event seq N (evt_…), had its revocation undone outside the gateway: api_keys says it is not revoked, and its revocation ${revocation} is gone`]);
      assert.equal((await verify()).ok, false);
    });

    test('security: a key given an admin group, or a life without end, is named', async () => {
      await store.db.updateTable('api_keys').set({ groups: JSON.stringify(['analysts', 'gatehouse-admins']) }).where('id', '=', aliceId).execute();
      await store.db.updateTable('api_keys').set({ expires_at: null }).where('id', '=', leakedId).execute();
      const found = await messages();
      assert.equal(found.length, 2);
      assert.ok(found.some((m) => m.startsWith(`key ${leakedId}, created by event seq N (evt_…), was changed outside the gateway: its expiry (`) && m.endsWith(' → never)')), found.join('\n'));
      assert.ok(found.includes(`key ${aliceId}, created by event seq N (evt_…), was changed outside the gateway: its groups (["analysts"] → ["analysts","gatehouse-admins"])`), found.join('\n'));
    });

    test('security: a revocation deleted without a chained lift, or rewritten to revoke someone else, is named', async () => {
      const mallory = await revokeChained(trail.log.change, revocations, { kind: 'user', value: 'oidc:corp:mallory', revokedBy: 'cli:test' });
      const eve = await revokeChained(trail.log.change, revocations, { kind: 'subject', value: 'oidc:corp:eve', revokedBy: 'cli:test' });
      await store.db.deleteFrom('identity_revocations').where('id', '=', mallory.id).execute();
      await store.db.updateTable('identity_revocations').set({ value: 'oidc:corp:nobody' }).where('id', '=', eve.id).execute();
      assert.deepEqual(await messages(), [
        `revocation ${mallory.id} (user "oidc:corp:mallory"), created by event seq N (evt_…), was deleted outside the gateway: no revocation.lifted was chained for it`,
        `revocation ${eve.id}, created by event seq N (evt_…), was changed outside the gateway: it revoked subject "oidc:corp:eve", its row now subject "oidc:corp:nobody"`,
      ]);
    });
  });
}
