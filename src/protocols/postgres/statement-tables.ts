// The tables a statement names, and those whose rows it reads into its answer or into
// something kept, read from its parse tree. Enforces:
// - every RangeVar in the tree is a table the statement names, at any depth;
// - a foreign table's rows are its remote table's (postgres_fdw options), and IMPORT
//   FOREIGN SCHEMA without LIMIT TO imports tables nobody named (unknown-tables);
// - RETURNING, COPY TO, INSERT … SELECT, a view, CREATE TABLE AS, a rule, ATTACH
//   PARTITION and INHERIT read rows (StatementFacts.reads).

import { callsBuiltin, functionRisks } from './function-calls.js';
import { relName, stringList, type Node } from './parse-tree-names.js';

/** The statements that write rows (a data-modifying WITH query is one of them). */
export const modifying = new Set(['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']);

// Statements that keep a query's rows, or make a table's rows another's (an inheritance
// parent's, a partitioned table's), for later reads under a name the rules may not list.
const keepsRows = new Set(['CreateTableAsStmt', 'ViewStmt', 'RuleStmt']);
const joinsRows = new Set(['AT_AddInherit', 'AT_AttachPartition']);

/**
 * The remote tables a foreign table is made to read (postgres_fdw's `schema_name` and
 * `table_name` options; `loop` may be this very database), added to `tables`: its rows
 * are theirs. IMPORT FOREIGN SCHEMA without LIMIT TO imports tables nobody named.
 */
export function foreignTables(kind: string, node: Node, tables: Set<string>, risky: Set<string>): string[] {
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

/** The `[child, parent]` pairs a statement makes (StatementFacts.inherits); undefined when none. */
export function inheritance(kind: string, node: Node): [string, string][] | undefined {
  const pairs: [string, string][] = [];
  if (kind === 'CreateStmt') {
    for (const parent of (node.inhRelations as Node[] | undefined) ?? []) pairs.push([relName(node.relation), relName(parent.RangeVar)]);
  } else if (kind === 'AlterTableStmt') {
    for (const c of (node.cmds as Node[] | undefined) ?? []) {
      const cmd = c.AlterTableCmd as Node | undefined;
      const def = cmd?.def as Node | undefined;
      if (cmd?.subtype === 'AT_AddInherit') pairs.push([relName(node.relation), relName(def?.RangeVar)]);
      if (cmd?.subtype === 'AT_AttachPartition') pairs.push([relName((def?.PartitionCmd as Node | undefined)?.name), relName(node.relation)]);
    }
  }
  return pairs.length > 0 ? pairs : undefined;
}

/** The tables a statement reads rows of, for its answer or to keep (StatementFacts.reads); the statements inside it are added by the caller. */
export function readTables(kind: string, node: Node, tables: ReadonlySet<string>): Iterable<string> {
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

// Every RangeVar in the tree is a table (or view) the statement names; CTE names are
// reported too when referenced, which errs on the side of naming more. Walked with an
// explicit stack, in document order, with no depth cap: PostgreSQL runs queries nested
// thousands of tree levels deep, and a table below a cap would escape table rules.
// Returns the name of the prepared statement an EXECUTE in the tree runs, if any. Each
// function call adds its risky shapes (function-calls.ts) to `risky`. `ctes` receives the
// bare names that stand only for a CTE wherever the statement names them (scoped as
// PostgreSQL resolves them: a CTE is seen by its query and the queries inside it, by the
// CTEs after it or, WITH RECURSIVE, by all of them; never as a statement's target
// `relation` or SELECT INTO's table): such a name needs no look-up in the catalog.
export function collectTables(root: unknown, out: Set<string>, risky: Set<string>, calls: Set<string>, ctes?: Set<string>): string | undefined {
  let executes: string | undefined;
  const stack: unknown[] = [root];
  // The CTE names in scope of each node on the stack (undefined: none), pushed alongside.
  const scopes: (ReadonlySet<string> | undefined)[] = [undefined];
  const asTable = new Set<string>();
  const asCte = new Set<string>();
  while (stack.length > 0) {
    const node = stack.pop();
    let scope = scopes.pop();
    if (node === null || typeof node !== 'object') continue;
    // A RangeVar appears wrapped ({RangeVar: {…}}) or bare (a statement's `relation`).
    const rangeVar = node as { schemaname?: unknown; relname?: unknown; ExecuteStmt?: { name?: unknown }; FuncCall?: { funcname?: unknown }; withClause?: { ctes?: unknown; recursive?: unknown } };
    if (typeof rangeVar.relname === 'string') {
      const qualified = typeof rangeVar.schemaname === 'string';
      const name = qualified ? `${rangeVar.schemaname as string}.${rangeVar.relname}` : rangeVar.relname;
      out.add(name);
      if (!qualified && scope?.has(name)) asCte.add(name);
      else asTable.add(name);
    }
    if (typeof rangeVar.ExecuteStmt?.name === 'string') executes ??= rangeVar.ExecuteStmt.name;
    if (rangeVar.FuncCall) {
      const name = stringList(rangeVar.FuncCall.funcname);
      for (const r of functionRisks(name)) risky.add(r);
      if (callsBuiltin(name)) calls.add(name[0]!);
    }
    if (Array.isArray(node)) {
      for (let i = node.length - 1; i >= 0; i--) {
        stack.push(node[i]);
        scopes.push(scope);
      }
      continue;
    }
    const entries = Object.entries(node as Node);
    const withCtes = Array.isArray(rangeVar.withClause?.ctes) ? (rangeVar.withClause.ctes as Node[]) : undefined;
    const names = withCtes?.map((c) => String((c.CommonTableExpr as Node | undefined)?.ctename));
    const outer = scope;
    if (names) scope = new Set([...(outer ?? []), ...names]);
    for (let i = entries.length - 1; i >= 0; i--) {
      const [key, child] = entries[i]!;
      if (key === 'withClause' && withCtes && names) {
        // Each CTE's query sees the CTEs before it (all of them under RECURSIVE).
        const recursive = rangeVar.withClause!.recursive === true;
        for (let j = withCtes.length - 1; j >= 0; j--) {
          stack.push(withCtes[j]);
          scopes.push(recursive ? scope : names.slice(0, j).length > 0 || outer ? new Set([...(outer ?? []), ...names.slice(0, j)]) : undefined);
        }
        continue;
      }
      stack.push(child);
      // A statement's target, and SELECT INTO's new table, are never a CTE.
      scopes.push(key === 'relation' || key === 'intoClause' ? undefined : scope);
    }
  }
  if (ctes) for (const name of asCte) if (!asTable.has(name)) ctes.add(name);
  return executes;
}
