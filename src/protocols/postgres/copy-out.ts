// COPY … TO STDOUT on a connection with column rules: before it runs, the gateway asks
// the database to describe the SELECT whose columns it sends (copy-statement.ts), and
// masks its rows by that description as a SELECT's rows are masked (copy-rows.ts).
// Enforces:
// - the description is the gateway's own Parse, Describe, Close and Sync of a statement
//   of a name no client uses (for a whole table, with a catalog query of its generated
//   columns, which COPY leaves out), in the session's order (the FIFO, session-state.ts
//   `probe`): nothing of its answer reaches the client, and no statement of the
//   client's is replaced; it is asked only when the database owes nothing of an
//   extended batch the client has not ended with Sync (a Sync of ours would end it);
// - its plan is made as a SELECT's (planMasking with the query's derivation), and a
//   derived column the description does not name, or a value the query would store
//   under a name no rule covers, refuses the COPY;
// - anything that cannot be learnt (a text the gateway cannot read rows of, the
//   database's error for the description) refuses the COPY: it never runs unmasked;
// - describing counts against `limits.statementTimeout` (it may wait for a lock).

import { randomBytes } from 'node:crypto';
import { GatehouseError } from '../../errors/index.js';
import { cstring, message, oneParameterQueryMessages, parseDataRow, parseNoticeFields, parseRowDescription, syncMessage, type ColumnDescription, type Frame } from './codec.js';
import { copyOutOf, type CopyFormat } from './copy-statement.js';
import { derivedMasks, missingDerived, planMasking, unmaskableStore, type MaskingRules } from './mask-rows.js';
import type { SessionCore } from './session-core.js';
import { statementTimeoutError } from './transaction-outcome.js';
import type { MaskPlan, Pending } from './session-state.js';

/** How the rows of one COPY … TO STDOUT are masked. */
export interface CopyMasking {
  readonly format: CopyFormat;
  /** Per column; undefined: nothing to mask. */
  readonly plan: MaskPlan;
  /** Columns the description has: the CopyOutResponse must say as many. */
  readonly width: number;
  /** Per column: quoted whatever its value (CSV, FORCE_QUOTE). */
  readonly forced: readonly boolean[];
  /** The header row (column names) is still to come: it passes as it is. */
  headerLeft: boolean;
}

/** The masking of the COPY … TO STDOUT `text` under `rules`, or why it is refused. */
export async function planCopyOut(core: SessionCore, text: string, rules: MaskingRules): Promise<CopyMasking | GatehouseError> {
  const copy = await copyOutOf(text);
  if (typeof copy === 'string') return refused(`its rows cannot be masked: ${copy}`);
  const stored = unmaskableStore(copy.derivation, rules);
  if (stored) return refused(`its query would keep values of masked column "${stored.rule}" as ${stored.target}, where they could later be read unmasked`);
  const last = core.pending[core.pending.length - 1]?.kind;
  // What is owed ends at a ReadyForQuery (a Sync, a Query, the gateway's COMMIT after a wrapped Query).
  if (last !== undefined && last !== 'sync' && last !== 'query' && last !== 'end') return refused('it follows an extended-query batch not yet ended by Sync; send Sync first');
  const answer = await describeWithin(core, copy.select, copy.table);
  if (answer instanceof GatehouseError) return answer;
  if (typeof answer === 'string') return refused(`the gateway could not learn its columns to mask them (the database answered: ${answer})`);
  // COPY of a whole table leaves out its generated columns (the catalog query's answer).
  const described = copy.table ? answer.columns.filter((c) => !answer.values.includes(c.name)) : answer.columns;
  const derived = derivedMasks(copy.derivation, rules);
  const missing = missingDerived(described, derived);
  if (missing !== undefined) return refused(`its query carries a value of masked column "${derived!.rule}" in a column the gateway expected as "${missing}" and cannot find; name the column with an alias`);
  const force = copy.format.forceQuote;
  const forced = described.map((c) => force === true || force.includes(c.name));
  return { format: copy.format, plan: planMasking(described, rules, derived), width: described.length, forced, headerLeft: copy.format.header };
}

