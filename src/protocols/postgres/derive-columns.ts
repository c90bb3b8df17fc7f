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
// The file, top to bottom: deriveColumns / derive (one statement kind to its results and
// stores); the stores (store, dmlEntries, assignments, generated, alterColumn); the
// scopes a query's names resolve in (newScope, withClause, selectEntries, addFromItem,
// lookup); expressions (exprFlow, columnRef); UNION and renames (combine, rename); what a
// session keeps (derivationOf, asStored). The parse-tree readers and PostgreSQL's
// FigureColname are in parse-tree-names.ts; values kept by functions (calls, and the
// triggers, aggregates, operators and casts made of them) in function-stores.ts.

import { functionRisks } from './function-calls.js';
import { definitionStores, keptByFunctions } from './function-stores.js';
import { figureColname, names, relName, sval, walkTree, type Node } from './parse-tree-names.js';


/** A result column that is not a plain table column. */
export interface DerivedColumn {
  /** As the client will see it: the alias, or the name PostgreSQL gives the expression. */
  readonly name: string;
  /** Index in the result: ≥ 0 from the start, < 0 from the end; undefined: find it by name. */
  readonly position: number | undefined;
  readonly sources: readonly string[];
  readonly wholeRow: boolean;
}

/** A value kept under a name (`target`: e.g. `column "e" of view v`; undefined: unknown). */
export interface StoredColumn {
  readonly target: string | undefined;
  readonly name: string | undefined;
  readonly sources: readonly string[];
  readonly wholeRow: boolean;
}

export interface Derivation {
  /** The result's derived columns (undefined: none). */
  readonly results?: readonly DerivedColumn[];
  /** Every result column may carry any value (a set operation over `*`). */
  readonly any?: true;
  readonly stores?: readonly StoredColumn[];
}

interface Col {
  readonly name: string;
  readonly sources: ReadonlySet<string>;
  readonly wholeRow: boolean;
  readonly plain: boolean;
}
/** A `*` over a table: its columns, by their own names, count unknown. */
const tableStar = { star: true } as const;
/** Every column may carry anything. */
const anyColumn = { any: true } as const;
type Entry = Col | typeof tableStar | typeof anyColumn;

type Item = { kind: 'table' } | { kind: 'rows'; entries: readonly Entry[] };
interface Scope {
  readonly items: Map<string, Item>;
  readonly order: Item[];
  readonly parent: Scope | undefined;
  readonly ctes: ReadonlyMap<string, readonly Entry[]>;
}

const emptySet: ReadonlySet<string> = new Set();

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

function resultsOf(entries: readonly Entry[]): { results?: DerivedColumn[]; any?: true } {
  if (entries.some((e) => 'any' in e)) return { any: true };
  const first = entries.findIndex((e) => 'star' in e);
  const last = entries.length - 1 - [...entries].reverse().findIndex((e) => 'star' in e);
  const results: DerivedColumn[] = [];
  entries.forEach((e, i) => {
    if ('star' in e || 'any' in e || e.plain || (e.sources.size === 0 && !e.wholeRow)) return;
    const position = first < 0 || i < first ? i : i > last ? i - entries.length : undefined;
    results.push({ name: e.name, position, sources: [...e.sources], wholeRow: e.wholeRow });
  });
  return results.length > 0 ? { results } : {};
}

/** Values written under names: `names` positional (undefined: the entries' own names). */
function store(out: StoredColumn[], entries: readonly Entry[], columns: string[] | undefined, what: string, plainMoves: boolean): void {
  // After a `*` over a table (width unknown) the position, and so the name, of a value is unknown.
  let shifted = false;
  entries.forEach((e, i) => {
    if ('star' in e) {
      // A table's columns keep their own names, unless stored by position (any of them may be masked).
      if (plainMoves || (columns !== undefined && (shifted || i < columns.length))) out.push({ target: `${what} by position (from a *)`, name: undefined, sources: [], wholeRow: true });
      shifted = true;
      return;
    }
    if ('any' in e) return void out.push({ target: what, name: undefined, sources: [], wholeRow: true });
    const name = columns ? (shifted ? undefined : columns[i]) : plainMoves ? undefined : e.name;
    // Under its own name a plain column is masked as before; elsewhere its values move.
    if (e.plain && !plainMoves && name === e.name) return;
    // Nothing, or a column copied into itself. A column computed from itself (`set ssn =
    // substr(ssn, 1, 7)`) is a store: under a `partial` rule it would show another part.
    if (!e.wholeRow && (e.sources.size === 0 || (e.plain && [...e.sources].every((s) => s === name)))) return;
    out.push({ target: name === undefined ? what : `column "${name}" of ${what}`, name, sources: [...e.sources], wholeRow: e.wholeRow });
  });
}

