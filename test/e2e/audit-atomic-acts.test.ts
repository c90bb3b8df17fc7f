// A key created, rotated or revoked, a revocation made or lifted: each act and its audit
// event commit in one transaction, on SQLite and PostgreSQL. The event write is made to
// fail (a trigger refuses those event kinds), and the act must not have happened: before,
// the act committed first, so a crash or a failed event write between the two left a key
// or a revocation the chain does not show.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { openStore, type Store, type StoreConfig } from '../../src/store/index.js';
import { testDialects, type TestDatabase } from '../helpers/databases.js';
import { runCli } from '../helpers/gateway-process.js';
import { startSdkGateway } from '../helpers/sdk-gateway.js';

const actKinds = ['key.created', 'key.rotated', 'key.revoked', 'revocation.created', 'revocation.lifted'];
const kindList = actKinds.map((k) => `'${k}'`).join(', ');

/** From now on, chaining an event of these kinds fails (on every connection). */
async function refuseActEvents(store: Store): Promise<void> {
  if (store.dialect === 'sqlite') {
    await sql.raw(`create trigger refuse_act_events before insert on audit_events when new.kind in (${kindList}) begin select raise(abort, 'event write refused by the test'); end`).execute(store.db);
    return;
  }
  await sql.raw(`create or replace function refuse_act_events() returns trigger language plpgsql as $$ begin raise exception 'event write refused by the test'; end $$`).execute(store.db);
  await sql.raw(`create trigger refuse_act_events before insert on audit_events for each row when (new.kind in (${kindList})) execute function refuse_act_events()`).execute(store.db);
}

async function allowActEvents(store: Store): Promise<void> {
  await sql.raw(store.dialect === 'sqlite' ? 'drop trigger refuse_act_events' : 'drop trigger refuse_act_events on audit_events').execute(store.db);
}

function storeYaml(config: StoreConfig): string {
  // A PostgreSQL URL may hold a password, so the config takes it by reference.
  return 'sqlite' in config ? `store:\n  sqlite: { path: ${config.sqlite.path} }\n` : 'store:\n  postgres: { url: "${ATOMIC_TEST_PG_URL}" }\n';
}

