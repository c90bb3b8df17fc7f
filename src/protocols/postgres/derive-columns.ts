// Which result columns carry values derived from which source columns, traced through
// the parse tree, so column masking (mask-rows.ts) reaches values that do not arrive
// under their own column name. Enforces, without the database's catalog:
// - a result column is plain when it is a column of a table (or view), as named: its
//   RowDescription name is the column's name, and masking by name covers it;
// - any other result column (an alias, an expression, a function or aggregate, a cast,
//   a whole row `u`, `to_json(u)`, `u::text`, a column of a subquery or CTE that is
//   itself derived) lists the column names its value is computed from (`sources`), and
//   `wholeRow` when a whole row, or a user-defined function, feeds it (any column may);
// - `count(…)` and `EXISTS (…)` are numbers and booleans about rows, not their values;
// - the result's position is known before the first and after the last `*` over a table
//   (whose width the gateway does not know); between, a column is found by the name
//   PostgreSQL gives it (FigureColname), and one not found fails closed (mask-rows.ts);
// - UNION/INTERSECT/EXCEPT combine branches by position under the left branch's names;
//   when a `*` on either side makes that impossible, every result column may carry
//   anything (`any`);
// - values kept under another name (a view, CREATE TABLE AS, SELECT INTO, a cursor,
//   INSERT … SELECT/VALUES, UPDATE … SET, INSERT … ON CONFLICT DO UPDATE, MERGE, a
//   data-modifying CTE, a rule's actions, a generated column or ALTER COLUMN … USING,
//   RENAME COLUMN) are `stores`: decide-statement.ts refuses those that would keep a
//   masked column's value under a name masking does not cover. Values stored by position
//   (INSERT without a column list, a column list over a `*`) go to names the gateway does
//   not know; a `*` over a table stored so may carry any column (`wholeRow`), except
//   `INSERT INTO t SELECT * FROM t` (each column into itself);
// - a value handed to a built-in that keeps or sends it (pg_notify, set_config, lo_put,
//   setval …), anywhere in the statement, is a store too: it is read back unmasked.
// Literal values never matter here (a shape's facts hold for every text of it).
//
// Here: deriveColumns / derive (one statement kind to its results and stores), the
// stores of a table's definition (generated, foreignColumn, alterColumn), and what a
// session keeps (derivationOf, asStored). A query's scopes, expressions and DML stores
// are traced in query-columns.ts, over the entries of column-entries.ts; the parse-tree
// readers and PostgreSQL's FigureColname are in parse-tree-names.ts; values kept by
// functions (calls, and the triggers, aggregates, operators and casts made of them) in
// function-stores.ts.

import { anyColumn, newScope, resultsOf, store, type Derivation, type Entry, type StoredColumn } from './column-entries.js';
import { definitionStores, keptByFunctions } from './function-stores.js';
import { names, relName, sval, type Node } from './parse-tree-names.js';
import { dmlEntries, exprFlow, selectEntries } from './query-columns.js';

export type { DerivedColumn, Derivation, StoredColumn } from './column-entries.js';

/** The derivation of one statement's tree, or undefined when it derives nothing. */
export function deriveColumns(kind: string, node: Node): Derivation | undefined {
  try {
    const derivation = derive(kind, node);
    const kept = [...keptByFunctions(node), ...definitionStores(kind, node)];
    return kept.length > 0 ? { ...derivation, stores: [...(derivation?.stores ?? []), ...kept] } : derivation;
  } catch {
    // A tree this code does not expect: every column may carry anything (fail closed).
    const unknown: StoredColumn = { target: undefined, name: undefined, sources: [], wholeRow: true };
    if (kind === 'SelectStmt' && !node.intoClause) return { any: true };
    return kind === 'InsertStmt' || kind === 'UpdateStmt' || kind === 'DeleteStmt' || kind === 'MergeStmt' ? { any: true, stores: [unknown] } : { stores: [unknown] };
  }
}

