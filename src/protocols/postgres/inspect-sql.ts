// Statement inspection with the real PostgreSQL parser (libpg-query, WASM). Each
// statement becomes a class (select, insert, update, delete, ddl, drop, truncate,
// grant, copy, …), the tables it names, and its risky shapes. Enforces:
// - SQL the parser rejects is reported as unparseable (the session denies it: fail closed);
// - results are cached in a bounded LRU (2 000 entries, texts of up to 16 KiB) by the
//   query's SHAPE (sql-shape.ts: literal values replaced), so `… WHERE id = 1` and
//   `… = 2` are parsed once: class, tables and risky shapes never depend on a literal's
//   value. A shape is used only when its statements cut at top-level semicolons are the
//   ones the parser found, and no statement's facts read a literal (SET, for
//   client_encoding; set_config's setting name, for search_path); otherwise, and when
//   the lexer is unsure, by exact text. A statement whose only fault is a literal's
//   value (FLOAT(0), a bad E'' escape is refused by the lexer) may then be sent on, with
//   the facts of its shape, for the database to reject.
// - a session whose database shadows built-in names (function-catalog.ts) sees a text
//   that calls one described again, uncached, with those calls as user-defined
//   functions (forSession); a statement defining such a name adds it for the session.
// One statement's facts are read from its tree by describe-statement.ts.

import { parse } from 'libpg-query';
import { describeStatement } from './describe-statement.js';
import { withShadowed } from './function-calls.js';
import { parseOffThread } from './parse-thread.js';
import { readsSettingName } from './search-path.js';
import type { Node } from './parse-tree-names.js';
import { sqlShape } from './sql-shape.js';
import type { SqlInspection, StatementFacts } from './statement-facts.js';

export type { SqlInspection, StatementFacts } from './statement-facts.js';

const maxCached = 2000;
const maxCachedText = 16 * 1024;

/** Facts of a shape: per statement, all but its text (cut from each query on a hit). */
type ShapeEntry = { readonly kind: 'shape'; readonly statements: readonly Omit<StatementFacts, 'text'>[] };
type Entry = ShapeEntry | { readonly kind: 'exact'; readonly inspection: SqlInspection } | { readonly kind: 'no-shape' };

// Keys: '\u0000' + exact text, or '\u0002' + shape key: the first character keeps the
// two kinds apart. 'no-shape' marks a shape whose texts are cached by exact text.
// Least recently used first (Map order). A hit moves its entry to the end only when
// it has drifted into the older half: a statement a session runs again and again costs
// one lookup, not a delete and a re-insert each time, and is still never evicted.
const cache = new Map<string, { entry: Entry; moved: number }>();
const pending = new Map<string, Promise<SqlInspection>>();
/** Insertions and moves so far: an entry is about `moves - moved` places from the end. */
let moves = 0;

function touch(key: string): Entry | undefined {
  const hit = cache.get(key);
  if (hit && moves - hit.moved > maxCached / 2) {
    cache.delete(key);
    hit.moved = ++moves;
    cache.set(key, hit);
  }
  return hit?.entry;
}

function remember(key: string, entry: Entry): void {
  cache.delete(key);
  cache.set(key, { entry, moved: ++moves });
  if (cache.size > maxCached) cache.delete(cache.keys().next().value!);
}

/** The cached inspection of `text`, without parsing; undefined when it must be parsed. */
export function inspectSqlCached(text: string): SqlInspection | undefined {
  if (text.length > maxCachedText) return undefined;
  const shape = sqlShape(text);
  if (shape) {
    const hit = touch(`\u0002${shape.key}`);
    if (hit?.kind === 'shape' && hit.statements.length === shape.statements.length) {
      const texts = shape.statements;
      return { ok: true, statements: texts.length === 1 ? [withText(hit.statements[0]!, texts[0]!)] : hit.statements.map((facts, i) => withText(facts, texts[i]!)) };
    }
  }
  const exact = touch(`\u0000${text}`);
  return exact?.kind === 'exact' ? exact.inspection : undefined;
}

/** A shape's facts with this query's text: one object literal of a fixed layout in the common case (a spread is slower). */
function withText(facts: Omit<StatementFacts, 'text'>, text: string): StatementFacts {
  if (facts.copyOut === undefined && facts.copyServer === undefined && facts.unsupported === undefined && facts.prepares === undefined && facts.executes === undefined && facts.deallocates === undefined && facts.derived === undefined && facts.calls === undefined && facts.defines === undefined && facts.cursor === undefined && facts.fetches === undefined && facts.reads === undefined && facts.inherits === undefined && facts.ctes === undefined && facts.searchPath === undefined && facts.revertsSettings === undefined) {
    return { class: facts.class, tables: facts.tables, risky: facts.risky, text };
  }
  return { ...facts, text };
}

