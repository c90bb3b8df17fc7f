// Statement inspection with the real PostgreSQL parser (libpg-query, WASM). Each
// statement becomes a class (select, insert, update, delete, ddl, drop, truncate,
// grant, copy, …), the tables it names, and its risky shapes. Enforces:
// - SQL the parser rejects is reported as unparseable (the session denies it: fail closed);
// - results are cached in a bounded LRU (2 000 entries, texts of up to 16 KiB) by the
//   query's SHAPE (sql-shape.ts: literal values replaced), so `… WHERE id = 1` and
//   `… = 2` are parsed once: class, tables and risky shapes never depend on a literal's
//   value. A shape is used only when its statements cut at top-level semicolons are the
//   ones the parser found, and no statement's facts read a literal (SET, for
//   client_encoding); otherwise, and when the lexer is unsure, by exact text. A statement
//   whose only fault is a literal's value (FLOAT(0), a bad E'' escape is refused by the
//   lexer) may then be sent on, with the facts of its shape, for the database to reject.
// - a session whose database shadows built-in names (function-catalog.ts) sees a text
//   that calls one described again, uncached, with those calls as user-defined
//   functions (forSession); a statement defining such a name adds it for the session.

import { parse } from 'libpg-query';
import { deriveColumns, type Derivation } from './derive-columns.js';
import { builtinFunctionNames } from './builtin-functions.js';
import { callsBuiltin, functionRisks, withShadowed } from './function-calls.js';
import { parseOffThread } from './parse-thread.js';
import { sqlShape } from './sql-shape.js';

export interface StatementFacts {
  readonly class: string;
  readonly tables: readonly string[];
  /** Kebab-case names of risky shapes, e.g. `delete-without-where`. */
  readonly risky: readonly string[];
  /** This statement's own text, cut from the query. */
  readonly text: string;
  /** COPY … TO STDOUT (data leaves as CopyData, not DataRow). */
  readonly copyOut?: boolean;
  /** Why the gateway cannot let this statement through, whatever policy says. */
  readonly unsupported?: string;
  /** PREPARE name AS …: the name (the facts are those of the statement it prepares). */
  readonly prepares?: string;
  /** The prepared statement it runs (EXECUTE name, also inside EXPLAIN ANALYZE or CREATE TABLE AS). */
  readonly executes?: string;
  /** DEALLOCATE name, or '*' for DEALLOCATE ALL and DISCARD ALL. */
  readonly deallocates?: string;
  /** Result columns (and stored values) derived from other columns, for column masking. */
  readonly derived?: Derivation;
  /** Built-in names it calls unqualified (a function of the same name elsewhere may be the one run). */
  readonly calls?: readonly string[];
  /** Built-in names it gives a function of its own (CREATE FUNCTION lower(int), ALTER FUNCTION … RENAME TO lower). */
  readonly defines?: readonly string[];
  /**
   * The portal it opens or closes by name (DECLARE name, CLOSE name; '*' for CLOSE ALL):
   * SQL cursors and the protocol's portals share one namespace.
   */
  readonly cursor?: string;
  /**
   * The tables whose rows a statement that is not a SELECT reads into its answer or into
   * something the client reads later (RETURNING, COPY TO, INSERT … SELECT, CREATE VIEW,
   * CREATE TABLE AS, ATTACH PARTITION …): it is decided as `sql.select` of them too.
   */
  readonly reads?: readonly string[];
  /** FETCH name: the portal whose rows it answers with (a protocol portal's too). */
  readonly fetches?: string;
}

export type SqlInspection = { readonly ok: true; readonly statements: readonly StatementFacts[] } | { readonly ok: false; readonly error: string };

type Node = Record<string, unknown>;