for (const dialect of await testDialects()) {
  describe(`administrative acts commit with their event, through the CLI, on ${dialect.name}`, { skip: dialect.skip }, () => {
    let database: TestDatabase;
    let store: Store;
    let dir: string;
    let configPath: string;
    let env: NodeJS.ProcessEnv;
    const cli = (...args: string[]) => runCli([...args, '--config', configPath], env);

    before(async () => {
      database = await dialect.create();
      store = await openStore(database.config);
      dir = mkdtempSync(join(tmpdir(), 'gatehouse-atomic-'));
      configPath = join(dir, 'gatehouse.yaml');
      writeFileSync(configPath, `${storeYaml(database.config)}connections: []\n`);
      env = { ...process.env, ATOMIC_TEST_PG_URL: 'postgres' in database.config ? database.config.postgres.url : '' };
    });
    after(async () => {
      await store.close();
      await database.cleanup();
      rmSync(dir, { recursive: true, force: true });
    });

    const keys = async () => JSON.parse((await cli('keys', 'list', '--json')).stdout) as Array<{ name: string; revokedAt: number | null; expiresAt: number | null }>;
    const revocations = async () => JSON.parse((await cli('revoke', 'list', '--json')).stdout) as Array<{ id: string; kind: string; value: string }>;
    const eventKinds = async () => (await store.db.selectFrom('audit_events').select('kind').orderBy('seq').execute()).map((e) => e.kind);

    test('a key is not created, rotated or revoked, and no revocation is made or lifted, when its event cannot be chained', async () => {
      assert.equal((await cli('keys', 'create', '--name', 'a-bot', '--groups', 'ml')).code, 0);
      const lifted = await cli('revoke', 'subject', 'key:old-bot', '--json');
      assert.equal(lifted.code, 0, lifted.stderr);
      const liftId = (JSON.parse(lifted.stdout) as { id: string }).id;
      const before = { keys: await keys(), revocations: await revocations(), events: await eventKinds() };
      assert.deepEqual(before.events, ['key.created', 'revocation.created']);

      await refuseActEvents(store);
      try {
        for (const args of [
          ['keys', 'create', '--name', 'b-bot', '--groups', 'ml'],
          ['keys', 'rotate', 'a-bot', '--overlap', '1h'],
          ['keys', 'revoke', 'a-bot'],
          ['revoke', 'key', 'a-bot'],
          ['revoke', 'subject', 'key:a-bot'],
          ['revoke', 'lift', liftId],
        ]) {
          const run = await cli(...args);
          assert.equal(run.code, 1, `${args.join(' ')} must fail: ${run.stdout}${run.stderr}`);
          assert.match(run.stderr, /event write refused by the test/, args.join(' '));
        }
      } finally {
        await allowActEvents(store);
      }

      // Nothing changed: no b-bot, a-bot neither rotated nor revoked, the revocation not lifted.
      assert.deepEqual(await keys(), before.keys);
      assert.deepEqual(await revocations(), before.revocations);
      assert.deepEqual(await eventKinds(), before.events);
      // And the acts work once their events can be chained, each with its event.
      assert.equal((await cli('keys', 'rotate', 'a-bot', '--overlap', '1h')).code, 0);
      assert.equal((await cli('keys', 'revoke', 'a-bot')).code, 0);
      assert.equal((await cli('revoke', 'lift', liftId)).code, 0);
      assert.deepEqual((await eventKinds()).slice(2), ['key.created', 'key.rotated', 'key.revoked', 'key.revoked', 'revocation.lifted']);
      const verify = await cli('audit', 'verify');
      assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    });
  });
}

describe('administrative acts commit with their event, through the admin API', () => {
  test('POST /api/revocations and …/lift change nothing when the event cannot be chained', async () => {
    const sdk = await startSdkGateway();
    try {
      const { gateway } = sdk;
      const { token: adminKey } = await gateway.apiKeys.create({ name: 'responder', kind: 'service', groups: ['admins'], expiresAt: null });
      const client = await sdk.client(['ml']);
      sdk.upstream((_req, _body, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: 'c1', object: 'chat.completion', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }] })));
      const post = (path: string, body: unknown) =>
        fetch(`${gateway.adminUrl}${path}`, { method: 'POST', headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const made = await post('/api/revocations', { kind: 'subject', value: 'key:old-bot' });
      assert.equal(made.status, 200);
      const liftId = ((await made.json()) as { revocation: { id: string } }).revocation.id;

      await refuseActEvents(gateway.store);
      try {
        assert.equal((await post('/api/revocations', { kind: 'key', value: 'caller-1', reason: 'leaked' })).status, 500);
        assert.equal((await post('/api/revocations', { kind: 'user', value: 'key:caller-1' })).status, 500);
        assert.equal((await post(`/api/revocations/${liftId}/lift`, {})).status, 500);
      } finally {
        await allowActEvents(gateway.store);
      }
      // The key still works, on this gateway too, and nothing was revoked or lifted.
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal((await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] })).choices[0]!.message.content, 'ok');
      const keys = await gateway.apiKeys.list();
      assert.equal(keys.find((k) => k.name === 'caller-1')?.revokedAt, null);
      const list = (await gateway.store.db.selectFrom('identity_revocations').select('id').execute()).map((r) => r.id);
      assert.deepEqual(list, [liftId]);
      const kinds = (await gateway.store.db.selectFrom('audit_events').select('kind').where('kind', 'in', actKinds).execute()).map((e) => e.kind);
      assert.deepEqual(kinds, ['revocation.created']);
    } finally {
      await sdk.close();
    }
  });
});