function derive(kind: string, node: Node): Derivation | undefined {
  const stores: StoredColumn[] = [];
  let entries: readonly Entry[] | undefined;
  switch (kind) {
    case 'SelectStmt': {
      entries = selectEntries(node, undefined, new Map(), stores);
      const into = node.intoClause as Node | undefined;
      if (into) {
        store(stores, entries, names(into.colNames), `table ${relName(into.rel)}`, false);
        entries = undefined;
      }
      break;
    }
    case 'InsertStmt':
    case 'UpdateStmt':
    case 'DeleteStmt':
    case 'MergeStmt':
      entries = dmlEntries(kind, node, undefined, new Map(), stores);
      break;
    case 'RuleStmt':
      // Its actions run later, on every matching statement (NEW.email is a column's value).
      for (const action of (node.actions as Node[] | undefined) ?? []) {
        const [akind, anode] = Object.entries(action)[0] as [string, Node];
        stores.push(...(derive(akind, anode)?.stores ?? []));
        // A SELECT action answers later statements with its rows: `on select to t do instead
        // select id, email as contact from users` makes table t a view (its columns' names,
        // by position, unknown here), and `on insert to t do instead select email as contact`
        // answers an INSERT, which the gateway does not trace to these columns.
        if (akind === 'SelectStmt') store(stores, selectEntries(anode, undefined, new Map()), undefined, `the rows of rule ${String(node.rulename)} (under names the gateway does not trace)`, true);
      }
      break;
    case 'RenameStmt':
      // The column's values from now on are read under the new name.
      if (node.renameType === 'OBJECT_COLUMN' && typeof node.subname === 'string' && typeof node.newname === 'string') {
        const what = node.relationType === 'OBJECT_VIEW' ? 'view' : node.relationType === 'OBJECT_MATVIEW' ? 'materialized view' : 'table';
        stores.push({ target: `column "${node.newname}" of ${what} ${relName(node.relation)}`, name: node.newname, sources: [node.subname], wholeRow: false });
      }
      break;
    case 'CreateForeignTableStmt': {
      const base = node.base as Node | undefined;
      for (const elt of (base?.tableElts as Node[] | undefined) ?? []) {
        const def = elt.ColumnDef as Node | undefined;
        if (def) foreignColumn(String(def.colname), def.fdwoptions, `foreign table ${relName(base?.relation)}`, stores);
      }
      break;
    }
    case 'CreateStmt':
      for (const elt of (node.tableElts as Node[] | undefined) ?? []) if (elt.ColumnDef) generated(elt.ColumnDef as Node, `table ${relName(node.relation)}`, stores);
      break;
    case 'AlterTableStmt':
      for (const c of (node.cmds as Node[] | undefined) ?? []) alterColumn(c.AlterTableCmd as Node | undefined, `${node.objtype === 'OBJECT_FOREIGN_TABLE' ? 'foreign table' : 'table'} ${relName(node.relation)}`, stores);
      break;
    case 'ViewStmt':
      store(stores, selectEntries((node.query as Node).SelectStmt as Node ?? {}, undefined, new Map()), names(node.aliases), `view ${relName(node.view)}`, false);
      break;
    case 'CreateTableAsStmt': {
      const into = node.into as Node | undefined;
      const query = node.query as Node | undefined;
      if (query?.SelectStmt) store(stores, selectEntries(query.SelectStmt as Node, undefined, new Map()), names(into?.colNames), `${node.objtype === 'OBJECT_MATVIEW' ? 'materialized view' : 'table'} ${relName(into?.rel)}`, false);
      break;
    }
    case 'DeclareCursorStmt': {
      const query = node.query as Node | undefined;
      // FETCH answers with the cursor's columns later: derived ones cannot be traced then.
      if (query?.SelectStmt) store(stores, selectEntries(query.SelectStmt as Node, undefined, new Map()), undefined, `cursor ${String(node.portalname)}`, false);
      break;
    }
    default:
      return undefined;
  }
  const derivation = entries ? resultsOf(entries) : {};
  return derivation.results || derivation.any || stores.length > 0 ? { ...derivation, ...(stores.length > 0 ? { stores } : {}) } : undefined;
}

