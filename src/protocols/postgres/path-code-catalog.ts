// Whether the database holds code that may change the session's search_path (or its role,
// whose name "$user" in the path is) without the statement naming it: a trigger's, a
// view's, a rule's, a column default's, a policy's, a constraint's, an index
// expression's, an operator's or a cast's function, or a direct set_config call in one of
// those expressions. Read at login beside the other catalogs (catalog-query.ts), kept per
// connection config for `catalogTtlMs`. Enforces:
// - one catalog query, every name in it schema-qualified; a failed query refuses the
//   login (upstream_failed), as the other catalogs do;
// - conservative: a function outside pg_catalog and information_schema, not a member of
//   an extension, counts when it is not SQL or PL/pgSQL (C, PL/Python …: its body
//   cannot be read) or when its definition mentions set_config, search_path, role,
//   session_authorization, RESET, DISCARD or EXECUTE (dynamic SQL); so does any
//   expression of a user object (oid of a user object) that calls set_config (OID 2078);
// - false means none exists at login: the session then follows search_path from its
//   statements alone (search-path.ts);
// - such code created by another session after the login is noticed: before a statement
//   that may run code is decided, a session that knows of none takes the cached answer
//   while it is younger than catalogTtlMs, else reads it again on its own connection
//   (table-lookup.ts recheckPathCode), so the answer a statement is decided with is
//   never older than that; one round trip per catalogTtlMs per connection config, shared
//   by its sessions. Where it cannot be read (inside a batch, a failed transaction),
//   each such statement counts as a search_path change until it is (fail closed).

import { GatehouseError } from '../../errors/index.js';
import { CatalogCache, runCatalogQuery } from './catalog-query.js';
import type { UpstreamSession } from './forward.js';

// 16384: FirstNormalObjectId, the first OID of an object not made by initdb.
const callsSetConfig = (column: string) => `${column}::pg_catalog.text operator(pg_catalog.~) ':funcid 2078 '`;
export const pathCodeQuery = `select exists (
    select 1 from pg_catalog.pg_proc p
    where p.oid operator(pg_catalog.>=) 16384 and p.prokind operator(pg_catalog.<>) 'a'
      and p.pronamespace operator(pg_catalog.<>) 'pg_catalog'::pg_catalog.regnamespace
      and p.pronamespace operator(pg_catalog.<>) 'information_schema'::pg_catalog.regnamespace
      and not exists (select 1 from pg_catalog.pg_depend d where d.classid operator(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass and d.objid operator(pg_catalog.=) p.oid and d.deptype operator(pg_catalog.=) 'e')
      and (p.prolang operator(pg_catalog.<>) all (array(select l.oid from pg_catalog.pg_language l where l.lanname operator(pg_catalog.=) any ('{sql,plpgsql}'::pg_catalog.name[])))
        or pg_catalog.pg_get_functiondef(p.oid) operator(pg_catalog.~*) '(set_config|search_path|session_authorization|\\mrole\\M|\\mreset\\M|\\mdiscard\\M|\\mexecute\\M)')
  ) or exists (select 1 from pg_catalog.pg_attrdef a where a.oid operator(pg_catalog.>=) 16384 and ${callsSetConfig('a.adbin')})
  or exists (select 1 from pg_catalog.pg_rewrite r where r.oid operator(pg_catalog.>=) 16384 and (${callsSetConfig('r.ev_action')} or ${callsSetConfig('r.ev_qual')}))
  or exists (select 1 from pg_catalog.pg_policy o where ${callsSetConfig('o.polqual')} or ${callsSetConfig('o.polwithcheck')})
  or exists (select 1 from pg_catalog.pg_constraint c where c.oid operator(pg_catalog.>=) 16384 and ${callsSetConfig('c.conbin')})
  or exists (select 1 from pg_catalog.pg_index i where i.indexrelid operator(pg_catalog.>=) 16384 and (${callsSetConfig('i.indexprs')} or ${callsSetConfig('i.indpred')}))
  or exists (select 1 from pg_catalog.pg_trigger t where t.oid operator(pg_catalog.>=) 16384 and ${callsSetConfig('t.tgqual')})`;

const cache = new CatalogCache<boolean>();

/** Whether code the statements do not name may change search_path on this upstream (cached per `key`). */
export function unnamedPathCode(upstream: UpstreamSession, key: string, now: number = Date.now()): Promise<boolean> {
  return cache.get(key, async () => {
    let found = false;
    await runCatalogQuery(upstream, pathCodeQuery, ([value]) => {
      found = value?.toString('utf8') === 't';
    }, catalogFailed);
    return found;
  }, now);
}

/** The answer for `key` while it is younger than catalogTtlMs; undefined when it must be read again. */
export function freshPathCode(key: string, now: number = Date.now()): boolean | undefined {
  return cache.fresh(key, now);
}

/** An answer read on a session's connection (pathCodeQuery's one value, 't' or 'f'), for the sessions of `key`. */
export function rememberPathCode(key: string, found: boolean, now: number = Date.now()): void {
  cache.set(key, found, now);
}

/** Forgets every cached answer (tests). */
export function clearPathCodeCatalog(): void {
  cache.clear();
}

function catalogFailed(detail: string): GatehouseError {
  return new GatehouseError('upstream_failed', {
    message: "The gateway could not read the database's catalog of code that may change search_path, so the session was not opened.",
    detail: `search_path code catalog query: ${detail}`,
  });
}