function dmlEntries(kind: string, node: Node, outer: Scope | undefined, ctes: ReadonlyMap<string, readonly Entry[]>, stores: StoredColumn[]): readonly Entry[] {
  const withCtes = withClause(node.withClause as Node | undefined, outer, ctes, stores);
  const scope = newScope(outer, withCtes);
  const relation = node.relation as Node | undefined;
  if (relation) addFromItem({ RangeVar: relation }, scope);
  for (const item of (kind === 'DeleteStmt' ? node.usingClause : node.fromClause) as Node[] | undefined ?? []) addFromItem(item, scope);
  if (kind === 'MergeStmt' && node.sourceRelation) addFromItem(node.sourceRelation as Node, scope);
  const target = `table ${relName(relation)}`;
  if (kind === 'InsertStmt' && node.selectStmt) {
    const select = (node.selectStmt as Node).SelectStmt as Node;
    const cols = ((node.cols as Node[] | undefined) ?? []).map((c) => String((c.ResTarget as Node | undefined)?.name));
    if (cols.length > 0 || !copiesItself(select, relation)) store(stores, selectEntries(select, outer, withCtes), cols.length > 0 ? cols : undefined, target, true);
  }
  if (kind === 'UpdateStmt') assignments(node.targetList, scope, target, stores);
  // INSERT … ON CONFLICT DO UPDATE SET (EXCLUDED.x is the value that was to be inserted into x).
  if (kind === 'InsertStmt') assignments((node.onConflictClause as Node | undefined)?.targetList, scope, target, stores);
  if (kind === 'MergeStmt') {
    for (const w of (node.mergeWhenClauses as Node[] | undefined) ?? []) {
      const when = w.MergeWhenClause as Node;
      if (when.commandType === 'CMD_UPDATE') assignments(when.targetList, scope, target, stores);
      if (when.commandType === 'CMD_INSERT') {
        const cols = ((when.targetList as Node[] | undefined) ?? []).map((c) => String((c.ResTarget as Node | undefined)?.name));
        const values = ((when.values as Node[] | undefined) ?? []).map((v, i): Col => ({ name: `column${i + 1}`, ...exprFlow(v, scope), plain: false }));
        store(stores, values, cols.length > 0 ? cols : undefined, target, true);
      }
    }
  }
  // RETURNING: `returningList` up to PostgreSQL 17's grammar, `returningClause.exprs` since.
  const returning = (node.returningList ?? (node.returningClause as Node | undefined)?.exprs) as Node[] | undefined;
  return targetEntries(returning ?? [], scope);
}

/** `SET name = expr, …`: each value under its column's name. */
function assignments(targetList: unknown, scope: Scope, target: string, stores: StoredColumn[]): void {
  for (const t of (targetList as Node[] | undefined) ?? []) {
    const rt = t.ResTarget as Node;
    const flow = exprFlow(rt.val, scope);
    const name = String(rt.name);
    if (flow.sources.size > 0 || flow.wholeRow) store(stores, [{ name, sources: flow.sources, wholeRow: flow.wholeRow, plain: flow.plain === name }], [name], target, true);
  }
}

