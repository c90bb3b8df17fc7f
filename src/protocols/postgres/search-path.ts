// Whether a statement may change which schema a bare table name stands for (its
// search_path, or the role whose name "$user" in it is). The session then looks each bare
// name up again when next named (table-catalog.ts searchPathChanged); a name in the same
// batch after it is unresolved, so decided as one whose tables are unknown (fail closed).
// PostgreSQL before 18 does not report search_path in ParameterStatus, so the gateway
// reads it off the statements. Enforces:
// - SET, SET LOCAL and RESET of search_path, role or session_authorization, RESET ALL,
//   DISCARD ALL;
// - a call of set_config (unqualified or pg_catalog's) whose setting name is one of those,
//   or is not a string literal (a parameter `$1`, an expression, a column): which
//   setting it changes cannot be known from the text. A literal naming another setting
//   (`set_config('app.tenant', $1, false)`, called on every request) changes nothing here;
// - an UPDATE of pg_settings (its rule calls set_config for each row it updates);
// - code the gateway does not see (a user-defined function, a procedure, a DO block, SQL
//   run from a string): its body may SET or set_config anything, for the session.
// Not seen: a trigger's, a view's or a default's function the statement runs unnamed
// (docs/postgres.md).

import { sval, walkTree, type Node } from './parse-tree-names.js';

/** Settings that decide the schema of a bare name ("$user" in search_path is the role's name). */
const pathSettings = new Set(['search_path', 'role', 'session_authorization']);

/** Risky shapes of code whose statements the gateway does not see (function-calls.ts, describe-statement.ts). */
const unseenCode = ['user-function', 'anonymous-code-block', 'sql-in-text'];

/**
 * Whether the statement `kind`/`node` (root `stmt`), of class `cls`, naming `tables`,
 * with risky shapes `risky`, may change search_path for the session.
 */
export function mayChangeSearchPath(stmt: Node, kind: string, node: Node, cls: string, tables: ReadonlySet<string>, risky: ReadonlySet<string>): boolean {
  if (kind === 'VariableSetStmt') return node.kind === 'VAR_RESET_ALL' || pathSettings.has(String(node.name).toLowerCase());
  if (kind === 'DiscardStmt') return node.target === 'DISCARD_ALL';
  if (unseenCode.some((r) => risky.has(r))) return true;
  if (cls !== 'select' && (tables.has('pg_settings') || tables.has('pg_catalog.pg_settings'))) return true;
  return setsPathSetting(stmt);
}

/**
 * The text of a statement whose search_path fact depends on a literal (the setting name
 * of a set_config call) may not share a cached inspection with texts of its shape
 * (inspect-sql.ts): `set_config('app.tenant', …)` and `set_config('search_path', …)`
 * differ only in a literal. A call names set_config in its text, or is written with a
 * U&"…" identifier, which is never cached by shape (sql-shape.ts).
 */
export function readsSettingName(text: string): boolean {
  return /set_config/i.test(text);
}

/** A set_config call anywhere in the tree that may set a path setting. */
function setsPathSetting(stmt: Node): boolean {
  let found = false;
  walkTree(stmt, (n) => {
    if (found) return false;
    const call = n.FuncCall as Node | undefined;
    if (!call) return true;
    const fname = ((call.funcname as Node[] | undefined) ?? []).map(sval);
    if (fname[fname.length - 1] === 'set_config' && (fname.length === 1 || (fname.length === 2 && fname[0] === 'pg_catalog'))) {
      const name = settingName((call.args as Node[] | undefined) ?? []);
      if (name === undefined || pathSettings.has(name.toLowerCase())) found = true;
    }
    return true;
  });
  return found;
}

/** The literal setting name of set_config's arguments (positional first, or `setting_name =>`); undefined when not a literal. */
function settingName(args: readonly Node[]): string | undefined {
  const named = args.find((a) => (a.NamedArgExpr as Node | undefined)?.name === 'setting_name');
  const arg = named ? ((named.NamedArgExpr as Node).arg as Node | undefined) : args[0] && !args[0].NamedArgExpr ? args[0] : undefined;
  const value = (arg?.A_Const as Node | undefined)?.sval as Node | undefined;
  return typeof value?.sval === 'string' ? value.sval : undefined;
}
