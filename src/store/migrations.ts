// Migrations, in order, identical on both dialects. Never edit a released migration:
// add a new one.

import { sql, type Kysely, type Migration } from 'kysely';

export type DialectName = 'sqlite' | 'postgres';

export function buildMigrations(dialect: DialectName): Record<string, Migration> {
  const isPostgres = dialect === 'postgres';
  return {
  '0001_api_keys_and_exchanges': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('api_keys')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('groups', 'text', (c) => c.notNull())
        .addColumn('secret_hash', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint')
        .addColumn('revoked_at', 'bigint')
        .addColumn('last_used_at', 'bigint')
        .execute();

      await db.schema
        .createTable('exchanges')
        .addColumn('seq', isPostgres ? 'bigserial' : 'integer', (c) => (isPostgres ? c.primaryKey() : c.primaryKey().autoIncrement()))
        .addColumn('id', 'text', (c) => c.notNull().unique())
        .addColumn('session_id', 'text', (c) => c.notNull())
        .addColumn('protocol', 'text', (c) => c.notNull())
        .addColumn('connection', 'text', (c) => c.notNull())
        .addColumn('operation', 'text', (c) => c.notNull())
        .addColumn('started_at', 'bigint', (c) => c.notNull())
        .addColumn('ended_at', 'bigint')
        .addColumn('complete', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('subject', 'text')
        .addColumn('identity_kind', 'text')
        .addColumn('auth_method', 'text')
        .addColumn('credential_id', 'text')
        .addColumn('groups', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('client_address', 'text')
        .addColumn('decision', 'text', (c) => c.notNull())
        .addColumn('rules', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('reason', 'text')
        .addColumn('policy_version', 'text')
        .addColumn('status', 'integer')
        .addColumn('error_code', 'text')
        .addColumn('error_detail', 'text')
        .addColumn('model', 'text')
        .addColumn('stream', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('method', 'text')
        .addColumn('path', 'text')
        .addColumn('request_headers', 'text')
        .addColumn('request_body', 'text')
        .addColumn('request_truncated', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('prompt_text', 'text')
        .addColumn('response_headers', 'text')
        .addColumn('response_body', 'text')
        .addColumn('response_truncated', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('response_text', 'text')
        .addColumn('usage', 'text')
        .addColumn('bytes_in', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('bytes_out', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('ttfb_ms', 'integer')
        .addColumn('duration_ms', 'integer')
        .execute();
      await db.schema.createIndex('exchanges_started_at').on('exchanges').column('started_at').execute();
      await db.schema.createIndex('exchanges_subject').on('exchanges').columns(['subject', 'started_at']).execute();
      await db.schema.createIndex('exchanges_connection').on('exchanges').columns(['connection', 'started_at']).execute();
      await db.schema.createIndex('exchanges_session').on('exchanges').column('session_id').execute();
    },
  },
    '0002_api_keys_live_name_unique': {
      // One live key per name, enforced by the store so concurrent creates cannot race.
      async up(db: Kysely<any>) {
        await db.schema.createIndex('api_keys_live_name').on('api_keys').column('name').unique().where(sql.ref('revoked_at'), 'is', null).execute();
      },
    },
    '0003_audit_chain_and_search': {
      // The tamper-evident event chain (audit_events, one global sequence; audit_head is
      // the row every appender locks), signed checkpoints, the columns replay, review
      // and re-execution need, and full-text search over prompts and answers.
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('audit_events')
          .addColumn('seq', 'bigint', (c) => c.primaryKey())
          .addColumn('id', 'text', (c) => c.notNull().unique())
          .addColumn('at', 'bigint', (c) => c.notNull())
          .addColumn('writer', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('actor', 'text')
          .addColumn('target', 'text')
          .addColumn('details', 'text', (c) => c.notNull())
          .addColumn('prev_hash', 'text', (c) => c.notNull())
          .addColumn('hash', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('audit_events_target').on('audit_events').columns(['target', 'seq']).execute();
        await db.schema.createIndex('audit_events_at').on('audit_events').column('at').execute();
        await db.schema
          .createTable('audit_head')
          .addColumn('id', 'integer', (c) => c.primaryKey())
          .addColumn('seq', 'bigint', (c) => c.notNull())
          .addColumn('hash', 'text', (c) => c.notNull())
          .addColumn('checkpoint_seq', 'bigint', (c) => c.notNull())
          .addColumn('checkpoint_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.insertInto('audit_head').values({ id: 1, seq: 0, hash: '0'.repeat(64), checkpoint_seq: 0, checkpoint_at: 0 }).execute();
        await db.schema
          .createTable('audit_checkpoints')
          .addColumn('seq', 'bigint', (c) => c.primaryKey())
          .addColumn('hash', 'text', (c) => c.notNull())
          .addColumn('at', 'bigint', (c) => c.notNull())
          .addColumn('key_id', 'text', (c) => c.notNull())
          .addColumn('signature', 'text', (c) => c.notNull())
          .execute();
        for (const column of ['review_id', 'reexecution_of', 'chunk_timings', 'raw_request', 'raw_response']) {
          await db.schema.alterTable('exchanges').addColumn(column, 'text').execute();
        }
        await db.schema.createIndex('exchanges_review').on('exchanges').column('review_id').execute();
        if (isPostgres) {
          await sql`alter table exchanges add column search tsvector generated always as (to_tsvector('simple', coalesce(prompt_text, '') || ' ' || coalesce(response_text, ''))) stored`.execute(db);
          await sql`create index exchanges_search on exchanges using gin (search)`.execute(db);
        } else {
          // External-content FTS5 index kept in step by triggers (sqlite.org/fts5.html §4.4.3).
          await sql`create virtual table exchanges_fts using fts5(prompt_text, response_text, content='exchanges', content_rowid='seq')`.execute(db);
          await sql`create trigger exchanges_fts_insert after insert on exchanges begin
            insert into exchanges_fts(rowid, prompt_text, response_text) values (new.seq, new.prompt_text, new.response_text); end`.execute(db);
          await sql`create trigger exchanges_fts_delete after delete on exchanges begin
            insert into exchanges_fts(exchanges_fts, rowid, prompt_text, response_text) values ('delete', old.seq, old.prompt_text, old.response_text); end`.execute(db);
          await sql`create trigger exchanges_fts_update after update of prompt_text, response_text on exchanges begin
            insert into exchanges_fts(exchanges_fts, rowid, prompt_text, response_text) values ('delete', old.seq, old.prompt_text, old.response_text);
            insert into exchanges_fts(rowid, prompt_text, response_text) values (new.seq, new.prompt_text, new.response_text); end`.execute(db);
        }
      },
    },
  };
}
