// The settings a client asks for at login: startup parameters, and the `-c name=value`
// and `--name=value` settings of `options` (libpq's PGOPTIONS). Enforces:
// - the ordinary session settings in `passedSettings` (formatting, timeouts, planner and
//   memory knobs, transaction defaults: none changes what policy, inspection or masking
//   see) are passed on to the database, also when set in `options`;
// - every other setting is refused at login (FATAL sql_not_supported, naming it), never
//   dropped: dropped, the client would run without what it asked for and not know it.
//   Those that would change what the gateway sees say why (`search_path`, `role`,
//   `session_authorization`, `standard_conforming_strings` off, `backslash_quote`,
//   `session_replication_role`, `bytea_output`); the rest may be SET after connecting,
//   where the statement is inspected and decided like any other;
// - so is a word of `options` that is no setting (`-e`, `-d 5`: server switches);
// - `user`, `database`, `options`, `replication` (startup.ts) and protocol extension
//   parameters (`_pq_.*`, which the gateway does not take up) are no settings.

import { GatehouseError } from '../../errors/index.js';

/** Canonical names of the settings passed on; names are matched in any case, as PostgreSQL matches them (libpq sends PGTZ and PGDATESTYLE as `timezone` and `datestyle`). */
const passedSettings = new Map(
  [
    // How values are written and read; client_encoding other than UTF8 is refused by the listener.
    'application_name', 'client_encoding', 'DateStyle', 'TimeZone', 'IntervalStyle', 'extra_float_digits', 'lc_monetary', 'lc_numeric', 'lc_time', 'escape_string_warning',
    // Which of the database's notices it sends (the gateway masks those it does).
    'client_min_messages',
    // Bounds of the caller's own session (node-postgres sends its options of these names).
    'statement_timeout', 'lock_timeout', 'idle_in_transaction_session_timeout', 'idle_session_timeout', 'transaction_timeout',
    // The caller's own transactions: dropped, a session asked read-only could write.
    'default_transaction_read_only', 'default_transaction_isolation', 'default_transaction_deferrable', 'synchronous_commit',
    // Planner and memory: how a statement runs, not what it reads or returns.
    'work_mem', 'maintenance_work_mem', 'temp_buffers', 'hash_mem_multiplier', 'jit', 'jit_above_cost', 'jit_inline_above_cost', 'jit_optimize_above_cost', 'plan_cache_mode',
    'random_page_cost', 'seq_page_cost', 'cpu_tuple_cost', 'cpu_index_tuple_cost', 'cpu_operator_cost', 'effective_cache_size', 'effective_io_concurrency', 'default_statistics_target',
    'cursor_tuple_fraction', 'from_collapse_limit', 'join_collapse_limit', 'geqo', 'geqo_threshold', 'constraint_exclusion', 'max_parallel_workers_per_gather', 'parallel_setup_cost',
    'parallel_tuple_cost', 'enable_bitmapscan', 'enable_gathermerge', 'enable_hashagg', 'enable_hashjoin', 'enable_incremental_sort', 'enable_indexonlyscan', 'enable_indexscan',
    'enable_material', 'enable_memoize', 'enable_mergejoin', 'enable_nestloop', 'enable_parallel_append', 'enable_parallel_hash', 'enable_partition_pruning',
    'enable_partitionwise_aggregate', 'enable_partitionwise_join', 'enable_seqscan', 'enable_sort', 'enable_tidscan',
    // The socket between the gateway and the database.
    'tcp_keepalives_idle', 'tcp_keepalives_interval', 'tcp_keepalives_count', 'tcp_user_timeout',
  ].map((name) => [name.toLowerCase(), name]),
);

const notSettings = new Set(['user', 'database', 'options', 'replication']);

/** Why a setting that would change what the gateway sees is refused; `run SET after connecting` where that is inspected. */
const refusedBecause: Record<string, (value: string) => string | undefined> = {
  role: () => 'it would run the session as another database role than the gateway logs in as, which policy never sees. Connect without it and run SET ROLE after connecting, which policy decides',
  session_authorization: () => 'it would run the session as another database role than the gateway logs in as, which policy never sees. Connect without it and run SET SESSION AUTHORIZATION after connecting, which policy decides',
  // The gateway logs in with it on; a client asking for on gets what it asked for.
  standard_conforming_strings: (value) => (/^(on|true|yes|1|t|y)$/i.test(value.trim()) ? undefined : 'a backslash would then escape inside string literals, so the database would read other statements than the gateway inspects. Only SQL with standard-conforming strings can be inspected: connect without it'),
  backslash_quote: () => 'it changes how the database reads string literals, so the database could read other statements than the gateway inspects: connect without it',
  session_replication_role: () => "it would turn the database's triggers and rules off for the session: connect without it",
  bytea_output: () => 'it changes how values are written in results, which masking reads: connect without it',
};