/** `INSERT INTO t SELECT * FROM t` (no column list): each column into itself. */
function copiesItself(select: Node, relation: Node | undefined): boolean {
  const targets = (select.targetList as Node[] | undefined) ?? [];
  const from = (select.fromClause as Node[] | undefined) ?? [];
  const source = from[0]?.RangeVar as Node | undefined;
  if (select.withClause || select.valuesLists || (select.op !== undefined && select.op !== 'SETOP_NONE') || targets.length !== 1 || from.length !== 1 || !source || !relation) return false;
  const fields = (((targets[0]!.ResTarget as Node).val as Node).ColumnRef as Node | undefined)?.fields as Node[] | undefined;
  if (!fields || !('A_Star' in fields[fields.length - 1]!)) return false;
  if (fields.length === 2 && sval(fields[0]) !== String((source.alias as Node | undefined)?.aliasname ?? source.relname)) return false;
  return fields.length <= 2 && source.relname === relation.relname && source.schemaname === relation.schemaname;
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

function newScope(parent: Scope | undefined, ctes: ReadonlyMap<string, readonly Entry[]>): Scope {
  return { items: new Map(), order: [], parent, ctes };
}

/** `stores`: where a data-modifying CTE's stored values go (PostgreSQL allows those only at the top level). */
function withClause(clause: Node | undefined, outer: Scope | undefined, ctes: ReadonlyMap<string, readonly Entry[]>, stores: StoredColumn[] = []): ReadonlyMap<string, readonly Entry[]> {
  const list = (clause?.ctes as Node[] | undefined) ?? [];
  if (list.length === 0) return ctes;
  const all = new Map(ctes);
  for (const c of list) {
    const cte = c.CommonTableExpr as Node;
    const query = cte.ctequery as Node;
    const [qkind, qnode] = Object.entries(query)[0] as [string, Node];
    const entries = qkind === 'SelectStmt' ? selectEntries(qnode, outer, all) : dmlEntries(qkind, qnode, outer, all, stores);
    all.set(String(cte.ctename), rename(entries, names(cte.aliascolnames)));
  }
  return all;
}

function selectEntries(sel: Node, outer: Scope | undefined, ctes: ReadonlyMap<string, readonly Entry[]>, stores?: StoredColumn[]): readonly Entry[] {
  const withCtes = withClause(sel.withClause as Node | undefined, outer, ctes, stores);
  if (sel.op !== undefined && sel.op !== 'SETOP_NONE') {
    return combine(selectEntries(sel.larg as Node, outer, withCtes), selectEntries(sel.rarg as Node, outer, withCtes));
  }
  const scope = newScope(outer, withCtes);
  for (const item of (sel.fromClause as Node[] | undefined) ?? []) addFromItem(item, scope);
  const values = sel.valuesLists as Node[] | undefined;
  if (values) {
    // VALUES (…), (…): column i gets every row's i-th expression.
    let out: Entry[] = [];
    values.forEach((row, r) => {
      const items = ((row.List as Node | undefined)?.items as Node[] | undefined) ?? [];
      const cols = items.map((v, i): Col => { const f = exprFlow(v, scope); return { name: `column${i + 1}`, sources: f.sources, wholeRow: f.wholeRow, plain: false }; });
      out = r === 0 ? cols : (combine(out, cols) as Entry[]);
    });
    return out;
  }
  return targetEntries((sel.targetList as Node[] | undefined) ?? [], scope);
}

function targetEntries(targets: readonly Node[], scope: Scope): Entry[] {
  const out: Entry[] = [];
  for (const t of targets) {
    const rt = t.ResTarget as Node;
    const val = rt.val as Node;
    const ref = val.ColumnRef as Node | undefined;
    const fields = ref ? (ref.fields as Node[]) : undefined;
    if (fields && 'A_Star' in fields[fields.length - 1]!) {
      const rel = fields.length > 1 ? sval(fields[fields.length - 2]) : undefined;
      const items = rel === undefined ? scope.order : [lookup(scope, rel)].filter((i): i is Item => i !== undefined);
      if (rel !== undefined && items.length === 0) out.push(tableStar);
      for (const item of items) out.push(...(item.kind === 'table' ? [tableStar] : item.entries));
      continue;
    }
    const flow = exprFlow(val, scope);
    const name = typeof rt.name === 'string' ? rt.name : figureColname(val);
    out.push({ name, sources: flow.sources, wholeRow: flow.wholeRow, plain: flow.plain === name });
  }
  return out;
}

function addFromItem(item: Node, scope: Scope): void {
  const [kind, node] = Object.entries(item)[0] as [string, Node];
  const alias = node.alias as Node | undefined;
  const colnames = names(alias?.colnames);
  let entries: readonly Entry[] | undefined;
  let name: string | undefined = alias ? String(alias.aliasname) : undefined;
  switch (kind) {
    case 'RangeVar': {
      const relname = String(node.relname);
      name ??= relname;
      const cte = node.schemaname === undefined ? scope.ctes.get(relname) : undefined;
      if (cte) entries = cte;
      else if (colnames) entries = [...colnames.map((c): Col => ({ name: c, sources: emptySet, wholeRow: true, plain: false })), tableStar];
      break;
    }
    case 'RangeSubselect':
      entries = selectEntries(((node.subquery as Node).SelectStmt as Node) ?? {}, scope, scope.ctes);
      break;
    case 'RangeFunction': {
      // Its columns are computed from its arguments (and a user-defined function may return anything).
      const flow = exprFlow(node.functions, scope);
      const coldefs = ((node.coldeflist as Node[] | undefined) ?? []).map((c) => String((c.ColumnDef as Node).colname));
      const colName = name ?? figureColname(((((node.functions as Node[])[0]?.List as Node | undefined)?.items as Node[] | undefined) ?? [])[0] ?? {});
      entries = [...(coldefs.length > 0 ? coldefs : [colName]).map((c): Col => ({ name: c, sources: flow.sources, wholeRow: flow.wholeRow, plain: false })), ...(flow.sources.size > 0 || flow.wholeRow ? [anyColumn] : [])];
      name ??= colName;
      break;
    }
    case 'JoinExpr': {
      const inner = newScope(scope.parent, scope.ctes);
      addFromItem(node.larg as Node, inner);
      addFromItem(node.rarg as Node, inner);
      for (const [k, v] of inner.items) scope.items.set(k, v);
      if (!name) {
        scope.order.push(...inner.order);
        return;
      }
      entries = inner.order.flatMap((i) => (i.kind === 'table' ? [tableStar] : i.entries));
      break;
    }
    case 'RangeTableSample':
      return addFromItem(node.relation as Node, scope);
    default:
      entries = [anyColumn];
  }
  const resolved: Item = entries ? { kind: 'rows', entries: colnames ? rename(entries, colnames) : entries } : { kind: 'table' };
  if (name !== undefined) scope.items.set(name, resolved);
  scope.order.push(resolved);
}

function lookup(scope: Scope | undefined, name: string): Item | undefined {
  for (let s = scope; s; s = s.parent) {
    const item = s.items.get(name);
    if (item) return item;
  }
  return undefined;
}

interface Flow {
  sources: Set<string>;
  wholeRow: boolean;
  /** The expression is a column of a table, by this name. */
  plain?: string;
}

/** Every column (and whole row) whose value can flow into the expression's value. */
function exprFlow(root: unknown, scope: Scope): Flow {
  const flow: Flow = { sources: new Set(), wholeRow: false };
  const top = (root as Node | undefined)?.ColumnRef as Node | undefined;
  walkTree(root, (n, push) => {
    if (n.ColumnRef) {
      const plain = columnRef(n.ColumnRef as Node, scope, flow);
      if (n.ColumnRef === top && plain) flow.plain = plain;
      return false;
    }
    if (n.SubLink) {
      const link = n.SubLink as Node;
      if (link.testexpr) push(link.testexpr);
      if (link.subLinkType === 'EXISTS_SUBLINK') return false;
      const sub = (link.subselect as Node).SelectStmt as Node;
      for (const e of selectEntries(sub, scope, scope.ctes)) addEntry(e, flow);
      return false;
    }
    const call = n.FuncCall as Node | undefined;
    if (call) {
      const fname = (call.funcname as Node[]).map(sval);
      const risks = functionRisks(fname as string[]);
      // Only the built-in count counts: an aggregate the database or the session defines
      // under that name (`create aggregate count(text) (sfunc = textcat, stype = text)`)
      // returns whatever it was given.
      if (fname[fname.length - 1] === 'count' && (fname.length === 1 || (fname.length === 2 && fname[0] === 'pg_catalog')) && risks.length === 0) return false;
      if (risks.includes('unknown-tables')) flow.wholeRow = true;
    }
    return true;
  });
  return flow;
}

function addEntry(e: Entry, flow: Flow): void {
  if ('star' in e || 'any' in e) flow.wholeRow = true;
  else {
    for (const s of e.sources) flow.sources.add(s);
    if (e.wholeRow) flow.wholeRow = true;
  }
}

/** Adds a column reference's sources to `flow`; returns its name when it is a plain table column. */
function columnRef(ref: Node, scope: Scope, flow: Flow): string | undefined {
  const fields = (ref.fields as Node[]).map((f) => ('A_Star' in f ? '*' : sval(f) ?? ''));
  const last = fields[fields.length - 1]!;
  if (last === '*') {
    // rel.* inside an expression (row_to_json(u.*)): the whole row.
    const item = fields.length > 1 ? lookup(scope, fields[fields.length - 2]!) : undefined;
    if (item?.kind === 'rows') for (const e of item.entries) addEntry(e, flow);
    else flow.wholeRow = true;
    return undefined;
  }
  if (fields.length === 1) {
    // `u`: a column named u, or the whole row of relation u (PostgreSQL tries the column first).
    const whole = lookup(scope, last);
    if (whole?.kind === 'table') flow.wholeRow = true;
    if (whole?.kind === 'rows') for (const e of whole.entries) addEntry(e, flow);
    flow.sources.add(last);
    let plain = whole === undefined;
    for (let s: Scope | undefined = scope; s; s = s.parent) {
      for (const item of s.order) {
        if (item.kind !== 'rows') continue;
        for (const e of item.entries) {
          if ('any' in e) { flow.wholeRow = true; plain = false; }
          else if (!('star' in e) && e.name === last) { addEntry(e, flow); if (!e.plain) plain = false; }
        }
      }
    }
    return plain ? last : undefined;
  }
  flow.sources.add(last);
  const item = lookup(scope, fields[fields.length - 2]!);
  if (item?.kind !== 'rows') return last;
  let plain = true;
  for (const e of item.entries) {
    if ('any' in e) { flow.wholeRow = true; plain = false; }
    else if (!('star' in e) && e.name === last) { addEntry(e, flow); if (!e.plain) plain = false; }
  }
  return plain ? last : undefined;
}

/** UNION and co: by position when both sides' widths are known. */
function combine(left: readonly Entry[], right: readonly Entry[]): readonly Entry[] {
  const known = (es: readonly Entry[]) => es.every((e) => !('star' in e) && !('any' in e));
  if (known(left) && known(right) && left.length === right.length) {
    return left.map((l, i) => {
      const a = l as Col;
      const b = right[i] as Col;
      return { name: a.name, sources: new Set([...a.sources, ...b.sources]), wholeRow: a.wholeRow || b.wholeRow, plain: a.plain && b.plain && a.name === b.name };
    });
  }
  // The result takes the left branch's names and the right's values by position: past a
  // `*` (width unknown) a right-hand value, even a plain column (`select * from orders
  // union select id, email from users`), may land under any left-hand name.
  return [anyColumn];
}

function rename(entries: readonly Entry[], colnames: string[] | undefined): readonly Entry[] {
  if (!colnames) return entries;
  const out: Entry[] = [];
  let i = 0;
  let untraceable = false;
  for (const e of entries) {
    if ('star' in e) untraceable = true; // a table's width is unknown: later names land anywhere
    else if ('any' in e || i >= colnames.length) out.push(e);
    else {
      const name = colnames[i++]!;
      out.push(name === e.name ? e : { name, sources: new Set([...e.sources, e.name]), wholeRow: e.wholeRow, plain: false });
    }
  }
  if (!untraceable) return out;
  return [...out, ...colnames.slice(i).map((c): Col => ({ name: c, sources: emptySet, wholeRow: true, plain: false })), anyColumn];
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