const statementClasses: Record<string, string> = {
  SelectStmt: 'select',
  InsertStmt: 'insert',
  UpdateStmt: 'update',
  DeleteStmt: 'delete',
  MergeStmt: 'merge',
  DropStmt: 'drop',
  DropRoleStmt: 'drop',
  DropdbStmt: 'drop',
  DropOwnedStmt: 'drop',
  DropTableSpaceStmt: 'drop',
  DropSubscriptionStmt: 'drop',
  TruncateStmt: 'truncate',
  GrantStmt: 'grant',
  GrantRoleStmt: 'grant',
  AlterDefaultPrivilegesStmt: 'grant',
  CreateRoleStmt: 'role',
  AlterRoleStmt: 'role',
  AlterRoleSetStmt: 'role',
  CopyStmt: 'copy',
  TransactionStmt: 'transaction',
  VariableSetStmt: 'set',
  VariableShowStmt: 'show',
  ExplainStmt: 'explain',
  ExecuteStmt: 'execute',
  DeallocateStmt: 'deallocate',
  DoStmt: 'do',
  CallStmt: 'call',
  VacuumStmt: 'maintenance',
  ClusterStmt: 'maintenance',
  ReindexStmt: 'maintenance',
  LockStmt: 'lock',
  ListenStmt: 'listen',
  UnlistenStmt: 'listen',
  NotifyStmt: 'notify',
  DeclareCursorStmt: 'select',
  FetchStmt: 'fetch',
  ClosePortalStmt: 'fetch',
  DiscardStmt: 'set',
  CheckPointStmt: 'maintenance',
  LoadStmt: 'load',
};

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
  if (facts.copyOut === undefined && facts.unsupported === undefined && facts.prepares === undefined && facts.executes === undefined && facts.deallocates === undefined && facts.derived === undefined && facts.calls === undefined && facts.defines === undefined && facts.cursor === undefined && facts.fetches === undefined && facts.reads === undefined) {
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

const modifying = new Set(['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']);

/** The statements a statement runs inside itself: its data-modifying WITH queries, the query of COPY and CREATE TABLE AS, the elements of CREATE SCHEMA. */
function runsInside(kind: string, node: Node): Node[] {
  const inside: Node[] = [];
  // CREATE SCHEMA s CREATE VIEW v AS … CREATE TRIGGER …: each is a statement of its own.
  if (kind === 'CreateSchemaStmt') return (node.schemaElts as Node[] | undefined) ?? [];
  const ctes = ((node.withClause as Node | undefined)?.ctes as Node[] | undefined) ?? [];
  for (const cte of ctes) {
    const query = (cte.CommonTableExpr as Node | undefined)?.ctequery as Node | undefined;
    if (query && modifying.has(Object.keys(query)[0]!)) inside.push(query);
  }
  if ((kind === 'CopyStmt' || kind === 'CreateTableAsStmt') && node.query) inside.push(node.query as Node);
  return inside;
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
    if (literalDependent.has(Object.keys(s.stmt)[0]!)) readsLiterals = true;
    return describeStatement(s.stmt, bytes.subarray(start, end).toString('utf8').trim());
  });
  const statements = shadowed ? withShadowed(shadowed, describeAll) : describeAll();
  return { inspection: { ok: true, statements }, readsLiterals };
}

// Only comments, whitespace and semicolons: PostgreSQL answers EmptyQueryResponse.
function isBlank(text: string): boolean {
  return /^(?:\s|;|--[^\n]*(?:\n|$))*$/.test(text);
}

