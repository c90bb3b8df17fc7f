// Values a statement hands to a built-in that keeps or sends them where they are read
// back unmasked: a notification's payload (pg_notify), a setting (set_config, then
// current_setting or SHOW), a large object, a sequence, a logical decoding message.
// They are stores (derive-columns.ts): decide-statement.ts refuses one that carries a
// masked column's value. Enforces:
// - a call anywhere in the statement counts (a WHERE clause, a subquery, RETURNING);
// - only the argument the function keeps is traced; its column references are its
//   sources, and a `*`, a subquery, a user-defined function or a name that may stand for
//   a whole row (a relation, alias or CTE of the statement) may carry any column.

import type { StoredColumn } from './derive-columns.js';
import { functionRisks } from './function-calls.js';
import { sval, walkTree, type Node } from './parse-tree-names.js';

/**
 * Built-in functions that keep or send a value where it is read back unmasked, by the
 * index of the argument they keep: a notification's payload reaches every listener, a
 * setting is read back with current_setting() or SHOW (and application_name is reported
 * to the client), a large object with lo_get(), a sequence's value with currval().
 */
const keepingFunctions: ReadonlyMap<string, { readonly arg: number; readonly target: string }> = new Map([
  ['pg_notify', { arg: 1, target: 'a notification payload (pg_notify)' }],
  ['set_config', { arg: 1, target: 'a session setting (set_config)' }],
  ['lo_from_bytea', { arg: 1, target: 'a large object (lo_from_bytea)' }],
  ['lo_put', { arg: 2, target: 'a large object (lo_put)' }],
  ['setval', { arg: 1, target: 'a sequence (setval)' }],
  ['pg_logical_emit_message', { arg: 2, target: 'a logical decoding message (pg_logical_emit_message)' }],
]);

/**
 * Values a statement hands to a keeping function, anywhere in it. The value's column
 * references are its sources; a `*`, a subquery, a user-defined function or a name that
 * may be a whole row (a relation or alias of the statement) may carry any column.
 */
export function keptByFunctions(root: Node): StoredColumn[] {
  const relations = new Set<string>();
  const kept: { value: unknown; target: string }[] = [];
  walkTree(root, (n) => {
    // A relation's name, an alias (of a table, subquery, function or join), a CTE's name.
    for (const name of [n.relname, (n.alias as Node | undefined)?.aliasname, n.ctename]) if (typeof name === 'string') relations.add(name);
    const call = n.FuncCall as Node | undefined;
    if (call) {
      const fname = (call.funcname as Node[]).map(sval);
      const keeps = keepingFunctions.get(String(fname[fname.length - 1]));
      const value = (call.args as Node[] | undefined)?.[keeps?.arg ?? 0];
      if (keeps && value !== undefined && (fname.length === 1 || fname[0] === 'pg_catalog')) kept.push({ value, target: keeps.target });
    }
  });
  return kept.flatMap(({ value, target }) => {
    const flow = valueFlow(value, relations);
    return flow.sources.size > 0 || flow.wholeRow ? [{ target, name: undefined, sources: [...flow.sources], wholeRow: flow.wholeRow }] : [];
  });
}

/** The columns an expression reads, outside any scope (`relations`: names that may stand for a whole row). */
function valueFlow(root: unknown, relations: ReadonlySet<string>): { sources: Set<string>; wholeRow: boolean } {
  const flow = { sources: new Set<string>(), wholeRow: false };
  walkTree(root, (n) => {
    const ref = n.ColumnRef as Node | undefined;
    if (ref) {
      const fields = ref.fields as Node[];
      const last = fields[fields.length - 1]!;
      if ('A_Star' in last || (fields.length === 1 && relations.has(String(sval(last))))) flow.wholeRow = true;
      else flow.sources.add(String(sval(last)));
      return false;
    }
    if (n.SubLink) flow.wholeRow = true;
    const call = n.FuncCall as Node | undefined;
    if (call && functionRisks((call.funcname as Node[]).map(sval) as string[]).includes('unknown-tables')) flow.wholeRow = true;
    return true;
  });
  return flow;
}
