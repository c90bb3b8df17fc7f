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
//   upstream_failed: a session is never run without knowing the shadowed names.

import { GatehouseError } from '../../errors/index.js';
import { builtinFunctionNames } from './builtin-functions.js';
import { cstring, message, parseDataRow, parseNoticeFields } from './codec.js';
import type { UpstreamSession } from './forward.js';

/** How long one login's answer serves the next logins of the same config. */
export const catalogTtlMs = 10_000;

// Names of functions (and procedures, aggregates) outside pg_catalog and
// information_schema; the ones that are built-in names are kept (filtered here, so the
// list of built-ins is the gateway's, the one inspection uses).
const catalogQuery =
  "select distinct p.proname from pg_catalog.pg_proc p where p.pronamespace operator(pg_catalog.<>) 'pg_catalog'::pg_catalog.regnamespace and p.pronamespace operator(pg_catalog.<>) 'information_schema'::pg_catalog.regnamespace";

const cache = new Map<string, { readonly names: ReadonlySet<string>; readonly at: number }>();

/** The built-in names that functions outside pg_catalog shadow on this upstream (cached per `key`). */
export async function shadowedBuiltins(upstream: UpstreamSession, key: string, now: number = Date.now()): Promise<ReadonlySet<string>> {
  const hit = cache.get(key);
  if (hit && now - hit.at < catalogTtlMs) return hit.names;
  const names = await readCatalog(upstream);
  cache.set(key, { names, at: now });
  // Bounded: a config per connection; the bound is a safeguard.
  if (cache.size > 1000) cache.delete(cache.keys().next().value!);
  return names;
}

/** Forgets every cached answer (tests). */
export function clearFunctionCatalog(): void {
  cache.clear();
}

async function readCatalog(upstream: UpstreamSession): Promise<ReadonlySet<string>> {
  upstream.socket.write(message('Q', cstring(catalogQuery)));
  const names = new Set<string>();
  let failure: string | undefined;
  for (;;) {
    const frame = await upstream.source.read();
    switch (frame.type) {
      case 'T': // RowDescription
      case 'C': // CommandComplete
      case 'N': // NoticeResponse
      case 'S': // ParameterStatus
        break;
      case 'D': {
        const value = parseDataRow(frame.body)[0];
        const name = value ? value.toString('utf8') : undefined;
        if (name !== undefined && builtinFunctionNames.has(name)) names.add(name);
        break;
      }
      case 'E': {
        const fields = parseNoticeFields(frame.body);
        failure = `${fields.get('C') ?? ''} ${fields.get('M') ?? ''}`.trim();
        break;
      }
      case 'Z':
        if (failure !== undefined) throw catalogFailed(failure);
        return names;
      default:
        throw catalogFailed(`unexpected message '${frame.type}'`);
    }
  }
}

function catalogFailed(detail: string): GatehouseError {
  return new GatehouseError('upstream_failed', {
    message: 'The gateway could not read the database\'s function catalog (which functions share a name with a built-in), so the session was not opened.',
    detail: `function catalog query: ${detail}`,
  });
}
