// Which functions on the database share a name with a PostgreSQL built-in: an overload
// the database may pick over pg_catalog's (by exact argument types, or search_path), so
// `select lower(1)` may run `public.lower(int)`, whose body can touch any table. Read at
// login, on the session's own upstream connection, before the client gets control.
// Enforces:
// - one catalog query, its names and operators schema-qualified (a table or operator
//   of the same name elsewhere cannot answer it); every message of its answer is consumed here: the client never sees it;
// - its answer is kept per connection config (connection, host, port, database, user)
//   for `catalogTtlMs`, so many short logins (pgbench -C) do not each pay it; a login
//   after that reads it again;
// - a failed query (an ErrorResponse, an unexpected message) refuses the login with
//   upstream_failed: a session is never run without knowing the shadowed names
//   (catalog-query.ts).

import { GatehouseError } from '../../errors/index.js';
import { builtinFunctionNames } from './builtin-functions.js';
import { CatalogCache, runCatalogQuery } from './catalog-query.js';
import type { UpstreamSession } from './forward.js';

const catalogQuery =
  "select distinct p.proname from pg_catalog.pg_proc p where p.pronamespace operator(pg_catalog.<>) 'pg_catalog'::pg_catalog.regnamespace and p.pronamespace operator(pg_catalog.<>) 'information_schema'::pg_catalog.regnamespace";

const cache = new CatalogCache<ReadonlySet<string>>();

/** The built-in names that functions outside pg_catalog shadow on this upstream (cached per `key`). */
export function shadowedBuiltins(upstream: UpstreamSession, key: string, now: number = Date.now()): Promise<ReadonlySet<string>> {
  return cache.get(key, async () => {
    const names = new Set<string>();
    await runCatalogQuery(upstream, catalogQuery, ([value]) => {
      const name = value ? value.toString('utf8') : undefined;
      if (name !== undefined && builtinFunctionNames.has(name)) names.add(name);
    }, catalogFailed);
    return names;
  }, now);
}

/** Forgets every cached answer (tests). */
export function clearFunctionCatalog(): void {
  cache.clear();
}

function catalogFailed(detail: string): GatehouseError {
  return new GatehouseError('upstream_failed', {
    message: 'The gateway could not read the database\'s function catalog (which functions share a name with a built-in), so the session was not opened.',
    detail: `function catalog query: ${detail}`,
  });
}
