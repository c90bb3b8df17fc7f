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
//   are unknown (fail closed: decide-statement.ts).

import { randomBytes } from 'node:crypto';
import { oneParameterQueryMessages, syncMessage } from './codec.js';
import type { SessionCore } from './session-core.js';
import type { Pending } from './session-state.js';
import { tableLookupQuery, type SessionTables } from './table-catalog.js';

/** Looks up the names of `facts`' tables `tables` does not know, when the session can; resolves once they are known, absent or left unresolved. */
export function lookUpUnknownTables(core: SessionCore, tables: SessionTables | undefined, facts: readonly { readonly tables: readonly string[]; readonly ctes?: readonly string[] | undefined }[]): Promise<void> | undefined {
  const names = tables?.unknown(facts);
  if (!names || !tables || !canLookUp(core)) return undefined;
  return lookUp(core, names).then((rows) => {
    if (rows !== undefined) tables.lookedUp(names, rows);
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
  const answered = new Promise<string[] | undefined>((resolve) => {
    // Its Execute has no RowDescription (probeAnswered then says 'no description'): the rows are in `values`.
    const probe: Extract<Pending, { kind: 'probe' }> = { kind: 'probe', columns: undefined, values: [], error: undefined, answered: () => resolve(probe.error === undefined && !probe.skipped ? probe.values : undefined) };
    core.expect(probe);
  });
  const param = Buffer.from(textArray(names), 'utf8');
  core.toUpstream(Buffer.concat([...oneParameterQueryMessages(name, tableLookupQuery, param), syncMessage()]));
  const sent = core.flushToDatabase();
  return sent ? sent.then(() => answered) : answered;
}

/** A text[] literal of `values`, each element quoted (a name may hold any character but NUL). */
export function textArray(values: readonly string[]): string {
  return `{${values.map((v) => `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"`).join(',')}}`;
}
