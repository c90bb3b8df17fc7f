// Which tables a name in a statement may stand for, from the database's catalog: a rule
// on `orders` must hold for its partitions and inheritance children (`orders_2024`, whose
// rows are rows of `orders`), for `public.orders`, and a rule on `hr.salaries` for a bare
// `salaries` that search_path may resolve there. Read at login, on the session's own
// upstream connection, before the client gets control (like function-catalog.ts).
// Enforces:
// - one catalog query, its names and operators schema-qualified; every message of its
//   answer is consumed here: the client never sees it;
// - a relation's ancestors are followed through pg_inherits to the top (a sub-partition's
//   are its partition's and the partitioned table's);
// - `schema.name` may also be the bare `name`; a bare `name` may be `schema.name` of every
//   schema holding a relation of that name (search_path is not tracked: each counts);
//   after a statement that may change search_path (search-path.ts), and after the end of
//   a transaction or ROLLBACK TO that may undo it, each bare name is looked up again;
// - its answer is kept per connection config for `catalogTtlMs`, as the function catalog's;
// - a table the session itself makes a descendant of another (CREATE TABLE … PARTITION
//   OF / INHERITS, ALTER TABLE … INHERIT / ATTACH PARTITION) stands for that parent, and
//   its parent's names, for the rest of the session (SessionTables), and the cached
//   answer is dropped, so that the next login reads it again;
// - a name the catalog does not know (a relation created elsewhere after the login) is
//   looked up before its statement is decided (table-lookup.ts), and known from then on;
//   one that cannot be looked up leaves its statement's tables unknown (fail closed);
// - a failed query refuses the login with upstream_failed (fail closed).

import { GatehouseError } from '../../errors/index.js';
import { CatalogCache, runCatalogQuery } from './catalog-query.js';
import type { UpstreamSession } from './forward.js';

/** Each relation name (bare and `schema.name`) to the other names it may stand for. */
export type TableCatalog = ReadonlyMap<string, readonly string[]>;

// Every relation outside the system schemas, with each of its ancestors (one row each;
// none: one row with nulls). `relkind` r, p, v, m, f: tables, partitioned tables, views,
// materialized views, foreign tables.
const catalogQuery = `with recursive ancestry (relid, ancestor) as (
  select i.inhrelid, i.inhparent from pg_catalog.pg_inherits i
  union
  select a.relid, i.inhparent from ancestry a join pg_catalog.pg_inherits i on i.inhrelid operator(pg_catalog.=) a.ancestor)
select n.nspname, c.relname, pn.nspname, p.relname
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid operator(pg_catalog.=) c.relnamespace
left join ancestry a on a.relid operator(pg_catalog.=) c.oid
left join pg_catalog.pg_class p on p.oid operator(pg_catalog.=) a.ancestor
left join pg_catalog.pg_namespace pn on pn.oid operator(pg_catalog.=) p.relnamespace
where c.relkind operator(pg_catalog.=) any ('{r,p,v,m,f}'::pg_catalog."char"[])
  and n.nspname operator(pg_catalog.<>) 'pg_catalog' and n.nspname operator(pg_catalog.<>) 'information_schema' and n.nspname operator(pg_catalog.!~) '^pg_toast'`;

const cache = new CatalogCache<TableCatalog>();

/** The names each relation name may stand for on this upstream (cached per `key`). */
export function tableCatalog(upstream: UpstreamSession, key: string, now: number = Date.now()): Promise<TableCatalog> {
  return cache.get(key, () => readCatalog(upstream), now);
}

/** Forgets every cached answer (tests). */
export function clearTableCatalog(): void {
  cache.clear();
}

/** The names of one session's tables: the login's catalog, and the descendants the session made since. */
export class SessionTables {
  readonly #catalog: TableCatalog | undefined;
  readonly #key: string | undefined;
  /** A child (as written, and bare) to its parents' names: made in this session. */
  readonly #made = new Map<string, Set<string>>();
  /** Relations the session looked up after its login (lookedUp), as the catalog keeps them. */
  readonly #found = new Map<string, Set<string>>();
  /**
   * Names the last look-up found no relation of (a table about to be created, a typo):
   * no other table's rows, for the statements of the client's batch that asked (forgotten
   * at the batch's end: forgetAbsent); a later batch naming one looks it up again.
   */
  #absent = new Set<string>();
  /**
   * The session may have changed search_path (searchPathChanged): a bare name known
   * before may now stand for a relation of another schema, made after the login; it is
   * known again once looked up since (`#rechecked`).
   */
  #pathChanged = false;
  #rechecked = new Set<string>();
  /** A search_path change since the session was last idle, which the transaction's end may undo. */
  #revertible = false;
  /** Table lists every name of which the session knows (their statements need no look-up). */
  #allKnown = new WeakSet<readonly string[]>();
  /**
   * mayBe's answers by table list: a cached inspection's facts share one list, so a
   * statement run again costs one lookup, not an array per exchange. Forgotten on learn.
   */
  #answers = new WeakMap<readonly string[], readonly string[] | null>();