function describeStatement(stmt: Node, text: string): StatementFacts {
  const [kind, node] = Object.entries(stmt)[0] as [string, Node];
  const tables = new Set<string>();
  const riskySet = new Set<string>();
  const calls = new Set<string>();
  const executes = collectTables(stmt, tables, riskySet, calls);
  const defines = definedName(kind, node);
  const risky: string[] = [];
  let cls = statementClasses[kind] ?? classifyByName(kind);
  let copyOut = false;
  let prepares: string | undefined;
  let deallocates: string | undefined;
  let derived = deriveColumns(kind, node);
  const foreign = foreignTables(kind, node, tables, riskySet);
  // Column statistics hold values of every table's columns (pg_stats.most_common_vals).
  for (const t of tables) if (isColumnStatistics(t)) for (const r of ['column-statistics', 'unknown-tables']) riskySet.add(r);
  const reads = new Set(readTables(kind, node, tables));
  for (const t of foreign) reads.add(t);
  const cursor = kind === 'DeclareCursorStmt' ? String(node.portalname) : kind === 'ClosePortalStmt' ? (typeof node.portalname === 'string' ? node.portalname : '*') : undefined;
  // MOVE answers with a count, FETCH with the portal's rows.
  const fetches = kind === 'FetchStmt' && node.ismove !== true && typeof node.portalname === 'string' ? node.portalname : undefined;

  switch (kind) {
    case 'DeleteStmt':
      if (!node.whereClause) risky.push('delete-without-where');
      break;
    case 'UpdateStmt':
      if (!node.whereClause) risky.push('update-without-where');
      break;
    case 'SelectStmt':
      // SELECT … INTO creates a table.
      if (node.intoClause) cls = 'ddl';
      break;
    case 'DropStmt': {
      for (const object of (node.objects as Node[] | undefined) ?? []) {
        const items = ((object.List as Node | undefined)?.items as Node[] | undefined) ?? [];
        const name = items.map((i) => (i.String as { sval?: string } | undefined)?.sval).filter(Boolean).join('.');
        if (name && ['OBJECT_TABLE', 'OBJECT_VIEW', 'OBJECT_MATVIEW', 'OBJECT_FOREIGN_TABLE'].includes(String(node.removeType))) tables.add(name);
      }
      break;
    }
    case 'CopyStmt':
      if (!node.is_from) copyOut = true;
      if (node.filename !== undefined || node.is_program) risky.push('copy-server-file');
      // A program can read anything (`psql -c 'copy payroll to stdout'`), and so can a
      // file read in (a table's data file): the tables it touches are unknown.
      if (node.is_program || (node.is_from && node.filename !== undefined)) risky.push('unknown-tables');
      break;
    case 'ExplainStmt': {
      // EXPLAIN ANALYZE runs its statement: it takes that statement's class.
      const analyze = ((node.options as Node[] | undefined) ?? []).some((o) => (o.DefElem as { defname?: string } | undefined)?.defname === 'analyze');
      if (analyze && node.query) {
        const inner = describeStatement(node.query as Node, text);
        cls = inner.class;
        for (const r of inner.risky) riskySet.add(r);
        for (const t of inner.reads ?? []) reads.add(t);
        // Its answer is the plan, not rows; what the statement stores is stored all the same.
        derived = inner.derived?.stores ? { stores: inner.derived.stores } : undefined;
      }
      break;
    }
    case 'PrepareStmt':
      // PREPARE x AS <statement>: judged as the statement it prepares.
      if (node.query) {
        const inner = describeStatement(node.query as Node, text);
        cls = inner.class;
        risky.push(...inner.risky);
        derived = inner.derived;
        for (const t of inner.reads ?? []) reads.add(t);
      }
      if (typeof node.name === 'string') prepares = node.name;
      break;
    case 'DeallocateStmt':
      deallocates = node.isall === true ? '*' : typeof node.name === 'string' ? node.name : undefined;
      break;
    case 'DiscardStmt':
      if (node.target === 'DISCARD_ALL') deallocates = '*';
      break;
    case 'DoStmt':
      // Its body is procedural code (EXECUTE of any string): which tables it touches is unknown.
      risky.push('anonymous-code-block', 'unknown-tables');
      break;
    case 'CallStmt':
      // A procedure's body is not in the statement (a built-in procedure is still a call).
      for (const r of ['user-function', 'unknown-tables']) riskySet.add(r);
      break;
    case 'CreateFunctionStmt':
      // The body (AS '…', BEGIN ATOMIC) runs later, under any name that calls it.
      risky.push('routine-body', 'unknown-tables');
      break;
    case 'CreateTrigStmt':
    case 'CreateEventTrigStmt':
      for (const r of functionRisks(stringList(node.funcname))) riskySet.add(r);
      if (callsBuiltin(stringList(node.funcname))) calls.add(stringList(node.funcname)[0]!);
      break;
    default:
      break;
  }
  // A statement that runs others inside it: a data-modifying WITH (`with d as (delete
  // from t returning *) select * from d`: the DELETE runs), or the query of COPY (`copy
  // (delete … returning id) to stdout`) or CREATE TABLE AS. The strictest class of them
  // all names it (that WITH is `delete`, not `select`), and their risky shapes are its own.
  let unsupported: string | undefined;
  for (const inner of runsInside(kind, node)) {
    const facts = describeStatement(inner, text);
    cls = strictestClass([cls, facts.class]);
    for (const r of facts.risky) riskySet.add(r);
    for (const t of facts.reads ?? []) reads.add(t);
    // What it keeps is kept all the same (a view of CREATE SCHEMA renaming email).
    if (facts.derived?.stores) derived = { ...derived, stores: [...(derived?.stores ?? []), ...facts.derived.stores] };
    unsupported ??= facts.unsupported;
  }
  // A SELECT that became another class (SELECT INTO, a data-modifying WITH) still answers or keeps what it reads.
  if (kind === 'SelectStmt' && cls !== 'select') for (const t of tables) reads.add(t);
  switch (kind) {
    case 'VariableSetStmt': {
      // Inspection reads SQL as UTF-8: another client encoding could hide a statement.
      // RESET and SET … TO DEFAULT go back to the login's value, which the gateway set
      // (UTF8, or SQL_ASCII), whatever the database's or the role's default.
      if (String(node.name).toLowerCase() === 'client_encoding' && node.kind !== 'VAR_RESET' && node.kind !== 'VAR_SET_DEFAULT') {
        const value = JSON.stringify(node.args ?? '').toLowerCase();
        if (!/"(utf8|utf-8|unicode|sql_ascii)"/.test(value)) return { class: cls, tables: [], risky, text, unsupported: 'only the UTF8 client encoding is supported' };
      }
      // Inspection parses strings as standard-conforming: with it off, `'a\''; drop …` ends
      // its literal at the backslash for the database only.
      if (String(node.name).toLowerCase() === 'standard_conforming_strings' && node.kind !== 'VAR_RESET' && node.kind !== 'VAR_SET_DEFAULT') {
        const value = JSON.stringify(node.args ?? '').toLowerCase();
        if (!/"(on|true|yes|1|t|y)"|"ival":1\b/.test(value)) return { class: cls, tables: [], risky, text, unsupported: 'standard_conforming_strings must stay on' };
      }
      break;
    }
    default:
      break;
  }
  for (const r of riskySet) if (!risky.includes(r)) risky.push(r);
  return {
    class: cls,
    tables: [...tables],
    risky,
    text,
    ...(copyOut ? { copyOut } : {}),
    ...(unsupported !== undefined ? { unsupported } : {}),
    ...(prepares !== undefined ? { prepares } : {}),
    ...(executes !== undefined ? { executes } : {}),
    ...(deallocates !== undefined ? { deallocates } : {}),
    ...(derived !== undefined ? { derived } : {}),
    ...(calls.size > 0 ? { calls: [...calls] } : {}),
    ...(defines !== undefined ? { defines: [defines] } : {}),
    ...(cursor !== undefined ? { cursor } : {}),
    ...(fetches !== undefined ? { fetches } : {}),
    // Code whose tables are unknown (a function called, a DO block, a foreign schema
    // imported whole) may read any; a function's body, created, runs only when called.
    ...((reads.size > 0 || (risky.includes('unknown-tables') && kind !== 'CreateFunctionStmt')) && cls !== 'select' ? { reads: [...reads] } : {}),
  };
}

