// What a function call in a statement may do beyond what the statement's text names.
// Enforces (each a risky shape; all but `server-file` also `unknown-tables`):
// - `sql-in-text`: a built-in that runs SQL given as a string or reads a table named in
//   a string (query_to_xml, table_to_xml, cursor_to_xml, ts_stat, ts_rewrite …) or
//   reads every change in the database (logical decoding);
// - `remote-server`: dblink, which runs SQL text on another server (or this one);
// - `server-file`: reads or writes files on the database server (pg_read_file, lo_import …);
// - `user-function`: any function that is not a PostgreSQL built-in (by name, or not in
//   pg_catalog): its body may read or write any table. Names only: an overload of a
//   built-in's name in another schema, picked by argument types or search_path, is not
//   seen (docs/postgres.md says so).

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

const serverFile = new Set([
  'pg_read_file', 'pg_read_file_old', 'pg_read_binary_file', 'pg_stat_file', 'pg_ls_dir', 'pg_ls_logdir', 'pg_ls_waldir', 'pg_ls_tmpdir',
  'pg_ls_archive_statusdir', 'pg_ls_logicalmapdir', 'pg_ls_logicalsnapdir', 'pg_ls_replslotdir', 'lo_import', 'lo_export',
  // adminpack, an extension
  'pg_file_write', 'pg_file_rename', 'pg_file_unlink', 'pg_file_sync', 'pg_logdir_ls',
]);

/** Risky shapes of a call to the function named `names` (as written: [schema,] name). */
export function functionRisks(names: readonly string[]): readonly string[] {
  const name = names[names.length - 1] ?? '';
  const schema = names.length > 1 ? names[names.length - 2] : undefined;
  if (sqlInText.has(name)) return sqlInTextRisks;
  if (name.startsWith('dblink')) return remoteRisks;
  if (serverFile.has(name)) return serverFileRisks;
  const builtin = schema === undefined || schema === 'pg_catalog' ? builtinFunctionNames.has(name) : schema === 'information_schema';
  return builtin ? none : userRisks;
}

const none: readonly string[] = [];
const sqlInTextRisks = ['sql-in-text', 'unknown-tables'];
const remoteRisks = ['remote-server', 'unknown-tables'];
const serverFileRisks = ['server-file'];
const userRisks = ['user-function', 'unknown-tables'];
