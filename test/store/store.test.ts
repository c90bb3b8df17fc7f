import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { migrate, openStore, type Store, type StoreConfig } from '../../src/store/index.js';
import { buildMigrations } from '../../src/store/migrations.js';
import { testDialects, type TestDatabase } from '../helpers/databases.js';

/** Every migration the code defines; a fresh store must have applied all of them, in order. */
const allMigrationNames = Object.keys(buildMigrations('sqlite')).sort();

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const childScript = fileURLToPath(new URL('./fixtures/open-store-child.ts', import.meta.url));

// [column, nullable], in migration order.
const expectedColumns: Record<string, ReadonlyArray<readonly [string, boolean]>> = {
  api_keys: [
    ['id', false],
    ['name', false],
    ['kind', false],
    ['groups', false],
    ['secret_hash', false],
    ['created_at', false],
    ['expires_at', true],
    ['revoked_at', true],
    ['last_used_at', true],
    ['generation', false],
  ],
  exchanges: [
    ['seq', false],
    ['id', false],
    ['session_id', false],
    ['protocol', false],
    ['connection', false],
    ['operation', false],
    ['started_at', false],
    ['ended_at', true],
    ['complete', false],
    ['subject', true],
    ['identity_kind', true],
    ['auth_method', true],
    ['credential_id', true],
    ['groups', false],
    ['client_address', true],
    ['decision', false],
    ['rules', false],
    ['reason', true],
    ['policy_version', true],
    ['status', true],
    ['error_code', true],
    ['error_detail', true],
    ['model', true],
    ['stream', false],
    ['method', true],
    ['path', true],
    ['request_headers', true],
    ['request_body', true],
    ['request_truncated', false],
    ['prompt_text', true],
    ['response_headers', true],
    ['response_body', true],
    ['response_truncated', false],
    ['response_text', true],
    ['usage', true],
    ['bytes_in', false],
    ['bytes_out', false],
    ['ttfb_ms', true],
    ['duration_ms', true],
    ['review_id', true],
    ['reexecution_of', true],
    ['chunk_timings', true],
    ['raw_request', true],
    ['raw_response', true],
    ['obligations', true],
    ['masking_counts', true],
    ['approval_via', true],
  ],
  reviews: [
    ['id', false], ['state', false], ['subject', false], ['identity_kind', true], ['connection', false], ['operation', false], ['digest', false],
    ['policy_version', false], ['rules', false], ['reviewer_groups', false], ['min_approvals', false], ['justification', true], ['exchange_id', true],
    ['model', true], ['prompt_preview', true], ['created_at', false], ['expires_at', false], ['decided_at', true], ['decided_by', true],
    ['usable_until', true], ['grant_ms', true], ['executed_at', true], ['executed_by_exchange', true], ['api_key', true],
  ],
  review_votes: [['review_id', false], ['voter', false], ['voter_groups', false], ['vote', false], ['comment', true], ['grant_ms', true], ['via', false], ['created_at', false]],
  review_grants: [['review_id', false], ['subject', false], ['connection', false], ['operation', false], ['rules', false], ['created_at', false], ['expires_at', false], ['api_key', true]],
  identity_revocations: [
    ['id', false],
    ['kind', false],
    ['value', false],
    ['created_at', false],
    ['expires_at', true],
    ['reason', true],
    ['revoked_by', true],
  ],
  identity_saml_assertions: [
    ['id', false],
    ['expires_at', false],
  ],
  identity_signing_keys: [
    ['kid', false],
    ['public_jwk', false],
    ['created_at', false],
  ],
  identity_state: [
    ['name', false],
    ['value', false],
  ],
  audit_events: [
    ['seq', false],
    ['id', false],
    ['at', false],
    ['writer', false],
    ['kind', false],
    ['actor', true],
    ['target', true],
    ['details', false],
    ['prev_hash', false],
    ['hash', false],
  ],
  audit_head: [
    ['id', false],
    ['seq', false],
    ['hash', false],
    ['checkpoint_seq', false],
    ['checkpoint_at', false],
  ],
  audit_checkpoints: [
    ['seq', false],
    ['hash', false],
    ['at', false],
    ['key_id', false],
    ['signature', false],
  ],
  record_journal: [
    ['segment', false],
    ['applied', false],
    ['done', false],
  ],
  audit_sink_cursors: [
    ['sink', false],
    ['delivered_seq', false],
    ['updated_at', false],
  ],
};

/** Search-only columns that are not part of the shared schema: PostgreSQL's generated tsvector. */
const derivedColumns = new Set(['exchanges.search']);

const int8Columns = ['api_keys.created_at', 'api_keys.expires_at', 'api_keys.revoked_at', 'api_keys.last_used_at', 'exchanges.seq', 'exchanges.started_at', 'exchanges.ended_at', 'exchanges.bytes_in', 'exchanges.bytes_out'];

