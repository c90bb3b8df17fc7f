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
    '0004_identity_revocations_signing_keys_key_rotation': {
      // Revocations (token jti, subject, user, key) with a generation counter every
      // gateway polls; the gateways' public token-signing keys, so any process verifies
      // a token another issued; and rotation with overlap: the one-live-key-per-name
      // index of 0002 becomes a unique (name, generation), with "at most two live keys
      // per name, the second made by rotate" enforced by ApiKeyService in a transaction.
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('identity_revocations')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('value', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('expires_at', 'bigint')
          .addColumn('reason', 'text')
          .addColumn('revoked_by', 'text')
          .execute();
        await db.schema.createIndex('identity_revocations_kind_value').on('identity_revocations').columns(['kind', 'value']).execute();
        await db.schema.createTable('identity_state').addColumn('name', 'text', (c) => c.primaryKey()).addColumn('value', 'bigint', (c) => c.notNull()).execute();
        await db.insertInto('identity_state').values({ name: 'revocation_generation', value: 0 }).execute();
        await db.schema
          .createTable('identity_signing_keys')
          .addColumn('kid', 'text', (c) => c.primaryKey())
          .addColumn('public_jwk', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        // SAML assertion ids already used, so a replayed assertion is refused by every gateway.
        await db.schema
          .createTable('identity_saml_assertions')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.alterTable('api_keys').addColumn('generation', 'integer', (c) => c.notNull().defaultTo(1)).execute();
        await db.schema.dropIndex('api_keys_live_name').execute();
        await db.schema.createIndex('api_keys_name_generation').on('api_keys').columns(['name', 'generation']).unique().execute();
      },
    },
    '0005_policy_obligations': {
      // What the decision obliged (masking profiles, response cap, response guards).
      async up(db: Kysely<any>) {
        await db.schema.alterTable('exchanges').addColumn('obligations', 'text').execute();
      },
    },
    '0006_masking_entity_counts': {
      // Entities masked per exchange, by type (JSON object), for reports without the values.
      async up(db: Kysely<any>) {
        await db.schema.alterTable('exchanges').addColumn('masking_counts', 'text').execute();
      },
    },
    '0009_approvals_reviews_votes_grants': {
      // Just-in-time approval (src/approvals/): a review per held request, a vote per
      // reviewer, time-boxed grants; the exchange row names the review that let it pass.
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('reviews')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('subject', 'text', (c) => c.notNull())
          .addColumn('identity_kind', 'text')
          .addColumn('connection', 'text', (c) => c.notNull())
          .addColumn('operation', 'text', (c) => c.notNull())
          .addColumn('digest', 'text', (c) => c.notNull())
          .addColumn('policy_version', 'text', (c) => c.notNull())
          .addColumn('rules', 'text', (c) => c.notNull())
          .addColumn('reviewer_groups', 'text', (c) => c.notNull())
          .addColumn('min_approvals', 'integer', (c) => c.notNull())
          .addColumn('justification', 'text')
          .addColumn('exchange_id', 'text')
          .addColumn('model', 'text')
          .addColumn('prompt_preview', 'text')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .addColumn('decided_at', 'bigint')
          .addColumn('decided_by', 'text')
          .addColumn('usable_until', 'bigint')
          .addColumn('grant_ms', 'bigint')
          .addColumn('executed_at', 'bigint')
          .addColumn('executed_by_exchange', 'text')
          .execute();
        await db.schema.createIndex('reviews_state').on('reviews').columns(['state', 'created_at']).execute();
        await db.schema.createIndex('reviews_binding').on('reviews').columns(['subject', 'connection', 'operation', 'digest']).execute();
        await db.schema
          .createTable('review_votes')
          .addColumn('review_id', 'text', (c) => c.notNull())
          .addColumn('voter', 'text', (c) => c.notNull())
          .addColumn('voter_groups', 'text', (c) => c.notNull())
          .addColumn('vote', 'text', (c) => c.notNull())
          .addColumn('comment', 'text')
          .addColumn('grant_ms', 'bigint')
          .addColumn('via', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('review_votes_pk', ['review_id', 'voter'])
          .execute();
        await db.schema
          .createTable('review_grants')
          .addColumn('review_id', 'text', (c) => c.primaryKey())
          .addColumn('subject', 'text', (c) => c.notNull())
          .addColumn('connection', 'text', (c) => c.notNull())
          .addColumn('operation', 'text', (c) => c.notNull())
          .addColumn('rules', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('review_grants_binding').on('review_grants').columns(['subject', 'connection', 'operation', 'expires_at']).execute();
        // exchanges.review_id comes with migration 0003 (audit search by review).
        await db.schema.alterTable('exchanges').addColumn('approval_via', 'text').execute();
      },
    },
    '0010_search_index_in_batches': {
      // SQLite: the FTS5 index was kept by triggers on every insert and update, so each
      // exchange paid for three index writes inside the commit its client waits for, and
      // every commit wrote an index segment. Now a row is queued (exchanges_fts_pending)
      // and the indexer (src/audit/search-indexer.ts) indexes queued rows in batches;
      // exchange-query.ts searches queued rows directly. Invariant: a row is in the FTS
      // index exactly when it is not queued. PostgreSQL's generated column is unchanged.
      // Both dialects: the review index becomes partial.
      async up(db: Kysely<any>) {
        // Most exchanges have no review: index only those that do (a write fewer per
        // exchange; `review_id = ?` still uses it, as it implies NOT NULL).
        await db.schema.dropIndex('exchanges_review').execute();
        await db.schema.createIndex('exchanges_review').on('exchanges').column('review_id').where(sql.ref('review_id'), 'is not', null).execute();
        if (isPostgres) return;
        await sql`drop trigger exchanges_fts_insert`.execute(db);
        await sql`drop trigger exchanges_fts_update`.execute(db);
        await sql`drop trigger exchanges_fts_delete`.execute(db);
        await sql`create table exchanges_fts_pending (seq integer primary key)`.execute(db);
        await sql`create trigger exchanges_fts_queue after insert on exchanges begin
          insert into exchanges_fts_pending(seq) values (new.seq); end`.execute(db);
        // An indexed row whose text changes leaves the index (with the values it was
        // indexed with, as external-content FTS5 requires) and is queued again.
        await sql`create trigger exchanges_fts_requeue after update of prompt_text, response_text on exchanges
          when not exists (select 1 from exchanges_fts_pending where seq = old.seq) begin
          insert into exchanges_fts(exchanges_fts, rowid, prompt_text, response_text) values ('delete', old.seq, old.prompt_text, old.response_text);
          insert into exchanges_fts_pending(seq) values (new.seq); end`.execute(db);
        await sql`create trigger exchanges_fts_forget after delete on exchanges begin
          insert into exchanges_fts(exchanges_fts, rowid, prompt_text, response_text)
            select 'delete', old.seq, old.prompt_text, old.response_text where not exists (select 1 from exchanges_fts_pending where seq = old.seq);
          delete from exchanges_fts_pending where seq = old.seq; end`.execute(db);
      },
    },
    '0011_record_journal': {
      // SQLite: records are made durable as lines appended to a journal file and applied
      // to the store in batches (src/audit/journal/). How far each journal segment has
      // been applied is kept here, and moved in the same transaction as the rows it
      // applied, so a segment is never applied twice whichever process applies it.
      // Created on PostgreSQL too (migrations are identical), where it stays empty.
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('record_journal')
          .addColumn('segment', 'text', (c) => c.primaryKey())
          .addColumn('applied', 'bigint', (c) => c.notNull())
          .addColumn('done', 'integer', (c) => c.notNull().defaultTo(0))
          .execute();
      },
    },
    '0012_search_index_finished_rows_at_insert': {
      // SQLite: the record journal inserts most exchanges already finished, in
      // transactions of hundreds of rows, so FTS5 writes one index segment per batch,
      // not per exchange (what 0010 avoided). Such a row is indexed by the insert itself
      // instead of being queued and indexed again in a transaction of its own: about a
      // tenth of the journal worker's CPU per exchange. A row inserted unfinished (an
      // answer still streaming) is queued as before; the invariant of 0010 holds.
      async up(db: Kysely<any>) {
        if (isPostgres) return;
        await sql`drop trigger exchanges_fts_queue`.execute(db);
        await sql`create trigger exchanges_fts_queue after insert on exchanges when new.ended_at is null begin
          insert into exchanges_fts_pending(seq) values (new.seq); end`.execute(db);
        await sql`create trigger exchanges_fts_index after insert on exchanges when new.ended_at is not null begin
          insert into exchanges_fts(rowid, prompt_text, response_text) values (new.seq, new.prompt_text, new.response_text); end`.execute(db);
      },
    },
    '0013_search_index_in_background': {
      // SQLite: indexing a row for full-text search cost about a third of applying its
      // record, on the thread that applies records, competing for the CPU with the
      // threads relaying traffic. Every inserted row is queued again (as in 0010), and
      // the gateway indexes queued rows on a thread of its own at background priority
      // (src/audit/search-index-thread.ts). Rows 0012 indexed at insert stay indexed;
      // the invariant of 0010 holds.
      async up(db: Kysely<any>) {
        if (isPostgres) return;
        await sql`drop trigger exchanges_fts_index`.execute(db);
        await sql`drop trigger exchanges_fts_queue`.execute(db);
        await sql`create trigger exchanges_fts_queue after insert on exchanges begin
          insert into exchanges_fts_pending(seq) values (new.seq); end`.execute(db);
      },
    },
    '0014_audit_sink_cursors': {
      // How far each audit sink has taken the event chain (src/audit/sink-delivery.ts):
      // the gateway delivers every event after it, so events chained by a CLI command or
      // while a webhook was down reach the sink too. `sink` is the sink's type and a
      // digest of its path or URL, never the URL itself.
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('audit_sink_cursors')
          .addColumn('sink', 'text', (c) => c.primaryKey())
          .addColumn('delivered_seq', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .execute();
      },
    },
    '0015_audit_events_without_time_index': {
      // No query reads audit events by time (export, verify and prune go by seq, the
      // exchange timeline by target): the index on `at` was one b-tree write per event,
      // every exchange paying for it, for nothing. Both dialects.
      async up(db: Kysely<any>) {
        await db.schema.dropIndex('audit_events_at').execute();
      },
    },
    '0016_postgres_search_words_as_on_sqlite': {
      // PostgreSQL's text-search parser read `alice@example.com`, `x.org/a/b`, `v1.2.3`
      // and `report-2024` as tokens of their own, so a search for `alice` or `report`
      // missed what SQLite's FTS5 (words are runs of letters and digits) found. The
      // search column now sees the text with every other character turned into a space,
      // as exchange-query.ts does to the query. Rewrites the column and its index once.
      // SQLite: nothing to do.
      async up(db: Kysely<any>) {
        if (!isPostgres) return;
        await sql`alter table exchanges drop column search`.execute(db);
        await sql`alter table exchanges add column search tsvector generated always as (to_tsvector('simple', regexp_replace(coalesce(prompt_text, '') || ' ' || coalesce(response_text, ''), '[^[:alnum:]]+', ' ', 'g'))) stored`.execute(db);
        await sql`create index exchanges_search on exchanges using gin (search)`.execute(db);
      },
    },
    '0017_approvals_bound_to_api_key': {
      // An approval (and a grant) binds the API key that asked, not only its subject
      // (src/identity/api-key-of.ts): the key of a rotation, or a key created under the
      // name after a revocation, does not inherit it. Null: no key (a person signed in
      // through an identity provider), and every review and grant from before.
      async up(db: Kysely<any>) {
        await db.schema.alterTable('reviews').addColumn('api_key', 'text').execute();
        await db.schema.alterTable('review_grants').addColumn('api_key', 'text').execute();
      },
    },
  };
}