  /**
   * The database holds code that statements run without naming it (a trigger's, a view's,
   * a default's function …) which may change search_path (path-code-catalog.ts), or the
   * session made some: every statement that may run code then counts as a change once it
   * is decided to run (ranStatement).
   */
  #unnamedPathCode: boolean;
  /** Whether such code exists could not be read again when last asked (pathCodeRead). */
  #pathCodeUnsure = false;

  /** `key`: the cache key the catalog was read under (tableCatalog), dropped when the session makes a descendant. */
  constructor(catalog: TableCatalog | undefined, key?: string, unnamedPathCode = false) {
    this.#catalog = catalog;
    this.#key = key;
    this.#unnamedPathCode = unnamedPathCode;
  }

  /**
   * A statement of class `cls` was decided to run (a Query's statement, an Execute; not a
   * Parse, whose Execute is decided again with the same names): where code it does not
   * name may change search_path, it counts as a change (searchPathChanged).
   */
  ranStatement(cls: string): void {
    if ((this.#unnamedPathCode || this.#pathCodeUnsure) && !codeFreeClasses.has(cls)) this.searchPathChanged();
  }

  /** The session made code that may change search_path unnamed (a function body, an expression calling set_config on the path). */
  madePathCode(): void {
    this.#unnamedPathCode = true;
  }

  /**
   * The catalog key under which to read again whether the database holds such code, before
   * `facts` are decided (table-lookup.ts recheckPathCode): when the session knows of none
   * and one of them may run code; undefined otherwise (the common case costs a loop).
   */
  pathCodeToCheck(facts: readonly { readonly class: string }[]): string | undefined {
    if (this.#unnamedPathCode || this.#key === undefined) return undefined;
    return facts.some((f) => !codeFreeClasses.has(f.class)) ? this.#key : undefined;
  }

  /**
   * The answer read again: `true`, some exists (from now on as madePathCode); `false`,
   * none; `undefined`, it could not be read, so each statement that may run code counts
   * as a change until it is (fail closed).
   */
  pathCodeRead(found: boolean | undefined): void {
    if (found === true) this.#unnamedPathCode = true;
    this.#pathCodeUnsure = found === undefined;
  }

  /**
   * The names `tables` may also stand for (none already among them); undefined when none.
   * A qualified name is also its bare name even when the catalog does not know it (a table
   * created after the login).
   */
  mayBe(tables: readonly string[]): readonly string[] | undefined {
    const known = this.#answers.get(tables);
    if (known !== undefined) return known ?? undefined;
    const answer = this.#mayBe(tables);
    this.#answers.set(tables, answer ?? null);
    return answer;
  }

  #mayBe(tables: readonly string[]): string[] | undefined {
    let more: Set<string> | undefined;
    for (const table of tables) {
      const dot = table.lastIndexOf('.');
      const bare = dot > 0 ? table.slice(dot + 1) : undefined;
      if (bare !== undefined) (more ??= new Set()).add(bare);
      for (const name of this.#catalog?.get(table) ?? []) (more ??= new Set()).add(name);
      for (const name of this.#found.get(table) ?? []) (more ??= new Set()).add(name);
      // A child made here may be written qualified or not, whichever way it was created.
      for (const name of this.#made.get(table) ?? []) (more ??= new Set()).add(name);
      if (bare !== undefined) for (const name of this.#made.get(bare) ?? []) (more ??= new Set()).add(name);
    }
    if (!more) return undefined;
    for (const table of tables) more.delete(table);
    return more.size > 0 ? [...more] : undefined;
  }

  /**
   * The names of `facts`' tables the session's catalog does not know, to look up before
   * they are decided (a partition created elsewhere after the login); undefined when it
   * knows them all, the common case, which costs one WeakSet look-up per statement.
   * CTE names, and names in pg_catalog or information_schema, need no look-up.
   */
  unknown(facts: readonly { readonly tables: readonly string[]; readonly ctes?: readonly string[] | undefined }[]): string[] | undefined {
    let unknown: Set<string> | undefined;
    for (const f of facts) {
      if (this.#allKnown.has(f.tables)) continue;
      let all = true;
      for (const table of f.tables) {
        if (this.#knows(table) || f.ctes?.includes(table)) continue;
        all = false;
        (unknown ??= new Set()).add(table);
      }
      if (all) this.#allKnown.add(f.tables);
    }
    return unknown && [...unknown];
  }

  /**
   * Whether `tables` names a relation the session neither knows nor found absent
   * (`unlisted`: CTE names, and names found absent when its Parse was decided): such a
   * statement is decided as one whose tables are unknown (decide-statement.ts), since
   * the name may be a partition of a table a rule names.
   */
  unresolved(tables: readonly string[], unlisted: readonly string[] | undefined): boolean {
    if (this.#allKnown.has(tables)) return false;
    let all = true;
    for (const table of tables) {
      if (this.#knows(table) || unlisted?.includes(table)) continue;
      all = false;
      if (!this.#absent.has(table)) return true;
    }
    if (all) this.#allKnown.add(tables);
    return false;
  }

  #knows(table: string): boolean {
    const dot = table.indexOf('.');
    if (this.#pathChanged && dot < 0 && !this.#rechecked.has(table)) return false;
    if (this.#catalog?.has(table) || this.#found.has(table) || this.#made.has(table)) return true;
    const schema = dot > 0 ? table.slice(0, dot) : undefined;
    return schema === 'pg_catalog' || schema === 'information_schema';
  }

  /**
   * The answer of a look-up of `names` (tableLookupQuery: JSON rows): the relations it
   * found are known from now on with their ancestors' names; the names it did not find
   * are absent (see #absent). When it found a relation the login's answer lacks, that
   * cached answer is dropped: it is stale (a system catalog, a temporary table: not).
   */
  lookedUp(names: readonly string[], rows: readonly string[]): void {
    this.#answers = new WeakMap();
    let stale = false;
    for (const row of rows) {
      const [schema, relation, ancestorSchema, ancestor] = (JSON.parse(row) as (string | null)[]).map((v) => v ?? undefined);
      addCatalogRow(this.#found, schema, relation, ancestorSchema, ancestor);
      if (schema !== undefined && !/^(pg_catalog|information_schema|pg_toast.*|pg_temp_\d+)$/.test(schema) && !this.#catalog?.has(`${schema}.${relation ?? ''}`)) stale = true;
    }
    if (stale && this.#key !== undefined) cache.delete(this.#key);
    this.#absent = new Set(names.filter((name) => !this.#found.has(name)));
    if (this.#pathChanged) for (const name of names) if (!name.includes('.')) this.#rechecked.add(name);
  }

  /**
   * A statement of the session may change search_path (StatementFacts.searchPath): each
   * bare name is looked up again when next named, once (a relation of its name made in
   * another schema since the session learnt it may be the one it stands for now).
   */
  searchPathChanged(): void {
    this.#revertible = true;
    this.#forgetPath();
  }

  /**
   * The session's transaction ended (ReadyForQuery, idle): a search_path change made in it
   * may have gone back (SET LOCAL, set_config(…, true), any SET in a block rolled back),
   * to a path whose bare names are looked up again, as after a change.
   */
  transactionEnded(): void {
    if (!this.#revertible) return;
    this.#revertible = false;
    this.#forgetPath();
  }

  /** ROLLBACK TO SAVEPOINT: a search_path change since the savepoint goes back. */
  savepointRolledBack(): void {
    if (this.#revertible) this.#forgetPath();
  }

  #forgetPath(): void {
    this.#pathChanged = true;
    this.#rechecked = new Set();
    this.#allKnown = new WeakSet();
  }

  /** The client's batch (a Query, or extended messages up to Sync) ended: names found absent may exist by the next one. */
  forgetAbsent(): void {
    if (this.#absent.size > 0) this.#absent = new Set();
  }

  /** The names of `tables` the last look-up found absent (a Parse keeps them for its Executes: StatementShape.unlisted). */
  absentAmong(tables: readonly string[]): string[] | undefined {
    if (this.#absent.size === 0) return undefined;
    const absent = tables.filter((t) => this.#absent.has(t));
    return absent.length > 0 ? absent : undefined;
  }

  /** `child` is a descendant of `parent` from now on (decided, whether or not it runs: more names is stricter). */
  learn(child: string, parent: string): void {
    if (this.#key !== undefined) cache.delete(this.#key);
    this.#answers = new WeakMap();
    const names = [parent, ...(this.mayBe([parent]) ?? [])];
    const dot = child.lastIndexOf('.');
    for (const key of dot > 0 ? [child, child.slice(dot + 1)] : [child]) {
      let set = this.#made.get(key);
      if (!set) this.#made.set(key, (set = new Set()));
      for (const name of names) if (name !== key) set.add(name);
    }
  }
}

/** Statement classes that run no code of the database's (no trigger, view, default, cast …). */
const codeFreeClasses = new Set(['set', 'show', 'listen', 'notify', 'deallocate']);

async function readCatalog(upstream: UpstreamSession): Promise<TableCatalog> {
  const names = new Map<string, Set<string>>();
  await runCatalogQuery(upstream, catalogQuery, (row) => {
    const [schema, relation, ancestorSchema, ancestor] = row.map((v) => v?.toString('utf8'));
    addCatalogRow(names, schema, relation, ancestorSchema, ancestor);
  }, catalogFailed);
  return new Map([...names].map(([name, others]) => [name, [...others]]));
}

/** One row of a catalog answer (a relation, and one of its ancestors or none) into `names`. */
function addCatalogRow(names: Map<string, Set<string>>, schema: string | undefined, relation: string | undefined, ancestorSchema: string | undefined, ancestor: string | undefined): void {
  if (schema === undefined || relation === undefined) return;
  const add = (name: string, ...others: string[]) => {
    let set = names.get(name);
    if (!set) names.set(name, (set = new Set()));
    for (const other of others) if (other !== name) set.add(other);
  };
  const qualified = `${schema}.${relation}`;
  const ancestors = ancestorSchema !== undefined && ancestor !== undefined ? [`${ancestorSchema}.${ancestor}`, ancestor] : [];
  add(qualified, relation, ...ancestors);
  // A bare name may be this schema's relation (search_path), and so its ancestors too.
  add(relation, qualified, ...ancestors);
}

/**
 * The look-up of names the session's catalog does not know (a relation created after the
 * login), as the login's query but for those names only, in every schema (the system
 * catalogs too, so that `pg_class` is known from then on). Each row is one text value, a
 * JSON array [schema, relation, ancestor's schema, ancestor] (nulls: no ancestor), so that
 * the session's FIFO reads it as the first value of each DataRow (copy-out.ts probe).
 * `$1`: the names, a text[]; a name matches a relation's bare or qualified name.
 */
export const tableLookupQuery = `with recursive wanted (oid) as (
  select c.oid from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid operator(pg_catalog.=) c.relnamespace
  where c.relkind operator(pg_catalog.=) any ('{r,p,v,m,f}'::pg_catalog."char"[])
    and (c.relname operator(pg_catalog.=) any ($1::pg_catalog.text[]) or (n.nspname operator(pg_catalog.||) '.' operator(pg_catalog.||) c.relname) operator(pg_catalog.=) any ($1::pg_catalog.text[]))),
ancestry (relid, ancestor) as (
  select i.inhrelid, i.inhparent from pg_catalog.pg_inherits i where i.inhrelid operator(pg_catalog.=) any (select oid from wanted)
  union
  select a.relid, i.inhparent from ancestry a join pg_catalog.pg_inherits i on i.inhrelid operator(pg_catalog.=) a.ancestor)
select pg_catalog.json_build_array(n.nspname, c.relname, pn.nspname, p.relname)::pg_catalog.text
from wanted w
join pg_catalog.pg_class c on c.oid operator(pg_catalog.=) w.oid
join pg_catalog.pg_namespace n on n.oid operator(pg_catalog.=) c.relnamespace
left join ancestry a on a.relid operator(pg_catalog.=) c.oid
left join pg_catalog.pg_class p on p.oid operator(pg_catalog.=) a.ancestor
left join pg_catalog.pg_namespace pn on pn.oid operator(pg_catalog.=) p.relnamespace`;

function catalogFailed(detail: string): GatehouseError {
  return new GatehouseError('upstream_failed', {
    message: 'The gateway could not read the database\'s table catalog (partitions, inheritance and schemas of its tables), so the session was not opened.',
    detail: `table catalog query: ${detail}`,
  });
}
