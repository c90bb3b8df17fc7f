// Step 6 of `gatehouse audit verify`: the full-text search index still finds every
// exchange by its own words. The index is not hashed (it is derived from the rows), so
// an edit to it left every event and row intact while a text search no longer found an
// exchange: deleted from SQLite's FTS5 index, or given other words; a PostgreSQL
// `search` column overwritten once its generation expression was dropped.
//
// It checks:
//   - SQLite: each row is in the index exactly when it is not queued for it (the
//     invariant of migration 0010), and is indexed with as many words per column as its
//     text has (the FTS5 docsize record, recomputed for each page of rows in a temporary
//     FTS5 table of the same tokenizer: the main database is not written); the triggers
//     that queue written rows are as the migrations made them;
//   - PostgreSQL: each row's `search` is the vector its text gives, and the column is
//     still generated from the text.
// What it cannot see on SQLite: words changed inside the index's own b-tree pages
// (`exchanges_fts_data`) with the same count per column; SQLite's own
// `insert into exchanges_fts(exchanges_fts, rank) values ('integrity-check', 1)`
// (which writes, and counts queued rows as missing) covers that.

import { randomBytes } from 'node:crypto';
import { PostgresAdapter, sql, type Kysely } from 'kysely';
import type { Database } from '../store/index.js';

export interface IndexedRow {
  readonly seq: number;
  readonly id: string;
}

export interface SearchIndexProblem {
  readonly exchangeId?: string | undefined;
  readonly message: string;
}

export interface SearchIndexCheck {
  /** Problems of these rows (a page of the exchanges table). */
  page(rows: readonly IndexedRow[]): Promise<SearchIndexProblem[]>;
  /** Problems of the index's definition, and the end of the check (drops what it made). */
  finish(): Promise<SearchIndexProblem[]>;
}

/** The SQL that makes the PostgreSQL column (migration 0016), and the triggers of migrations 0010 and 0013. */
const postgresSearchExpression = `to_tsvector('simple'::regconfig, regexp_replace(((COALESCE(prompt_text, ''::text) || ' '::text) || COALESCE(response_text, ''::text)), '[^[:alnum:]]+'::text, ' '::text, 'g'::text))`;
const sqliteTriggers: Readonly<Record<string, string>> = {
  exchanges_fts_queue: `create trigger exchanges_fts_queue after insert on exchanges begin insert into exchanges_fts_pending(seq) values (new.seq); end`,
  exchanges_fts_requeue: `create trigger exchanges_fts_requeue after update of prompt_text, response_text on exchanges when not exists (select 1 from exchanges_fts_pending where seq = old.seq) begin insert into exchanges_fts(exchanges_fts, rowid, prompt_text, response_text) values ('delete', old.seq, old.prompt_text, old.response_text); insert into exchanges_fts_pending(seq) values (new.seq); end`,
  exchanges_fts_forget: `create trigger exchanges_fts_forget after delete on exchanges begin insert into exchanges_fts(exchanges_fts, rowid, prompt_text, response_text) select 'delete', old.seq, old.prompt_text, old.response_text where not exists (select 1 from exchanges_fts_pending where seq = old.seq); delete from exchanges_fts_pending where seq = old.seq; end`,
};

const normalized = (text: string) => text.replace(/\s+/g, ' ').trim().toLowerCase();

export function searchIndexCheck(db: Kysely<Database>): SearchIndexCheck {
  return db.getExecutor().adapter instanceof PostgresAdapter ? postgresCheck(db) : sqliteCheck(db);
}

