// Looking up, on the session's own connection, the tables a statement names that the
// session's catalog does not know (table-catalog.ts): a partition or inheritance child
// created by another session after this one logged in (`create table payments_2027
// partition of payments …`) must be decided as `payments`. Enforces:
// - a look-up only for names the session does not know (SessionTables.unknown): a
//   statement of known tables (pgbench's) never pays one;
// - the look-up is the gateway's own Parse, Bind, Execute, Close and Sync of a statement
//   of a name no client uses, in the session's order (the FIFO's `probe`, as copy-out.ts
//   describes a COPY): nothing of its answer reaches the client, and it sees what the
//   statement will see (the session's own transaction, its temporary tables);
// - it is sent only where a Sync of the gateway's ends nothing of the client's (the
//   database owes nothing of an extended batch not yet ended by Sync, is not in COPY,
//   and skips nothing); otherwise, or when the look-up fails (an aborted transaction
//   block), the names stay unresolved and the statement is decided as one whose tables
//   are unknown (fail closed: decide-statement.ts);
// - before that, where the session knows of no code that changes search_path unnamed
//   and a statement may run code, whether some exists now (path-code-catalog.ts) is
//   taken from the shared answer while fresh, else read again the same way.

import { randomBytes } from 'node:crypto';
import { cstring, int16, int32, message, oneParameterQueryMessages, syncMessage } from './codec.js';
import { freshPathCode, pathCodeQuery, rememberPathCode } from './path-code-catalog.js';
import type { SessionCore } from './session-core.js';
import type { Pending } from './session-state.js';
import { tableLookupQuery, type SessionTables } from './table-catalog.js';

type DecidedFacts = readonly { readonly class: string; readonly tables: readonly string[]; readonly ctes?: readonly string[] | undefined }[];

/**
 * What the session learns on its own connection before `facts` are decided: whether
 * code that changes search_path unnamed exists now (recheckPathCode), then the tables it
 * does not know; resolves once both are settled.
 */
export function lookUpUnknownTables(core: SessionCore, tables: SessionTables | undefined, facts: DecidedFacts): Promise<void> | undefined {
  if (!tables) return undefined;
  const rechecked = recheckPathCode(core, tables, facts);
  return rechecked ? rechecked.then(() => lookUpTables(core, tables, facts)) : lookUpTables(core, tables, facts);
}

/** Looks up the names of `facts`' tables `tables` does not know, when the session can; resolves once they are known, absent or left unresolved. */
function lookUpTables(core: SessionCore, tables: SessionTables, facts: DecidedFacts): Promise<void> | undefined {
  const names = tables.unknown(facts);
  if (!names || !canLookUp(core)) return undefined;
  return lookUp(core, names).then((rows) => {
    if (rows !== undefined) tables.lookedUp(names, rows);
  });
}

/**
 * Code that changes search_path unnamed, created by another session since the session's
 * answer was read (path-code-catalog.ts): the shared answer while it is younger than
 * catalogTtlMs, else pathCodeQuery again, in the session's order; not readable now (in a
 * batch, a failed block): unsure, each statement that may run code counts as a change.
 */
function recheckPathCode(core: SessionCore, tables: SessionTables, facts: DecidedFacts): Promise<void> | undefined {
  const key = tables.pathCodeToCheck(facts);
  if (key === undefined) return undefined;
  const fresh = freshPathCode(key);
  if (fresh !== undefined) return void tables.pathCodeRead(fresh);
  if (!canLookUp(core)) return void tables.pathCodeRead(undefined);
  const name = `gatehouse_path_code_${randomBytes(8).toString('hex')}`;
  return probe(core, noParameterQueryMessages(name, pathCodeQuery)).then((rows) => {
    const found = rows === undefined ? undefined : rows[0] === 't';
    if (found !== undefined) rememberPathCode(key, found);
    tables.pathCodeRead(found);
  });
}

/** Whether a look-up (ending with a Sync of ours) can go now without ending or joining anything of the client's. */
function canLookUp(core: SessionCore): boolean {
  if (core.copyIn || core.skippingToSync || core.upstream.socket.destroyed) return false;
  const last = core.pending[core.pending.length - 1]?.kind;
  // What is owed ends at a ReadyForQuery (a Sync, a Query, the gateway's COMMIT after a wrapped Query).
  return last === undefined || last === 'sync' || last === 'query' || last === 'end';
}

/** The look-up's rows (tableLookupQuery), or undefined when the database refused it. */
function lookUp(core: SessionCore, names: readonly string[]): Promise<string[] | undefined> {
  const name = `gatehouse_tables_${randomBytes(8).toString('hex')}`;
  const param = Buffer.from(textArray(names), 'utf8');
  return probe(core, oneParameterQueryMessages(name, tableLookupQuery, param));
}

/**
 * Sends `messages` (a Parse, Bind, Execute … of the gateway's) with a Sync, as a probe
 * in the FIFO: the first value of each row, or undefined when the database refused it.
 */
function probe(core: SessionCore, messages: Buffer[]): Promise<string[] | undefined> {
  const answered = new Promise<string[] | undefined>((resolve) => {
    // Its Execute has no RowDescription (probeAnswered then says 'no description'): the rows are in `values`.
    const probe: Extract<Pending, { kind: 'probe' }> = { kind: 'probe', columns: undefined, values: [], error: undefined, answered: () => resolve(probe.error === undefined && !probe.skipped ? probe.values : undefined) };
    core.expect(probe);
  });
  core.toUpstream(Buffer.concat([...messages, syncMessage()]));
  const sent = core.flushToDatabase();
  return sent ? sent.then(() => answered) : answered;
}

/** Parse, Bind, Execute and Close (portal, statement) of `sql`, which takes no parameter, under a name no client uses. */
function noParameterQueryMessages(name: string, sql: string): Buffer[] {
  return [
    message('P', Buffer.concat([cstring(name), cstring(sql), int16(0)])),
    message('B', Buffer.concat([cstring(name), cstring(name), int16(0), int16(0), int16(0)])),
    message('E', Buffer.concat([cstring(name), int32(0)])),
    message('C', Buffer.concat([Buffer.from('P'), cstring(name)])),
    message('C', Buffer.concat([Buffer.from('S'), cstring(name)])),
  ];
}

/** A text[] literal of `values`, each element quoted (a name may hold any character but NUL). */
export function textArray(values: readonly string[]): string {
  return `{${values.map((v) => `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"`).join(',')}}`;
}