/** The settings of a startup packet, in order: its own parameters, then those of `options`; `word` for an options word that is no setting. */
function requestedSettings(params: ReadonlyMap<string, string>): { name: string; value: string; word?: string }[] {
  const settings: { name: string; value: string; word?: string }[] = [];
  for (const [name, value] of params) {
    const lower = name.toLowerCase();
    if (lower === 'options') {
      for (const entry of optionsWords(value)) settings.push(entry);
    } else if (!notSettings.has(lower) && !lower.startsWith('_pq_.')) settings.push({ name, value });
  }
  return settings;
}

/**
 * The startup parameters passed on to the database, by their canonical names. Those of
 * them set in `options` count too, as the database would read them; a parameter of its
 * own wins over `options`, as in PostgreSQL. The login is refused first when any other
 * setting is asked for (refusedStartupSetting).
 */
export function passedStartupParams(params: ReadonlyMap<string, string>): Record<string, string> {
  const passed: Record<string, string> = {};
  const fromOptions: Record<string, string> = {};
  for (const [name, value] of params) {
    if (name.toLowerCase() === 'options') {
      for (const [option, optionValue] of settingsInOptions(value)) {
        const canonical = passedSettings.get(option.toLowerCase());
        // The last one wins, as the database reads them in order.
        if (canonical !== undefined) fromOptions[canonical] = optionValue;
      }
      continue;
    }
    const canonical = passedSettings.get(name.toLowerCase());
    if (canonical !== undefined) passed[canonical] = value;
  }
  return { ...fromOptions, ...passed };
}

/**
 * The refusal of a login asking for a setting the gateway does not pass on (FATAL
 * sql_not_supported, 0A000), naming it and saying what to do; undefined when every
 * setting asked for is passed on.
 */
export function refusedStartupSetting(params: ReadonlyMap<string, string>): GatehouseError | undefined {
  for (const { name, value, word } of requestedSettings(params)) {
    if (word !== undefined) {
      return new GatehouseError('sql_not_supported', { message: `The startup options word ${JSON.stringify(word)} is not a setting (-c name=value or --name=value) and is not passed on through the gateway: connect without it.` });
    }
    const lower = name.toLowerCase();
    if (lower === 'search_path') {
      // JDBC currentSchema, Npgsql Search Path, pgx and asyncpg runtime parameters, -c search_path=….
      return new GatehouseError('sql_not_supported', {
        message: `The startup parameter search_path (${JSON.stringify(value)}) is not passed on through the gateway, and without it statements would run against other schemas' tables than asked for: connect without it (JDBC currentSchema, Npgsql Search Path, a search_path runtime parameter or -c search_path in options) and run SET search_path after connecting.`,
      });
    }
    if (passedSettings.has(lower)) continue;
    const why = refusedBecause[lower]?.(value);
    if (why === undefined && lower in refusedBecause) continue;
    return new GatehouseError('sql_not_supported', {
      message: why !== undefined
        ? `The startup parameter ${name} (${JSON.stringify(value)}) is refused by the gateway: ${why}.`
        : `The startup parameter ${name} (${JSON.stringify(value)}) is not one the gateway passes on at login (docs/postgres.md, "Startup parameters"): connect without it and run SET ${name} after connecting, where the gateway inspects it.`,
    });
  }
  return undefined;
}

/**
 * The `-c name=value` and `--name=value` settings of a startup `options` string, split as
 * the database splits it (pg_split_opts: words at unescaped whitespace, a backslash
 * escaping the next character; ParseLongOption: '-' in a name is '_').
 */
export function settingsInOptions(options: string): [string, string][] {
  return optionsWords(options).flatMap((entry) => (entry.word === undefined ? [[entry.name, entry.value] as [string, string]] : []));
}

/** The words of an `options` string: each a setting, or (`word`) a word that is none. */
function optionsWords(options: string): { name: string; value: string; word?: string }[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < options.length; i++) {
    const c = options[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v') {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (c === '\\' && i + 1 < options.length) word = (word ?? '') + options[++i];
    else word = (word ?? '') + c;
  }
  if (word !== undefined) words.push(word);
  const entries: { name: string; value: string; word?: string }[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    const setting = w === '-c' ? words[++i] : w.startsWith('--') ? w.slice(2) : w.startsWith('-c') ? w.slice(2) : undefined;
    const eq = setting?.indexOf('=') ?? -1;
    if (setting !== undefined && eq > 0) entries.push({ name: setting.slice(0, eq).replaceAll('-', '_'), value: setting.slice(eq + 1) });
    else entries.push({ name: '', value: '', word: w === '-c' && setting !== undefined ? `-c ${setting}` : w });
  }
  return entries;
}