// Statements that keep a query's rows, or make a table's rows another's (an inheritance
// parent's, a partitioned table's), for later reads under a name the rules may not list.
const keepsRows = new Set(['CreateTableAsStmt', 'ViewStmt', 'RuleStmt']);
const joinsRows = new Set(['AT_AddInherit', 'AT_AttachPartition']);

/**
 * The remote tables a foreign table is made to read (postgres_fdw's `schema_name` and
 * `table_name` options; `loop` may be this very database), added to `tables`: its rows
 * are theirs. IMPORT FOREIGN SCHEMA without LIMIT TO imports tables nobody named.
 */
function foreignTables(kind: string, node: Node, tables: Set<string>, risky: Set<string>): string[] {
  const found: string[] = [];
  const add = (name: string | undefined) => {
    if (name === undefined) return;
    tables.add(name);
    found.push(name);
  };
  if (kind === 'CreateForeignTableStmt') {
    const base = node.base as Node | undefined;
    add(remoteTable(node.options, (base?.relation as Node | undefined)?.relname));
  } else if (kind === 'AlterTableStmt' && node.objtype === 'OBJECT_FOREIGN_TABLE') {
    for (const c of (node.cmds as Node[] | undefined) ?? []) {
      const cmd = c.AlterTableCmd as Node | undefined;
      if (cmd?.subtype === 'AT_GenericOptions') add(remoteTable(((cmd.def as Node | undefined)?.List as Node | undefined)?.items, (node.relation as Node | undefined)?.relname));
    }
  } else if (kind === 'ImportForeignSchemaStmt') {
    const schema = String(node.remote_schema);
    if (node.list_type === 'FDW_IMPORT_SCHEMA_LIMIT_TO') for (const t of (node.table_list as Node[] | undefined) ?? []) add(`${schema}.${String((t.RangeVar as Node | undefined)?.relname)}`);
    else for (const r of ['foreign-schema', 'unknown-tables']) risky.add(r);
    for (const t of tables) found.push(t);
  }
  return found;
}