/** Inspects a query (one or several statements); cached by shape or exact text. */
export function inspectSql(text: string): Promise<SqlInspection> {
  const cached = inspectSqlCached(text);
  if (cached) return Promise.resolve(cached);
  // Long texts (bulk INSERTs, generated SQL) are not kept: 2 000 of them could hold gigabytes.
  if (text.length > maxCachedText) return inspectUncached(text);
  const running = pending.get(text);
  if (running) return running;
  const result = parseAndDescribe(text).then(({ inspection, readsLiterals }) => {
    const shape = sqlShape(text);
    const shapeKey = shape ? `\u0002${shape.key}` : undefined;
    if (shape && shapeKey && inspection.ok && !readsLiterals && sameCut(inspection.statements, shape.statements)) {
      remember(shapeKey, { kind: 'shape', statements: inspection.statements.map(({ text: _text, ...facts }) => facts) });
    } else {
      if (shapeKey && cache.get(shapeKey)?.entry.kind !== 'shape') remember(shapeKey, { kind: 'no-shape' });
      remember(`\u0000${text}`, { kind: 'exact', inspection });
    }
    return inspection;
  });
  pending.set(text, result);
  const forget = () => pending.delete(text);
  result.then(forget, forget);
  return result;
}

/** A shape stands for its statements only when the lexer cut them where the parser did. */
function sameCut(statements: readonly StatementFacts[], cut: readonly string[]): boolean {
  return statements.length === cut.length && statements.every((facts, i) => facts.text === cut[i]);
}

// Texts too long to cache are also the ones that take long to parse: off the event loop.
async function inspectUncached(text: string): Promise<SqlInspection> {
  return (await parseOffThread(text)).inspection;
}

// Statement kinds whose facts read a literal's value: SET client_encoding = '…', a
// foreign table's options (column_name 'email', table_name 'salaries'), a trigger's
// arguments (tsvector_update_trigger(tsv, 'pg_catalog.simple', 'email')), and CREATE
// SCHEMA, which may hold a trigger. Cached by shape, `'name'` would vouch for `'email'`.
const literalDependent = new Set(['VariableSetStmt', 'CreateForeignTableStmt', 'AlterTableStmt', 'CreateTrigStmt', 'CreateSchemaStmt']);

/**
 * The inspection as it holds in a session whose database shadows the built-in names in
 * `shadowed` (function-catalog.ts): names its statements define join `shadowed` first
 * (for the rest of the session, and for the statements beside them), and a text that
 * calls one is described again, uncached, with those calls as user-defined functions.
 * `inspection` itself when nothing changes (every statement of the common case).
 */
export function forSession(inspection: SqlInspection, text: string, shadowed: Set<string>): SqlInspection | Promise<SqlInspection> {
  if (!inspection.ok) return inspection;
  const statements = inspection.statements;
  for (let i = 0; i < statements.length; i++) for (const name of statements[i]!.defines ?? []) shadowed.add(name);
  if (shadowed.size === 0) return inspection;
  const calls = statements.some((f) => f.calls !== undefined && f.calls.some((name) => shadowed.has(name)));
  if (!calls) return inspection;
  return parseAndDescribe(text, new Set(shadowed)).then((r) => r.inspection);
}

/** Parses and describes on the calling thread (parse-worker.ts calls it for long texts); `shadowed`: forSession. */
export async function parseAndDescribe(text: string, shadowed?: ReadonlySet<string>): Promise<{ inspection: SqlInspection; readsLiterals: boolean }> {
  if (isBlank(text)) return { inspection: { ok: true, statements: [] }, readsLiterals: false };
  let tree: { stmts?: { stmt: Node; stmt_location?: number; stmt_len?: number }[] };
  try {
    tree = (await parse(text)) as typeof tree;
  } catch (error) {
    const message = (error as Error).message;
    if (message === 'Query cannot be empty') return { inspection: { ok: true, statements: [] }, readsLiterals: false };
    return { inspection: { ok: false, error: message }, readsLiterals: true };
  }
  const bytes = Buffer.from(text, 'utf8');
  let readsLiterals = false;
  const describeAll = () => (tree.stmts ?? []).map((s) => {
    const start = s.stmt_location ?? 0;
    const end = s.stmt_len === undefined || s.stmt_len === 0 ? bytes.length : start + s.stmt_len;
    const statementText = bytes.subarray(start, end).toString('utf8').trim();
    if (literalDependent.has(Object.keys(s.stmt)[0]!) || readsSettingName(statementText)) readsLiterals = true;
    return describeStatement(s.stmt, statementText);
  });
  const statements = shadowed ? withShadowed(shadowed, describeAll) : describeAll();
  return { inspection: { ok: true, statements }, readsLiterals };
}

// Only comments, whitespace and semicolons: PostgreSQL answers EmptyQueryResponse.
function isBlank(text: string): boolean {
  return /^(?:\s|;|--[^\n]*(?:\n|$))*$/.test(text);
}