function refused(why: string): GatehouseError {
  return new GatehouseError('sql_not_supported', { message: `COPY … TO STDOUT on a connection with column masking rules is masked column by column, but ${why}; it was not run.` });
}

// The generated columns of a table (names and operators schema-qualified: a function or
// operator of the same name elsewhere cannot answer it). PostgreSQL 12 and later.
const generatedColumns =
  "select a.attname from pg_catalog.pg_attribute a where a.attrelid operator(pg_catalog.=) $1::pg_catalog.regclass::pg_catalog.oid and a.attnum operator(pg_catalog.>) 0 and not a.attisdropped and a.attgenerated operator(pg_catalog.<>) ''";

type Described = { readonly columns: ColumnDescription[]; readonly values: string[] };

/**
 * `describe` under `limits.statementTimeout`: describing waits for the table's lock (held
 * by another session's ALTER TABLE, say), and is cancelled on the database past the limit
 * (SessionCore.cancel), as the COPY would have been.
 */
async function describeWithin(core: SessionCore, select: string, table: string | undefined): Promise<Described | string | GatehouseError> {
  const { connection } = core.ctx;
  const ms = connection.statementTimeoutMs;
  if (ms === undefined) return describe(core, select, table);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    core.cancel();
  }, ms);
  try {
    const answer = await describe(core, select, table);
    if (!timedOut || typeof answer !== 'string') return answer;
    return statementTimeoutError(connection);
  } finally {
    clearTimeout(timer);
  }
}

/** The columns of `select` as the database describes them (and the generated columns of `table`), or its error. */
function describe(core: SessionCore, select: string, table: string | undefined): Promise<Described | string> {
  const name = `gatehouse_copy_${randomBytes(8).toString('hex')}`;
  const described = new Promise<Described | string>((resolve) => {
    core.expect({ kind: 'probe', columns: undefined, values: [], error: undefined, answered: resolve });
  });
  const param = table === undefined ? undefined : Buffer.from(table, 'utf8');
  core.toUpstream(
    Buffer.concat([
      message('P', Buffer.concat([cstring(name), cstring(select), Buffer.from([0, 0])])), // Parse: no parameter types
      message('D', Buffer.concat([Buffer.from('S'), cstring(name)])), // Describe the statement: ParameterDescription, RowDescription or NoData
      message('C', Buffer.concat([Buffer.from('S'), cstring(name)])), // Close it
      ...(param === undefined ? [] : oneParameterQueryMessages(name, generatedColumns, param)),
      syncMessage(),
    ]),
  );
  const sent = core.flushToDatabase();
  return sent ? sent.then(() => described) : described;
}

/**
 * One message of the database's answer to `describe` (database-messages.ts): kept in
 * `head`, none of it relayed. True at its ReadyForQuery, when the answer is complete
 * (the caller takes `head` off the FIFO).
 */
export function probeAnswered(head: Extract<Pending, { kind: 'probe' }>, frame: Frame): boolean {
  switch (frame.type) {
    case '1': // ParseComplete
    case '2': // BindComplete
    case 't': // ParameterDescription
    case '3': // CloseComplete
    case 'C': // CommandComplete
      return false;
    case 'T': // RowDescription
      head.columns = parseRowDescription(frame.body);
      return false;
    case 'D': { // DataRow of the catalog query
      const value = parseDataRow(frame.body)[0];
      if (value) head.values.push(value.toString('utf8'));
      return false;
    }
    case 'n': // NoData
      head.columns = [];
      return false;
    case 'E': {
      const fields = parseNoticeFields(frame.body);
      head.error = `${fields.get('C') ?? ''} ${fields.get('M') ?? ''}`.trim();
      return false;
    }
    case 'Z':
      head.answered(head.error ?? (head.columns ? { columns: head.columns, values: head.values } : 'no description'));
      return true;
    default:
      throw new GatehouseError('upstream_failed', { detail: `unexpected message '${frame.type}' in the answer to the gateway's description of a COPY` });
  }
}