/** The catalog's column statistics: samples of every analysed column's values (ANALYZE). */
const columnStatistics = new Set(['pg_stats', 'pg_statistic', 'pg_stats_ext', 'pg_stats_ext_exprs', 'pg_statistic_ext_data']);

export function isColumnStatistics(table: string): boolean {
  return columnStatistics.has(table.startsWith('pg_catalog.') ? table.slice('pg_catalog.'.length) : table);
}

/** `schema.table` (or `table`) of postgres_fdw's options; undefined when they name neither (the local name is used). */
function remoteTable(options: unknown, local: unknown): string | undefined {
  let schema: string | undefined;
  let table: string | undefined;
  for (const o of (options as Node[] | undefined) ?? []) {
    const option = o.DefElem as Node | undefined;
    if (!option || option.defaction === 'DEFELEM_DROP') continue;
    // The grammar makes every generic option's value a string constant.
    const value = String(((option.arg as Node | undefined)?.String as { sval?: unknown } | undefined)?.sval);
    if (option.defname === 'schema_name') schema = value;
    else if (option.defname === 'table_name') table = value;
  }
  if (schema === undefined && table === undefined) return undefined;
  return schema === undefined ? table : `${schema}.${table ?? String(local)}`;
}

/** The tables a statement reads rows of, for its answer or to keep (StatementFacts.reads); the statements inside it are added by the caller. */
function readTables(kind: string, node: Node, tables: ReadonlySet<string>): Iterable<string> {
  if (modifying.has(kind)) {
    // RETURNING answers with rows; otherwise values come from the other tables it names
    // (INSERT … SELECT, UPDATE … FROM, MERGE … USING); a DELETE's only filter its rows.
    const returning = (node.returningList ?? (node.returningClause as Node | undefined)?.exprs) as Node[] | undefined;
    if (returning && returning.length > 0) return tables;
    if (kind === 'DeleteStmt') return [];
    const target = node.relation as { schemaname?: unknown; relname?: unknown } | undefined;
    const name = typeof target?.schemaname === 'string' ? `${target.schemaname}.${String(target.relname)}` : String(target?.relname);
    return [...tables].filter((t) => t !== name);
  }
  if (kind === 'CopyStmt') return node.is_from ? [] : tables;
  if (keepsRows.has(kind)) return tables;
  if (kind === 'AlterTableStmt' && ((node.cmds as Node[] | undefined) ?? []).some((c) => joinsRows.has(String((c.AlterTableCmd as Node | undefined)?.subtype)))) return tables;
  return [];
}

