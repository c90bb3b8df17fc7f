// Values a statement hands to a built-in that keeps or sends them where they are read
// back unmasked: a notification's payload (pg_notify), a setting (set_config, then
// current_setting or SHOW), a large object, a sequence, a logical decoding message, an
// advisory lock's key (pg_locks), a replication origin or slot.
// They are stores (derive-columns.ts): decide-statement.ts refuses one that carries a
// masked column's value. Enforces:
// - a call anywhere in the statement counts (a WHERE clause, a subquery, RETURNING);
// - every argument of the call is traced; its column references are its sources, and a
//   `*`, a subquery, a user-defined function or a name that may stand for a whole row
//   (a relation, alias or CTE of the statement) may carry any column;
// - a definition made of functions keeps what it is given on every later use: a
//   trigger's arguments (column names its function may copy), an aggregate, operator or
//   cast whose function keeps values, runs SQL text, or is the database's own.

import type { StoredColumn } from './derive-columns.js';
import { functionRisks } from './function-calls.js';
import { names, sval, walkTree, type Node } from './parse-tree-names.js';

/**
 * Built-in functions that keep or send a value where it is read back unmasked: a
 * notification's payload reaches every listener, a setting is read back with
 * current_setting() or SHOW (its name with pg_settings; application_name is reported to
 * the client), a large object with lo_get() (its OID, size and offsets with
 * pg_largeobject_metadata and lo_get), a sequence's value with currval(), an advisory
 * lock's key with pg_locks (classid, objid: any session), a replication origin's or
 * slot's name with pg_replication_origin and pg_replication_slots. Every argument is
 * traced: most keep more than one (a lock's two keys, a large object's OID and data),
 * and named notation (`slot_name => …`) reorders them.
 */
const keepingFunctions: ReadonlyMap<string, string> = new Map([
  ['pg_notify', 'a notification payload (pg_notify)'],
  ['set_config', 'a session setting (set_config)'],
  ['lo_from_bytea', 'a large object (lo_from_bytea)'],
  ['lo_put', 'a large object (lo_put)'],
  ['lo_create', 'a large object\'s OID (lo_create)'],
  ['lowrite', 'a large object (lowrite)'],
  ['lo_truncate', 'a large object\'s size (lo_truncate)'],
  ['lo_truncate64', 'a large object\'s size (lo_truncate64)'],
  ['setval', 'a sequence (setval)'],
  ['pg_logical_emit_message', 'a logical decoding message (pg_logical_emit_message)'],
  ...['lock', 'lock_shared', 'xact_lock', 'xact_lock_shared'].flatMap((kind) => [`pg_advisory_${kind}`, `pg_try_advisory_${kind}`]).map((name) => [name, `an advisory lock key, which pg_locks shows (${name})`] as const),
  ['pg_replication_origin_create', 'a replication origin (pg_replication_origin_create)'],
  ['pg_replication_origin_advance', 'a replication origin\'s position (pg_replication_origin_advance)'],
  ['pg_replication_origin_xact_setup', 'a replication origin\'s position (pg_replication_origin_xact_setup)'],
  ['pg_create_physical_replication_slot', 'a replication slot (pg_create_physical_replication_slot)'],
  ['pg_create_logical_replication_slot', 'a replication slot (pg_create_logical_replication_slot)'],
  ['pg_copy_physical_replication_slot', 'a replication slot (pg_copy_physical_replication_slot)'],
  ['pg_copy_logical_replication_slot', 'a replication slot (pg_copy_logical_replication_slot)'],
  ['pg_create_restore_point', 'a WAL restore point (pg_create_restore_point)'],
  // random() after setseed(x) is the same sequence for the same x: another session
  // seeding each candidate value finds which one it was.
  ['setseed', 'the seed of random() (setseed)'],
]);

/** Whether the built-in `name` keeps or sends what it is given (an aggregate made of it does too). */
export function keepsValues(name: string): boolean {
  return keepingFunctions.has(name);
}

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
      const target = keepingFunctions.get(String(fname[fname.length - 1]));
      const args = (call.args as Node[] | undefined) ?? [];
      if (target !== undefined && (fname.length === 1 || fname[0] === 'pg_catalog')) for (const value of args) kept.push({ value, target });
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

/**
 * What a definition made of functions keeps, on every later use: a trigger's arguments,
 * an aggregate's or operator's support functions, a cast's function. Empty for other
 * statements.
 */
export function definitionStores(kind: string, node: Node): StoredColumn[] {
  const stores: StoredColumn[] = [];
  switch (kind) {
    case 'CreateTrigStmt': {
      // A trigger's arguments are strings its function reads as it likes; the built-in
      // tsvector_update_trigger(tsv, 'pg_catalog.simple', email) takes them as column
      // names and copies their words into another column, on every later write.
      const args = ((node.args as Node[] | undefined) ?? []).map(sval).filter((a): a is string => typeof a === 'string');
      const fn = ((node.funcname as Node[] | undefined) ?? []).map(sval).join('.');
      if (args.length > 0) stores.push({ target: `an argument of trigger ${String(node.trigname)} (its function ${fn} may copy the column's values into another column)`, name: undefined, sources: args, wholeRow: false });
      return stores;
    }
    case 'DefineStmt': {
      // An aggregate runs its support functions on every value it is given, an operator
      // its function on its operands: made of one that keeps them (`sfunc = set_config`,
      // `function = pg_notify`), of one that runs SQL text, or of a function of the
      // database's, it is a keeping function the gateway cannot see at its call
      // (`select agg(email) from users`, `select 'ch' ### email from users`).
      const what = node.kind === 'OBJECT_AGGREGATE' ? 'aggregate' : node.kind === 'OBJECT_OPERATOR' ? 'operator' : undefined;
      if (what === undefined) return stores;
      for (const d of (node.definition as Node[] | undefined) ?? []) {
        const def = d.DefElem as Node | undefined;
        const fn = ((def?.arg as Node | undefined)?.TypeName as Node | undefined)?.names;
        const support = what === 'aggregate' ? /func$/.test(String(def?.defname)) : def?.defname === 'function' || def?.defname === 'procedure';
        if (def && support && Array.isArray(fn)) keepingSupport(fn as Node[], `${what} ${names(node.defnames)?.join('.') ?? ''}`, String(def.defname), stores);
      }
      return stores;
    }
    case 'CreateCastStmt': {
      // A cast runs its function on every value cast (`email::int8` with a cast made of pg_advisory_lock).
      const fn = (node.func as Node | undefined)?.objname;
      if (Array.isArray(fn)) keepingSupport(fn as Node[], 'a cast', 'function', stores);
      return stores;
    }
  }
  return stores;
}

/** A support function (of an aggregate, operator, cast) that keeps values, runs SQL text, or is the database's: a store of anything. */
function keepingSupport(fn: Node[], what: string, role: string, stores: StoredColumn[]): void {
  const fname = fn.map(sval) as string[];
  if (functionRisks(fname).length === 0 && !keepsValues(fname[fname.length - 1]!)) return;
  stores.push({ target: `${what} (its ${role} ${fname.join('.')} may keep or send the values it is given)`, name: undefined, sources: [], wholeRow: true });
}