function sqliteCheck(db: Kysely<Database>): SearchIndexCheck {
  // Its own name: two verifications may run at once on one connection (they yield between pages).
  const words = `verify_words_${randomBytes(6).toString('hex')}`;
  let created = false;
  return {
    async page(rows) {
      if (rows.length === 0) return [];
      if (!created) {
        await sql.raw(`create virtual table temp.${words} using fts5(prompt_text, response_text)`).execute(db);
        created = true;
      }
      // One statement, one snapshot: the text, its index record and its place in the
      // queue as they are together (the indexer and the journal write meanwhile).
      const state = await sql<{ seq: number; id: string; prompt_text: string | null; response_text: string | null; sz: Uint8Array | null; queued: number }>`
        select e.seq, e.id, e.prompt_text, e.response_text, d.sz, (p.seq is not null) as queued
        from exchanges e left join exchanges_fts_docsize d on d.id = e.seq left join exchanges_fts_pending p on p.seq = e.seq
        where e.seq in (${sql.join(rows.map((r) => r.seq))})`.execute(db);
      await sql.raw(`delete from temp.${words}`).execute(db);
      // One statement per page (at most 500 rows, 1,500 parameters).
      if (state.rows.length > 0) await sql`insert into temp.${sql.raw(words)} (rowid, prompt_text, response_text) values ${sql.join(state.rows.map((row) => sql`(${row.seq}, ${row.prompt_text}, ${row.response_text})`))}`.execute(db);
      const expected = await sql<{ id: number; sz: Uint8Array }>`select id, sz from temp.${sql.raw(`${words}_docsize`)}`.execute(db);
      const expectedSize = new Map(expected.rows.map((r) => [Number(r.id), Buffer.from(r.sz).toString('hex')]));
      const problems: SearchIndexProblem[] = [];
      for (const row of state.rows) {
        const size = row.sz === null ? undefined : Buffer.from(row.sz).toString('hex');
        const queued = Boolean(row.queued);
        if (size === undefined && !queued) problems.push({ exchangeId: row.id, message: `exchange ${row.id} is missing from the search index: a text search does not find it (the index was edited)` });
        else if (size !== undefined && queued) problems.push({ exchangeId: row.id, message: `exchange ${row.id} is both in the search index and queued for it (the index was edited)` });
        else if (size !== undefined && size !== expectedSize.get(Number(row.seq))) problems.push({ exchangeId: row.id, message: `exchange ${row.id} is indexed with other words than its text: a text search finds it by the wrong words (the index was edited)` });
      }
      return problems;
    },
    async finish() {
      if (created) await sql.raw(`drop table temp.${words}`).execute(db).catch(() => undefined);
      const triggers = await sql<{ name: string; sql: string }>`select name, sql from sqlite_master where type = 'trigger' and tbl_name = 'exchanges'`.execute(db);
      const present = new Map(triggers.rows.map((t) => [t.name, normalized(t.sql)]));
      const problems: SearchIndexProblem[] = [];
      for (const [name, definition] of Object.entries(sqliteTriggers)) {
        if (present.get(name) !== normalized(definition)) problems.push({ message: `the search index trigger ${name} is ${present.has(name) ? 'changed' : 'missing'}: exchanges written from now on may not be found by a text search` });
      }
      return problems;
    },
  };
}

function postgresCheck(db: Kysely<Database>): SearchIndexCheck {
  return {
    async page(rows) {
      if (rows.length === 0) return [];
      const differing = await sql<{ id: string }>`select id from exchanges where id in (${sql.join(rows.map((r) => r.id))}) and search is distinct from ${sql.raw(postgresSearchExpression)}`.execute(db);
      return differing.rows.map((r) => ({ exchangeId: r.id, message: `exchange ${r.id} has a search column that does not match its text: a text search finds it by the wrong words, or not at all (the column was edited)` }));
    },
    async finish() {
      const column = await sql<{ is_generated: string; generation_expression: string | null }>`select is_generated, generation_expression from information_schema.columns where table_schema = current_schema() and table_name = 'exchanges' and column_name = 'search'`.execute(db);
      const c = column.rows[0];
      if (c?.is_generated === 'ALWAYS' && normalized(c.generation_expression ?? '') === normalized(postgresSearchExpression)) return [];
      return [{ message: `the search column of exchanges is ${c ? 'no longer generated from the text' : 'missing'}: exchanges written from now on may not be found by a text search` }];
    },
  };
}