// Function-like objects, whose calls are written like a function's.
const routineObjects = new Set(['OBJECT_FUNCTION', 'OBJECT_PROCEDURE', 'OBJECT_ROUTINE', 'OBJECT_AGGREGATE']);

/** The built-in name a statement gives a function of its own (created, renamed, or moved into another schema). */
function definedName(kind: string, node: Node): string | undefined {
  let name: string | undefined;
  if (kind === 'CreateFunctionStmt') name = stringList(node.funcname).at(-1);
  else if (kind === 'DefineStmt' && node.kind === 'OBJECT_AGGREGATE') name = stringList(node.defnames).at(-1);
  else if (kind === 'RenameStmt' && routineObjects.has(String(node.renameType)) && typeof node.newname === 'string') name = node.newname;
  else if (kind === 'AlterObjectSchemaStmt' && routineObjects.has(String(node.objectType))) name = stringList(((node.object as Node | undefined)?.ObjectWithArgs as Node | undefined)?.objname).at(-1);
  return name !== undefined && builtinFunctionNames.has(name) ? name : undefined;
}

function classifyByName(kind: string): string {
  if (/^(Create|Alter|Rename|Comment|Define|Composite|CreateTableAs|View|Index|Rule|Sec)/.test(kind)) return 'ddl';
  return 'other';
}

// Every RangeVar in the tree is a table (or view) the statement names; CTE names are
// reported too when referenced, which errs on the side of naming more. Walked with an
// explicit stack, in document order, with no depth cap: PostgreSQL runs queries nested
// thousands of tree levels deep, and a table below a cap would escape table rules.
// Returns the name of the prepared statement an EXECUTE in the tree runs, if any. Each
// function call adds its risky shapes (function-calls.ts) to `risky`.
function collectTables(root: unknown, out: Set<string>, risky: Set<string>, calls: Set<string>): string | undefined {
  let executes: string | undefined;
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const node = stack.pop();
    if (node === null || typeof node !== 'object') continue;
    const children = Array.isArray(node) ? node : Object.values(node as Node);
    // A RangeVar appears wrapped ({RangeVar: {…}}) or bare (a statement's `relation`).
    const rangeVar = node as { schemaname?: unknown; relname?: unknown; ExecuteStmt?: { name?: unknown }; FuncCall?: { funcname?: unknown } };
    if (typeof rangeVar.relname === 'string') out.add(typeof rangeVar.schemaname === 'string' ? `${rangeVar.schemaname}.${rangeVar.relname}` : rangeVar.relname);
    if (typeof rangeVar.ExecuteStmt?.name === 'string') executes ??= rangeVar.ExecuteStmt.name;
    if (rangeVar.FuncCall) {
      const name = stringList(rangeVar.FuncCall.funcname);
      for (const r of functionRisks(name)) risky.add(r);
      if (callsBuiltin(name)) calls.add(name[0]!);
    }
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]);
  }
  return executes;
}

/** A list of {String: {sval}} nodes (a qualified name) as strings. */
function stringList(list: unknown): string[] {
  if (!Array.isArray(list)) return [];
  return list.map((item) => (item as { String?: { sval?: unknown } }).String?.sval).filter((s): s is string => typeof s === 'string');
}

/** Order of strictness, for reporting one class for several statements. */
const strictness = ['drop', 'truncate', 'grant', 'role', 'do', 'ddl', 'delete', 'update', 'merge', 'insert', 'copy', 'execute', 'call', 'lock', 'maintenance', 'load', 'other'];

export function strictestClass(classes: readonly string[]): string {
  let best: string | undefined;
  let bestRank = Infinity;
  for (const c of classes) {
    const rank = strictness.indexOf(c);
    const r = rank < 0 ? strictness.length : rank;
    if (r < bestRank) {
      best = c;
      bestRank = r;
    }
  }
  return best ?? 'empty';
}