/** A generated column's expression reads the row's other columns, and is stored under its own name. */
function generated(def: Node, what: string, stores: StoredColumn[]): void {
  for (const c of (def.constraints as Node[] | undefined) ?? []) {
    const constraint = c.Constraint as Node | undefined;
    if (constraint?.contype === 'CONSTR_GENERATED') storeExpr(constraint.raw_expr, String(def.colname), what, stores);
  }
}

/**
 * A foreign table's column read from a remote column of another name (`contact text
 * options (column_name 'email')`, postgres_fdw): the remote column's values under this
 * name, as a view's `select email as contact` would keep them.
 */
function foreignColumn(name: string, options: unknown, what: string, stores: StoredColumn[]): void {
  for (const o of (options as Node[] | undefined) ?? []) {
    const option = o.DefElem as Node | undefined;
    if (option?.defname !== 'column_name' || option.defaction === 'DEFELEM_DROP') continue;
    const remote = sval(option.arg as Node | undefined);
    // An option this code cannot read may name any column (fail closed).
    const entry: Entry = remote === undefined ? anyColumn : { name: remote, sources: new Set([remote]), wholeRow: false, plain: true };
    store(stores, [entry], [name], what, false);
  }
}

/** ALTER TABLE: ADD COLUMN … GENERATED, ALTER COLUMN … SET EXPRESSION, ALTER COLUMN … TYPE … USING. */
function alterColumn(cmd: Node | undefined, what: string, stores: StoredColumn[]): void {
  const def = cmd?.def as Node | undefined;
  if (!cmd || !def) return;
  if (cmd.subtype === 'AT_AddColumn' && def.ColumnDef) generated(def.ColumnDef as Node, what, stores);
  if (cmd.subtype === 'AT_AddColumn' && def.ColumnDef) foreignColumn(String((def.ColumnDef as Node).colname), (def.ColumnDef as Node).fdwoptions, what, stores);
  if (cmd.subtype === 'AT_AlterColumnGenericOptions') foreignColumn(String(cmd.name), (def.List as Node | undefined)?.items, what, stores);
  if (cmd.subtype === 'AT_SetExpression') storeExpr(def, String(cmd.name), what, stores);
  if (cmd.subtype === 'AT_AlterColumnType' && (def.ColumnDef as Node | undefined)?.raw_default) storeExpr((def.ColumnDef as Node).raw_default, String(cmd.name), what, stores);
}

function storeExpr(expr: unknown, name: string, what: string, stores: StoredColumn[]): void {
  const flow = exprFlow(expr, newScope(undefined, new Map()));
  if (flow.sources.size > 0 || flow.wholeRow) store(stores, [{ name, sources: flow.sources, wholeRow: flow.wholeRow, plain: false }], [name], what, true);
}

/** The derivation of a prepared name that stands for several statements (prepared again unseen). */
export function derivationOf(facts: readonly { readonly derived?: Derivation | undefined }[]): Derivation | undefined {
  if (facts.length === 1) return facts[0]!.derived;
  const derived = facts.map((f) => f.derived).filter((d): d is Derivation => d !== undefined);
  if (derived.length === 0) return undefined;
  const stores = derived.flatMap((d) => d.stores ?? []);
  // Which one runs is unknown: its columns may be derived anywhere.
  return { any: true, ...(stores.length > 0 ? { stores } : {}) };
}

/** A result kept in a table (CREATE TABLE AS EXECUTE): its derived columns are stored values. */
export function asStored(derivation: Derivation): Derivation {
  const stores: StoredColumn[] = [
    ...(derivation.stores ?? []),
    ...(derivation.results ?? []).map((r) => ({ target: `column "${r.name}" of the new table`, name: r.name, sources: r.sources, wholeRow: r.wholeRow })),
    ...(derivation.any ? [{ target: 'the new table', name: undefined, sources: [], wholeRow: true }] : []),
  ];
  return stores.length > 0 ? { stores } : {};
}
