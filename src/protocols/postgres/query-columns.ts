// A query's result columns traced through its parse tree (column-entries.ts): the
// scopes its FROM items open (tables, subqueries, CTEs, functions, joins), its target
// list, VALUES, and each expression's flow from the columns it reads; and the values an
// INSERT, UPDATE or MERGE (or a data-modifying CTE) stores under its target's names.
// Enforces:
// - a column reference resolves as PostgreSQL resolves it: a single name is a column
//   before it is a whole row (`u`), in this scope or an outer one;
// - a sublink's result columns flow into its value, except EXISTS (a boolean);
// - the built-in count(…) is a number about rows, not their values; a user-defined
//   function (unknown-tables) may return any column of its argument rows;
// - a FROM item this code does not know may carry any column.

import { functionRisks } from './function-calls.js';
import { figureColname, names, relName, sval, walkTree, type Node } from './parse-tree-names.js';
import { addEntry, anyColumn, combine, emptySet, lookup, newScope, rename, store, tableStar, type Col, type Entry, type Flow, type Item, type Scope, type StoredColumn } from './column-entries.js';

/** An INSERT, UPDATE, DELETE or MERGE: the columns of its RETURNING; the values it writes go to `stores`. */
export function dmlEntries(kind: string, node: Node, outer: Scope | undefined, ctes: ReadonlyMap<string, readonly Entry[]>, stores: StoredColumn[]): readonly Entry[] {
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

/** A SELECT's (or VALUES', or a set operation's) result columns; a data-modifying CTE's stores go to `stores`. */
export function selectEntries(sel: Node, outer: Scope | undefined, ctes: ReadonlyMap<string, readonly Entry[]>, stores?: StoredColumn[]): readonly Entry[] {
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
    const copyOf = flow.plain !== undefined && flow.plain !== name && !flow.wholeRow ? { copyOf: flow.plain } : {};
    out.push({ name, sources: flow.sources, wholeRow: flow.wholeRow, plain: flow.plain === name, ...copyOf });
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

/** Every column (and whole row) whose value can flow into the expression's value. */
export function exprFlow(root: unknown, scope: Scope): Flow {
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
