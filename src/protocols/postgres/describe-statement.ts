// One statement's parse tree to its facts (statement-facts.ts): class, tables, risky
// shapes, what it prepares, executes, defines, reads and stores. Enforces:
// - EXPLAIN ANALYZE and PREPARE take the class of the statement they run or prepare;
// - a statement that runs others inside it (a data-modifying WITH, COPY (query),
//   CREATE TABLE AS, CREATE SCHEMA's elements) takes the strictest class of them all,
//   and their risky shapes, reads and stores;
// - COPY to or from a server file or a program, DO, CALL and a function body are
//   risky shapes (and unknown-tables where what they read is unknown);
// - SET client_encoding to other than UTF8 (or SQL_ASCII), and standard_conforming_strings
//   off, are unsupported: inspection could no longer read the SQL as the database does.

import { builtinFunctionNames } from './builtin-functions.js';
import { deriveColumns } from './derive-columns.js';
import { callsBuiltin, functionRisks } from './function-calls.js';
import { paramWrites } from './masked-writes.js';
import { stringList, type Node } from './parse-tree-names.js';
import { roleLoginChange } from './role-login.js';
import { mayChangeSearchPath } from './search-path.js';
import { classOf, strictestClass } from './statement-classes.js';
import type { CopyServerForm, StatementFacts } from './statement-facts.js';
import { collectTables, foreignTables, inheritance, isColumnStatistics, modifying, readTables } from './statement-tables.js';

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

/** The facts of one statement (`stmt`: `{ Kind: node }` of the parse tree), whose own text is `text`. */
export function describeStatement(stmt: Node, text: string): StatementFacts {
  const [kind, node] = Object.entries(stmt)[0] as [string, Node];
  const tables = new Set<string>();
  const riskySet = new Set<string>();
  const calls = new Set<string>();
  const ctes = new Set<string>();
  const executes = collectTables(stmt, tables, riskySet, calls, ctes);
  const defines = definedName(kind, node);
  const inherits = inheritance(kind, node);
  const risky: string[] = [];
  let cls = classOf(kind);
  let copyOut = false;
  let copyServer: CopyServerForm | undefined;
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
      // DROP SCHEMA … CASCADE drops every relation in it, none of them named.
      if (node.removeType === 'OBJECT_SCHEMA' && node.behavior === 'DROP_CASCADE') risky.push('schema-change', 'unknown-tables');
      break;
    }
    case 'DropOwnedStmt':
      // DROP OWNED BY r drops every relation r owns in the database, none of them named.
      risky.push('owned-objects', 'unknown-tables');
      break;
    case 'RenameStmt':
      // ALTER SCHEMA hr RENAME TO hr2 renames every relation in it (hr.salaries is
      // hr2.salaries from then on) without naming one: a rule on hr.salaries would not
      // hold on the next statement, so its tables are unknown.
      if (node.renameType === 'OBJECT_SCHEMA') risky.push('schema-change', 'unknown-tables');
      break;
    case 'CopyStmt':
      if (!node.is_from) copyOut = true;
      if (node.filename !== undefined || node.is_program) {
        risky.push('copy-server-file');
        copyServer = `${node.is_from ? 'from' : 'to'}-${node.is_program ? 'program' : 'file'}`;
      }
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
  // A role's password, login, expiry or name: the gateway's own upstream role among them (role-login.ts).
  const roleLogin = roleLoginChange(kind, node);
  if (roleLogin && !roleLogin.settings) riskySet.add('role-login');
  for (const r of riskySet) if (!risky.includes(r)) risky.push(r);
  // search_path (and "$user" in it: the role) decides which schema a bare name is.
  const searchPath = mayChangeSearchPath(stmt, kind, node, cls, tables, new Set(risky));
  const revertsSettings = kind === 'TransactionStmt' && node.kind === 'TRANS_STMT_ROLLBACK_TO';
  const writes = paramWrites(kind, node);
  return {
    class: cls,
    tables: [...tables],
    risky,
    text,
    ...(copyOut ? { copyOut } : {}),
    ...(copyServer !== undefined ? { copyServer } : {}),
    ...(unsupported !== undefined ? { unsupported } : {}),
    ...(prepares !== undefined ? { prepares } : {}),
    ...(executes !== undefined ? { executes } : {}),
    ...(deallocates !== undefined ? { deallocates } : {}),
    ...(derived !== undefined ? { derived } : {}),
    ...(calls.size > 0 ? { calls: [...calls] } : {}),
    ...(defines !== undefined ? { defines: [defines] } : {}),
    ...(cursor !== undefined ? { cursor } : {}),
    ...(fetches !== undefined ? { fetches } : {}),
    ...(inherits !== undefined ? { inherits } : {}),
    ...(ctes.size > 0 ? { ctes: [...ctes] } : {}),
    ...(searchPath ? { searchPath: true } : {}),
    ...(revertsSettings ? { revertsSettings: true } : {}),
    ...(roleLogin ? { roleLogin } : {}),
    ...(writes.length > 0 ? { writes } : {}),
    // Code whose tables are unknown (a function called, a DO block, a foreign schema
    // imported whole) may read any; a function's body, created, runs only when called.
    ...((reads.size > 0 || (risky.includes('unknown-tables') && kind !== 'CreateFunctionStmt')) && cls !== 'select' ? { reads: [...reads] } : {}),
  };
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
