import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { GatehouseError } from '../../src/errors/index.js';
import type { IdentityKind } from '../../src/exchange/index.js';
import { ApiKeyInputError, ApiKeyService, parseApiKey } from '../../src/identity/index.js';
import { openStore, type Store } from '../../src/store/index.js';
import { testDialects, type TestDatabase } from '../helpers/databases.js';

const tokenPattern = /^ghk_[0-9a-z]{16}_[A-Za-z0-9_-]{43}$/;
const start = 1795395550123;

async function rejectsWith(promise: Promise<unknown>, code: string, message?: string): Promise<GatehouseError> {
  let caught: unknown;
  await assert.rejects(promise, (error) => {
    caught = error;
    return true;
  });
  assert.ok(caught instanceof GatehouseError, `${message ?? ''} expected a GatehouseError, got ${String(caught)}`);
  assert.equal(caught.code, code, message);
  assert.equal(caught.status, 401, message);
  return caught;
}

/** Polls until `check` passes (fire-and-forget writes), failing after `timeoutMs`. */
async function eventually(check: () => Promise<void>, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(10);
    }
  }
}

function secretOf(token: string): string {
  const parsed = parseApiKey(token);
  assert.ok(parsed, `${token} parses`);
  return parsed.secret;
}

for (const dialect of await testDialects()) {
  describe(`API keys on ${dialect.name}`, { skip: dialect.skip }, () => {
    let database: TestDatabase;
    let store: Store;
    let clock: number;
    const now = () => clock;
    let keys: ApiKeyService;

    beforeEach(async () => {
      database = await dialect.create();
      store = await openStore(database.config);
      clock = start;
      keys = new ApiKeyService(store.db, { now });
    });
    afterEach(async () => {
      await store.close();
      await database.cleanup();
    });

    const create = (name: string, extra: { kind?: IdentityKind; groups?: string[]; expiresAt?: number | null } = {}) =>
      keys.create({ name, kind: extra.kind ?? 'service', groups: extra.groups ?? [], expiresAt: extra.expiresAt ?? null });

    test('create returns a ghk_ token once and stores only the SHA-256 of its secret', async () => {
      const { token, key } = await create('ci-bot', { kind: 'agent', groups: ['ml', 'ops'], expiresAt: start + 86_400_000 });
      assert.match(token, tokenPattern);
      const secret = secretOf(token);
      assert.equal(token, `ghk_${key.id}_${secret}`);
      assert.deepEqual(key, {
        id: key.id,
        name: 'ci-bot',
        kind: 'agent',
        groups: ['ml', 'ops'],
        createdAt: start,
        expiresAt: start + 86_400_000,
        revokedAt: null,
        lastUsedAt: null,
      });

      const rows = await store.db.selectFrom('api_keys').selectAll().execute();
      assert.equal(rows.length, 1);
      const row = rows[0]!;
      assert.equal(row.secret_hash, createHash('sha256').update(secret).digest('hex'));
      const stored = JSON.stringify(row);
      assert.ok(!stored.includes(secret), 'the raw secret is nowhere in the row');
      assert.ok(!stored.includes(token), 'the token is nowhere in the row');
      assert.deepEqual({ ...row, secret_hash: '<hash>' }, {
        id: key.id,
        name: 'ci-bot',
        kind: 'agent',
        groups: '["ml","ops"]',
        secret_hash: '<hash>',
        created_at: start,
        expires_at: start + 86_400_000,
        revoked_at: null,
        last_used_at: null,
        generation: 1,
      });

      const other = await create('other-bot');
      assert.notEqual(other.key.id, key.id);
      assert.notEqual(secretOf(other.token), secret);
    });

    test('verify returns the identity of the key', async () => {
      const { token, key } = await create('ci-bot', { kind: 'service', groups: ['ml', 'ops'] });
      assert.deepEqual(await keys.verify(token), { subject: 'key:ci-bot', kind: 'service', groups: ['ml', 'ops'], method: 'api_key', credentialId: key.id, issuedAt: start });
      // and again through a fresh service (no cache), as another process would
      const fresh = new ApiKeyService(store.db, { now });
      assert.deepEqual(await fresh.verify(token), { subject: 'key:ci-bot', kind: 'service', groups: ['ml', 'ops'], method: 'api_key', credentialId: key.id, issuedAt: start });
    });

    test('a wrong secret for a real key id is invalid_credential, and the error does not echo it', async () => {
      const { token, key } = await create('ci-bot');
      await keys.verify(token); // warm the cache: the cached path must check the secret too
      const wrongSecret = 'A'.repeat(43);
      const error = await rejectsWith(keys.verify(`ghk_${key.id}_${wrongSecret}`), 'invalid_credential');
      assert.ok(!`${error.message} ${error.detail}`.includes(wrongSecret));
      assert.ok(!`${error.message} ${error.detail}`.includes(secretOf(token)));
      await rejectsWith(new ApiKeyService(store.db, { now }).verify(`ghk_${key.id}_${wrongSecret}`), 'invalid_credential', 'uncached');
    });

    test('an unknown key id is invalid_credential', async () => {
      const { token } = await create('ci-bot');
      await rejectsWith(keys.verify(`ghk_${'0'.repeat(16)}_${secretOf(token)}`), 'invalid_credential');
      await rejectsWith(keys.verify(`ghk_zzzzzzzzzzzzzzzz_${'b'.repeat(43)}`), 'invalid_credential');
    });

    test('malformed tokens are invalid_credential', async () => {
      const { token, key } = await create('ci-bot');
      const secret = secretOf(token);
      const malformed = [
        '',
        'ghk_',
        'sk-abc123',
        `Bearer ${token}`,
        ` ${token}`,
        `${token} `,
        `${token}x`,
        token.slice(0, -1),
        `ghk_${key.id.toUpperCase()}_${secret}`,
        `ghk-${key.id}-${secret}`,
        `ghk_${key.id}_${secret.slice(0, 42)}=`,
        `${token}\n`,
      ];
      for (const candidate of malformed) await rejectsWith(keys.verify(candidate), 'invalid_credential', JSON.stringify(candidate));
    });

    test('an expired key is credential_expired from its expiry instant, even when cached', async () => {
      const { token } = await create('ci-bot', { expiresAt: start + 60_000 });
      clock = start + 59_999;
      assert.equal((await keys.verify(token)).subject, 'key:ci-bot');
      clock = start + 60_000;
      await rejectsWith(keys.verify(token), 'credential_expired');
      clock = start + 3_600_000;
      await rejectsWith(new ApiKeyService(store.db, { now }).verify(token), 'credential_expired', 'uncached');
      // a wrong secret still says only "invalid"
      await rejectsWith(keys.verify(`ghk_${parseApiKey(token)!.id}_${'A'.repeat(43)}`), 'invalid_credential');
    });

    test('revoking (by id or by name) makes verify answer credential_revoked at once in the same service', async () => {
      const a = await create('bot-a');
      const b = await create('bot-b');
      await keys.verify(a.token);
      await keys.verify(b.token);

      clock += 1000;
      const revoked = await keys.revoke(a.key.id);
      // (lastUsedAt may or may not have landed yet: verify writes it off the request path)
      assert.deepEqual({ ...revoked, lastUsedAt: null }, { ...a.key, revokedAt: start + 1000 });
      await rejectsWith(keys.verify(a.token), 'credential_revoked');

      const byName = await keys.revoke('bot-b');
      assert.equal(byName?.id, b.key.id);
      await rejectsWith(keys.verify(b.token), 'credential_revoked');

      assert.equal(await keys.revoke(a.key.id), undefined, 'revoking twice finds nothing live');
      assert.equal(await keys.revoke('no-such-key'), undefined);
      const row = await store.db.selectFrom('api_keys').select('revoked_at').where('id', '=', a.key.id).executeTakeFirstOrThrow();
      assert.equal(row.revoked_at, start + 1000, 'the second revoke did not move revoked_at');
      // a wrong secret for a revoked key does not reveal that it was revoked
      await rejectsWith(keys.verify(`ghk_${a.key.id}_${'A'.repeat(43)}`), 'invalid_credential');
    });

    test('revokeAll by name revokes every unrevoked key of the name, the live one too after an overlap ended; by id only that key', async () => {
      const old = await create('ci-bot');
      const rotated = await keys.rotate('ci-bot', { overlapMs: 1000 });
      clock += 2000; // the overlap is over: the old key is expired, not revoked
      await rejectsWith(keys.verify(old.token), 'credential_expired');
      const revoked = await keys.revokeAll('ci-bot');
      assert.deepEqual(revoked.map((k) => k.id).sort(), [old.key.id, rotated.key.id].sort());
      await rejectsWith(keys.verify(rotated.token), 'credential_revoked');
      assert.deepEqual(await keys.revokeAll('ci-bot'), [], 'nothing left to revoke');

      const other = await create('other');
      const kept = await create('kept');
      assert.deepEqual((await keys.revokeAll(other.key.id)).map((k) => k.id), [other.key.id]);
      assert.equal((await keys.verify(kept.token)).credentialId, kept.key.id);
    });

    test('a name whose only key has expired is free for a new key (an expired key is not live)', async () => {
      const old = await create('short', { expiresAt: start + 1000 });
      await assert.rejects(create('short'), ApiKeyInputError, 'live: refused');
      clock = start + 1000;
      await rejectsWith(keys.verify(old.token), 'credential_expired');
      const fresh = await create('short');
      assert.equal((await keys.verify(fresh.token)).credentialId, fresh.key.id);
      await rejectsWith(keys.verify(old.token), 'credential_expired');
    });

    test('a revocation by another service instance (another process) takes effect once the cache TTL passes', async () => {
      const gateway = new ApiKeyService(store.db, { now, cacheTtlMs: 1000 });
      const cli = new ApiKeyService(store.db, { now, cacheTtlMs: 1000 });
      const { token, key } = await cli.create({ name: 'ci-bot', kind: 'service', groups: [], expiresAt: null });
      await gateway.verify(token); // cached at `start`
      assert.equal((await cli.revoke('ci-bot'))?.id, key.id);

      // The documented staleness window: the gateway may still accept the key until its
      // cached row is older than cacheTtlMs.
      clock = start + 1000;
      assert.equal((await gateway.verify(token)).credentialId, key.id);
      clock = start + 1001;
      await rejectsWith(gateway.verify(token), 'credential_revoked');
    });

    test('the same, in real time, with a short cacheTtlMs', async () => {
      const gateway = new ApiKeyService(store.db, { cacheTtlMs: 20 });
      const cli = new ApiKeyService(store.db, { cacheTtlMs: 20 });
      const { token } = await cli.create({ name: 'ci-bot', kind: 'service', groups: [], expiresAt: null });
      await gateway.verify(token);
      await cli.revoke('ci-bot');
      await sleep(40);
      await rejectsWith(gateway.verify(token), 'credential_revoked');
    });

    test('a second live key with the same name is refused; after revocation the name is free again', async () => {
      const first = await create('ci-bot');
      await assert.rejects(create('ci-bot', { kind: 'agent' }), (error) => error instanceof ApiKeyInputError && error.message.includes(first.key.id));
      await keys.revoke('ci-bot');
      const second = await create('ci-bot');
      assert.notEqual(second.key.id, first.key.id);
      assert.equal((await keys.verify(second.token)).credentialId, second.key.id);
      await rejectsWith(keys.verify(first.token), 'credential_revoked');
    });

    test(
      'two concurrent creates with the same name yield one live key',
      async () => {
        const results = await Promise.allSettled([create('ci-bot'), create('ci-bot')]);
        assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
        const live = await store.db.selectFrom('api_keys').select('id').where('name', '=', 'ci-bot').where('revoked_at', 'is', null).execute();
        assert.equal(live.length, 1);
      },
    );

    test('two concurrent creates for a name whose keys were all revoked still yield one live key', async () => {
      await create('ci-bot');
      await keys.revoke('ci-bot');
      const results = await Promise.allSettled([create('ci-bot'), create('ci-bot'), create('ci-bot')]);
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      for (const r of results) if (r.status === 'rejected') assert.ok(r.reason instanceof ApiKeyInputError, String(r.reason));
      const live = await store.db.selectFrom('api_keys').select('id').where('name', '=', 'ci-bot').where('revoked_at', 'is', null).execute();
      assert.equal(live.length, 1);
    });

    test('rotate keeps the lifetime the live key was made with, unless told an expiry (null: never)', async () => {
      const day = 86_400_000;
      await create('ci-bot', { expiresAt: start + 30 * day - 3 });
      clock = start + 10 * day;
      const kept = await keys.rotate('ci-bot', { overlapMs: 0 });
      assert.equal(kept.key.expiresAt, clock + 30 * day, '30 days from the rotation, to the second');
      clock += 1000;
      assert.equal((await keys.rotate('ci-bot', { overlapMs: 0, expiresAt: null })).key.expiresAt, null);
      clock += 1000;
      assert.equal((await keys.rotate('ci-bot', { overlapMs: 0 })).key.expiresAt, null, 'a key that never expires is followed by one that never expires');
    });

    test('rotate with overlap: both keys work during the overlap, the old one fails after it', async () => {
      const old = await create('ci-bot', { kind: 'agent', groups: ['ml'] });
      await keys.verify(old.token);
      const rotated = await keys.rotate('ci-bot', { overlapMs: 24 * 3_600_000 });
      assert.equal(rotated.previous.id, old.key.id);
      assert.equal(rotated.previous.expiresAt, start + 24 * 3_600_000);
      assert.deepEqual({ kind: rotated.key.kind, groups: rotated.key.groups, expiresAt: rotated.key.expiresAt }, { kind: 'agent', groups: ['ml'], expiresAt: null });
      assert.equal((await keys.verify(old.token)).credentialId, old.key.id, 'old key works during the overlap');
      assert.equal((await keys.verify(rotated.token)).credentialId, rotated.key.id);
      clock = start + 24 * 3_600_000;
      await rejectsWith(keys.verify(old.token), 'credential_expired');
      assert.equal((await keys.verify(rotated.token)).subject, 'key:ci-bot');
      // the rotated key can be rotated again once the overlap is over
      await keys.rotate('ci-bot', { overlapMs: 0 });
    });

    test('at most two live keys per name: a second rotation during the overlap, or a create, is refused', async () => {
      await create('ci-bot');
      await keys.rotate('ci-bot', { overlapMs: 3_600_000 });
      await assert.rejects(keys.rotate('ci-bot', { overlapMs: 3_600_000 }), /already rotating/);
      await assert.rejects(create('ci-bot'), ApiKeyInputError);
      await assert.rejects(keys.rotate('nobody', { overlapMs: 0 }), /no live key named "nobody"/);
      const results = await Promise.allSettled([keys.rotate('ci-bot', { overlapMs: 0 }), keys.rotate('ci-bot', { overlapMs: 0 })]);
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 0);
      const live = (await keys.list()).filter((k) => k.name === 'ci-bot' && k.revokedAt === null && (k.expiresAt === null || k.expiresAt > clock));
      assert.equal(live.length, 2);
    });

    test('two concurrent rotations of one live key yield exactly one new key', async () => {
      await create('ci-bot');
      const results = await Promise.allSettled([keys.rotate('ci-bot', { overlapMs: 3_600_000 }), keys.rotate('ci-bot', { overlapMs: 3_600_000 })]);
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      const live = (await keys.list()).filter((k) => k.name === 'ci-bot' && k.revokedAt === null);
      assert.equal(live.length, 2);
    });

    test('invalid names, kinds, groups and expiries are refused before anything is stored', async () => {
      const invalidNames = ['', '-leading-dash', '.leading-dot', 'has space', 'slash/name', 'x'.repeat(129), 'naïve', 'new\nline'];
      for (const name of invalidNames) await assert.rejects(create(name), ApiKeyInputError, `name ${JSON.stringify(name)}`);
      await assert.rejects(create('ci-bot', { kind: 'robot' as IdentityKind }), ApiKeyInputError);
      await assert.rejects(create('ci-bot', { groups: ['ml', ' '] }), ApiKeyInputError);
      await assert.rejects(create('ci-bot', { expiresAt: start - 1 }), ApiKeyInputError, 'past expiry');
      await assert.rejects(create('ci-bot', { expiresAt: start }), ApiKeyInputError, 'expiry now');
      assert.equal((await store.db.selectFrom('api_keys').select('id').execute()).length, 0);

      for (const name of ['a', 'x'.repeat(128), 'svc.ci_bot-1', 'alice@example.com']) await create(name, { expiresAt: start + 1 });
      for (const kind of ['human', 'service', 'agent'] as const) await create(`kind-${kind}`, { kind });
    });

    test('list returns every key newest first and never a hash or secret', async () => {
      const created = [];
      for (const name of ['bot-a', 'bot-b', 'bot-c']) {
        clock += 1000;
        created.push(await create(name, { groups: [name] }));
      }
      await keys.revoke('bot-b');
      const listed = await keys.list();
      assert.deepEqual(
        listed.map((k) => k.name),
        ['bot-c', 'bot-b', 'bot-a'],
      );
      const hashes = (await store.db.selectFrom('api_keys').select('secret_hash').execute()).map((r) => r.secret_hash);
      for (const info of listed) {
        assert.deepEqual(Object.keys(info).sort(), ['createdAt', 'expiresAt', 'groups', 'id', 'kind', 'lastUsedAt', 'name', 'revokedAt']);
      }
      const text = JSON.stringify(listed);
      for (const hash of hashes) assert.ok(!text.includes(hash), 'no hash in the listing');
      for (const { token } of created) assert.ok(!text.includes(secretOf(token)), 'no secret in the listing');
      assert.equal(listed.find((k) => k.name === 'bot-b')?.revokedAt, start + 3000);
    });

    test('verify writes last_used_at, at most once a minute per key', async () => {
      const { token, key } = await create('ci-bot');
      const lastUsed = async () => (await store.db.selectFrom('api_keys').select('last_used_at').where('id', '=', key.id).executeTakeFirstOrThrow()).last_used_at;

      clock = start + 5000;
      await keys.verify(token);
      await eventually(async () => assert.equal(await lastUsed(), start + 5000));

      clock = start + 30_000;
      await keys.verify(token);
      await sleep(50);
      assert.equal(await lastUsed(), start + 5000, 'not rewritten within the minute');

      clock = start + 65_000;
      await keys.verify(token);
      await eventually(async () => assert.equal(await lastUsed(), start + 65_000));
      assert.equal((await keys.list())[0]?.lastUsedAt, start + 65_000);
    });
  });
}
