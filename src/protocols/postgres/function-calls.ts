// What a function call in a statement may do beyond what the statement's text names.
// Enforces (each a risky shape, also `unknown-tables` unless said otherwise):
// - `sql-in-text`: a built-in that runs SQL given as a string or reads a table named in
//   a string (query_to_xml, table_to_xml, cursor_to_xml, ts_stat, ts_rewrite …) or
//   reads every change in the database (logical decoding);
// - `remote-server`: dblink, which runs SQL text on another server (or this one);
// - `server-file`: reads or writes files on the database server (pg_read_file, lo_import …);
//   a function that reads a file's content is `unknown-tables` too: a table's data file
//   (`pg_read_binary_file(pg_relation_filepath('payroll'))`) holds its rows; one that
//   lists, stats or writes files is not;
// - `user-function`: any function that is not a PostgreSQL built-in (by name, or not in
//   pg_catalog): its body may read or write any table; so is an unqualified call of a
//   built-in's name that the session's database shadows (function-catalog.ts: an
//   overload elsewhere may be the one picked), while describing under `withShadowed`.

import { builtinFunctionNames } from './builtin-functions.js';

const sqlInText = new Set([
  'query_to_xml', 'query_to_xmlschema', 'query_to_xml_and_xmlschema',
  'table_to_xml', 'table_to_xmlschema', 'table_to_xml_and_xmlschema',
  'cursor_to_xml', 'cursor_to_xmlschema',
  'schema_to_xml', 'schema_to_xmlschema', 'schema_to_xml_and_xmlschema',
  'database_to_xml', 'database_to_xmlschema', 'database_to_xml_and_xmlschema',
  'ts_stat', 'ts_rewrite',
  'pg_logical_slot_get_changes', 'pg_logical_slot_peek_changes', 'pg_logical_slot_get_binary_changes', 'pg_logical_slot_peek_binary_changes',
]);

// Functions that read a file's content (a large object imported is read back with lo_get).
const serverFileReads = new Set(['pg_read_file', 'pg_read_file_old', 'pg_read_binary_file', 'lo_import']);

const serverFile = new Set([
  'pg_stat_file', 'pg_ls_dir', 'pg_ls_logdir', 'pg_ls_waldir', 'pg_ls_tmpdir',
  'pg_ls_archive_statusdir', 'pg_ls_logicalmapdir', 'pg_ls_logicalsnapdir', 'pg_ls_replslotdir', 'lo_export',
  // adminpack, an extension
  'pg_file_write', 'pg_file_rename', 'pg_file_unlink', 'pg_file_sync', 'pg_logdir_ls',
]);

// Built-in names the database shadows, for the describe running now. Set only around a
// synchronous describe (withShadowed), so the shared cache never holds a session's view.
let shadowed: ReadonlySet<string> | undefined;

/** Runs `describe` with unqualified calls of `names` taken as user-defined functions. */
export function withShadowed<T>(names: ReadonlySet<string>, describe: () => T): T {
  const before = shadowed;
  shadowed = names;
  try {
    return describe();
  } finally {
    shadowed = before;
  }
}

/** An unqualified call of this name is taken as the built-in (recorded as a fact, `calls`). */
export function callsBuiltin(names: readonly string[]): boolean {
  return names.length === 1 && builtinFunctionNames.has(names[0]!);
}

/** Risky shapes of a call to the function named `names` (as written: [schema,] name). */
export function functionRisks(names: readonly string[]): readonly string[] {
  const name = names[names.length - 1] ?? '';
  const schema = names.length > 1 ? names[names.length - 2] : undefined;
  if (sqlInText.has(name)) return sqlInTextRisks;
  if (name.startsWith('dblink')) return remoteRisks;
  if (serverFileReads.has(name)) return serverFileReadRisks;
  if (serverFile.has(name)) return serverFileRisks;
  const builtin = schema === undefined ? builtinFunctionNames.has(name) && !shadowed?.has(name) : schema === 'pg_catalog' ? builtinFunctionNames.has(name) : schema === 'information_schema';
  return builtin ? none : userRisks;
}

const none: readonly string[] = [];
const sqlInTextRisks = ['sql-in-text', 'unknown-tables'];
const remoteRisks = ['remote-server', 'unknown-tables'];
const serverFileRisks = ['server-file'];
const serverFileReadRisks = ['server-file', 'unknown-tables'];
const userRisks = ['user-function', 'unknown-tables'];