const epochMs = 1795395550123;

function keyRow(id: string, name: string, createdAt = epochMs) {
  return { id, name, kind: 'service', groups: '[]', secret_hash: 'a'.repeat(64), created_at: createdAt, expires_at: null, revoked_at: null, last_used_at: null };
}

/** Tables other than the migrator's own bookkeeping. */
async function applicationTables(store: Store) {
  return (await store.db.introspection.getTables()).filter((t) => !t.name.startsWith('gatehouse_migrations'));
}

async function migrationRows(store: Store) {
  return sql<{ name: string; timestamp: string }>`select name, timestamp from gatehouse_migrations order by name`.execute(store.db).then((r) => r.rows);
}

/** Opens the store in `count` child processes released at the same moment. */
async function openInChildProcesses(config: StoreConfig, count: number): Promise<Array<{ ok: boolean; error?: string }>> {
  const children = Array.from({ length: count }, () => {
    const child = spawn(process.execPath, ['--import', 'tsx', childScript, JSON.stringify(config)], { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const ready = new Promise<void>((resolve, reject) => {
      const onData = () => {
        if (stdout.includes('ready\n')) {
          child.stdout.off('data', onData);
          resolve();
        }
      };
      child.stdout.on('data', onData);
      child.once('exit', (code) => reject(new Error(`child exited (${code}) before it was ready: ${stderr}`)));
    });
    const done = new Promise<{ ok: boolean; error?: string }>((resolve, reject) => {
      child.once('exit', (code) => {
        const line = stdout.split('\n').find((l) => l.startsWith('{'));
        if (line) resolve(JSON.parse(line) as { ok: boolean; error?: string });
        else reject(new Error(`child exited (${code}) without a result: ${stderr}`));
      });
    });
    return { child, ready, done };
  });
  await Promise.all(children.map((c) => c.ready));
  for (const { child } of children) child.stdin.end('go\n');
  return Promise.all(children.map((c) => c.done));
}

for (const dialect of await testDialects()) {
  describe(`store on ${dialect.name}`, { skip: dialect.skip }, () => {
    let database: TestDatabase;
    let opened: Store[] = [];
    const open = async (options?: { migrate?: boolean }) => {
      const store = await openStore(database.config, options);
      opened.push(store);
      return store;
    };

    beforeEach(async () => {
      database = await dialect.create();
    });
    afterEach(async () => {
      for (const store of opened) await store.close().catch(() => undefined);
      opened = [];
      await database.cleanup();
    });

    test('opening migrates an empty database to the latest schema', async () => {
      const store = await open();
      assert.equal(store.dialect, dialect.name);
      assert.deepEqual(
        (await migrationRows(store)).map((r) => r.name),
        allMigrationNames,
      );
    });

    if (dialect.name === 'sqlite') {
      test('a new SQLite file (and its -wal, -shm, and a new directory) is readable by its owner only', async () => {
        const { mkdtempSync, statSync, rmSync } = await import('node:fs');
        const { tmpdir } = await import('node:os');
        const { join } = await import('node:path');
        const base = mkdtempSync(join(tmpdir(), 'gatehouse-store-mode-'));
        const path = join(base, 'data', 'gatehouse.db');
        const previous = process.umask(0o022);
        try {
          const store = await openStore({ sqlite: { path } });
          opened.push(store);
          await store.db.selectFrom('exchanges').select('id').limit(1).execute();
          const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);
          assert.deepEqual([mode(join(base, 'data')), mode(path), mode(`${path}-wal`), mode(`${path}-shm`)], ['700', '600', '600', '600']);
        } finally {
          process.umask(previous);
          for (const store of opened) await store.close().catch(() => undefined);
          opened = [];
          rmSync(base, { recursive: true, force: true });
        }
      });
    }

    test('migrate: false leaves an empty database alone', async () => {
      const store = await open({ migrate: false });
      const tables = await store.db.introspection.getTables({ withInternalKyselyTables: true });
      assert.deepEqual(tables, []);
    });

    test('migrations are idempotent: a second open runs nothing and keeps the data', async () => {
      const first = await open();
      const before = await migrationRows(first);
      await first.db.insertInto('api_keys').values(keyRow('k1', 'kept')).execute();
      await first.close();

      const second = await open();
      assert.deepEqual(await migrationRows(second), before, 'the migration table is unchanged');
      await migrate(second.db, second.dialect); // and once more, explicitly
      assert.deepEqual(await migrationRows(second), before);
      const rows = await second.db.selectFrom('api_keys').select(['id', 'name']).execute();
      assert.deepEqual(rows, [{ id: 'k1', name: 'kept' }]);
    });

    test('a store migrated by a newer version is refused with a message saying so, not "corrupted migrations"', async () => {
      const store = await open();
      await store.db.insertInto('gatehouse_migrations' as never).values({ name: '9999_from_a_newer_version', timestamp: new Date().toISOString() } as never).execute();
      await store.close();
      await assert.rejects(open(), (error: Error) => {
        assert.equal(
          error.message,
          'the store was upgraded by a newer version of Gatehouse (it has migration 9999_from_a_newer_version, which this version does not know): run that version or a newer one; a store cannot be downgraded',
        );
        return true;
      });
    });

    test('tables exist with the expected columns and nullability', async () => {
      const store = await open();
      // SQLite's FTS5 index (exchanges_fts and its shadow tables) is search machinery, not schema.
      const tables = (await applicationTables(store)).filter((t) => !t.name.startsWith('exchanges_fts'));
      assert.deepEqual(tables.map((t) => t.name).sort(), ['api_keys', 'audit_checkpoints', 'audit_events', 'audit_head', 'audit_sink_cursors', 'exchanges', 'identity_revocations', 'identity_saml_assertions', 'identity_signing_keys', 'identity_state', 'record_journal', 'review_grants', 'review_votes', 'reviews']);
      // SQLite reports primary keys as nullable: `seq` is the rowid alias (NULL means
      // "assign one"), and a TEXT PRIMARY KEY really does accept NULL there (a SQLite quirk).
      const primaryKeys = new Set(['api_keys.id', 'exchanges.seq', 'reviews.id', 'review_grants.review_id', 'identity_revocations.id', 'identity_saml_assertions.id', 'identity_signing_keys.kid', 'identity_state.name', 'audit_events.seq', 'audit_head.id', 'audit_checkpoints.seq', 'record_journal.segment', 'audit_sink_cursors.sink']);
      const nullable = (table: string, column: string, isNullable: boolean) =>
        dialect.name === 'sqlite' && primaryKeys.has(`${table}.${column}`) ? false : isNullable;
      for (const table of tables) {
        assert.deepEqual(
          table.columns.filter((c) => !derivedColumns.has(`${table.name}.${c.name}`)).map((c) => [c.name, nullable(table.name, c.name, c.isNullable)] as const),
          expectedColumns[table.name],
          `columns of ${table.name}`,
        );
      }
      if (dialect.name === 'postgres') {
        for (const qualified of int8Columns) {
          const [tableName, columnName] = qualified.split('.');
          const column = tables.find((t) => t.name === tableName)!.columns.find((c) => c.name === columnName)!;
          assert.equal(column.dataType, 'int8', `${qualified} is int8`);
        }
      }
    });

    test('exchanges has its indexes and a unique id', async () => {
      const store = await open();
      const indexes =
        dialect.name === 'postgres'
          ? await sql<{ name: string }>`select indexname as name from pg_indexes where tablename = 'exchanges' and schemaname = current_schema()`.execute(store.db)
          : await sql<{ name: string }>`select name from sqlite_master where type = 'index' and tbl_name = 'exchanges'`.execute(store.db);
      const names = indexes.rows.map((r) => r.name);
      for (const expected of ['exchanges_started_at', 'exchanges_subject', 'exchanges_connection', 'exchanges_session']) {
        assert.ok(names.includes(expected), `index ${expected} in ${names.join(', ')}`);
      }
      const row = {
        id: 'ex_dup',
        session_id: 'ses_1',
        protocol: 'http',
        connection: 'openai',
        operation: 'chat.completions',
        started_at: epochMs,
        ended_at: null,
        complete: 0,
        subject: null,
        identity_kind: null,
        auth_method: null,
        credential_id: null,
        groups: '[]',
        client_address: null,
        decision: 'allow',
        rules: '[]',
        reason: null,
        policy_version: null,
        status: null,
        error_code: null,
        error_detail: null,
        model: null,
        stream: 0,
        method: null,
        path: null,
        request_headers: null,
        request_body: null,
        request_truncated: 0,
        prompt_text: null,
        response_headers: null,
        response_body: null,
        response_text: null,
        usage: null,
        ttfb_ms: null,
        duration_ms: null,
      };
      await store.db.insertInto('exchanges').values(row).execute();
      await assert.rejects(store.db.insertInto('exchanges').values(row).execute());
    });

    test('int8 values (epoch ms, counters, seq) read back as JS numbers', async () => {
      const store = await open();
      await store.db
        .insertInto('api_keys')
        .values({ ...keyRow('k1', 'big'), expires_at: Number.MAX_SAFE_INTEGER, revoked_at: epochMs + 1, last_used_at: epochMs + 2 })
        .execute();
      const key = await store.db.selectFrom('api_keys').selectAll().executeTakeFirstOrThrow();
      assert.equal(key.created_at, epochMs);
      assert.equal(key.expires_at, Number.MAX_SAFE_INTEGER);
      assert.equal(key.revoked_at, epochMs + 1);
      assert.equal(key.last_used_at, epochMs + 2);

      await store.db
        .insertInto('exchanges')
        .values({
          id: 'ex_1',
          session_id: 'ses_1',
          protocol: 'http',
          connection: 'openai',
          operation: 'chat.completions',
          started_at: epochMs,
          ended_at: epochMs + 1500,
          complete: 1,
          subject: null,
          identity_kind: null,
          auth_method: null,
          credential_id: null,
          groups: '[]',
          client_address: null,
          decision: 'allow',
          rules: '[]',
          reason: null,
          policy_version: null,
          status: 200,
          error_code: null,
          error_detail: null,
          model: null,
          stream: 0,
          method: null,
          path: null,
          request_headers: null,
          request_body: null,
          request_truncated: 0,
          prompt_text: null,
          response_headers: null,
          response_body: null,
          response_text: null,
          usage: null,
          bytes_in: 5_000_000_000,
          bytes_out: 123,
          ttfb_ms: 12,
          duration_ms: 1500,
        })
        .execute();
      const exchange = await store.db.selectFrom('exchanges').select(['seq', 'started_at', 'ended_at', 'bytes_in', 'bytes_out', 'status']).executeTakeFirstOrThrow();
      assert.deepEqual(exchange, { seq: 1, started_at: epochMs, ended_at: epochMs + 1500, bytes_in: 5_000_000_000, bytes_out: 123, status: 200 });
      for (const [column, value] of Object.entries(exchange)) assert.equal(typeof value, 'number', `exchanges.${column} is a number`);

      const { count } = await store.db.selectFrom('exchanges').select((eb) => eb.fn.countAll().as('count')).executeTakeFirstOrThrow();
      assert.equal(count, 1, 'count(*) (int8 on PostgreSQL) is a number');
    });

    if (dialect.name === 'postgres') {
      test('several instances opening the same fresh database at once all succeed (migration lock)', async () => {
        const stores = await Promise.all(Array.from({ length: 4 }, () => open()));
        for (const store of stores) assert.deepEqual((await migrationRows(store)).map((r) => r.name), allMigrationNames);
        const tables = await applicationTables(stores[3]!);
        assert.deepEqual(tables.map((t) => t.name).sort(), ['api_keys', 'audit_checkpoints', 'audit_events', 'audit_head', 'audit_sink_cursors', 'exchanges', 'identity_revocations', 'identity_saml_assertions', 'identity_signing_keys', 'identity_state', 'record_journal', 'review_grants', 'review_votes', 'reviews']);
      });

      test('the schema option puts the tables in that schema', async () => {
        const setup = await open({ migrate: false });
        await sql`create schema tenant_a`.execute(setup.db);
        const { postgres } = database.config as { postgres: { url: string } };
        const store = await openStore({ postgres: { url: postgres.url, schema: 'tenant_a' } });
        opened.push(store);
        await store.db.insertInto('api_keys').values(keyRow('k1', 'tenant')).execute();
        const located = await sql<{ table_schema: string; table_name: string }>`
          select table_schema, table_name from information_schema.tables
          where table_name in ('api_keys', 'exchanges', 'gatehouse_migrations') order by table_name`.execute(setup.db);
        assert.deepEqual(located.rows, [
          { table_schema: 'tenant_a', table_name: 'api_keys' },
          { table_schema: 'tenant_a', table_name: 'exchanges' },
          { table_schema: 'tenant_a', table_name: 'gatehouse_migrations' },
        ]);
      });

      test(
        'two schema-scoped stores can share one database',
        async () => {
          const setup = await open({ migrate: false });
          await sql`create schema tenant_a`.execute(setup.db);
          await sql`create schema tenant_b`.execute(setup.db);
          const { postgres } = database.config as { postgres: { url: string } };
          opened.push(await openStore({ postgres: { url: postgres.url, schema: 'tenant_a' } }));
          const b = await openStore({ postgres: { url: postgres.url, schema: 'tenant_b' } });
          opened.push(b);
          await b.db.insertInto('api_keys').values(keyRow('k1', 'tenant-b')).execute();
        },
      );
    }

    test(
      'several processes opening the same fresh database at once all succeed',
      { timeout: 60_000 },
      async () => {
        const results = await openInChildProcesses(database.config, 4);
        assert.deepEqual(results, Array.from({ length: 4 }, () => ({ ok: true })));
        const store = await open();
        assert.deepEqual((await migrationRows(store)).map((r) => r.name), allMigrationNames);
      },
    );
  });
}
