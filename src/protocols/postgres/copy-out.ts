// COPY … TO STDOUT on a connection with column rules: before it runs, the gateway asks
// the database to describe the SELECT whose columns it sends (copy-statement.ts), and
// masks its rows by that description as a SELECT's rows are masked (copy-rows.ts).
// Enforces:
// - the description is the gateway's own Parse, Describe, Close and Sync of a statement
//   of a name no client uses (for a whole table, with a catalog query of its generated
//   columns, which COPY leaves out), in the session's order (the FIFO, session-state.ts
//   `probe`): nothing of its answer reaches the client, and no statement of the
//   client's is replaced. A Query's COPY is described only when the database owes
//   nothing of an extended batch the client has not ended with Sync (a Sync of ours
//   would end it); an Execute's, inside its batch, ends with a Flush instead of a Sync,
//   and when the database fails it there (or skipped it: an error earlier in the batch)
//   the batch is failed on the database as for the client (`batchFailed`);
// - its plan is made as a SELECT's (planMasking with the query's derivation), and a
//   derived column the description does not name, or a value the query would store
//   under a name no rule covers, refuses the COPY;
// - anything that cannot be learnt (a text the gateway cannot read rows of, the
//   database's error for the description) refuses the COPY: it never runs unmasked;
// - describing counts against `limits.statementTimeout` (it may wait for a lock).

import { randomBytes } from 'node:crypto';
import { GatehouseError } from '../../errors/index.js';
import { cstring, flushMessage, message, oneParameterQueryMessages, parseDataRow, parseNoticeFields, parseRowDescription, syncMessage, type ColumnDescription, type Frame } from './codec.js';
import { copyOutOf, type CopyFormat, type CopyOut } from './copy-statement.js';
import { derivedMasks, missingDerived, planMasking, unmaskableStore, type ColumnPlan, type MaskingRules } from './mask-rows.js';
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

/**
 * Why a COPY … TO STDOUT is refused. `batchFailed`: its description, inside the client's
 * open extended batch, failed on the database ('error': the database now skips to the
 * client's Sync, so the refusal is the batch's error) or was skipped ('skipped': an
 * earlier message of the batch failed, whose error the client has; the COPY is as
 * never run).
 */
export interface CopyRefused {
  readonly error: GatehouseError;
  readonly batchFailed?: 'error' | 'skipped';
}

/** Why the COPY … TO STDOUT `text` cannot be masked under `rules`, known from its text alone (undefined: it can be described). */
export async function copyOutRefusal(text: string, rules: MaskingRules): Promise<GatehouseError | undefined> {
  const copy = await copyOutOf(text);
  return typeof copy === 'string' ? refused(`its rows cannot be masked: ${copy}`) : storedRefusal(copy, rules);
}

function storedRefusal(copy: CopyOut, rules: MaskingRules): GatehouseError | undefined {
  const stored = unmaskableStore(copy.derivation, rules);
  return stored && refused(`its query would keep values of masked column "${stored.rule}" as ${stored.target}, where they could later be read unmasked`);
}

/**
 * The masking of the COPY … TO STDOUT `text` under `rules`, or why it is refused.
 * `inBatch`: an Execute's, described inside its extended batch (ended by a Flush).
 */
export async function planCopyOut(core: SessionCore, text: string, rules: MaskingRules, inBatch = false): Promise<CopyMasking | CopyRefused> {
  const copy = await copyOutOf(text);
  if (typeof copy === 'string') return { error: refused(`its rows cannot be masked: ${copy}`) };
  const stored = storedRefusal(copy, rules);
  if (stored) return { error: stored };
  const last = core.pending[core.pending.length - 1]?.kind;
  // What is owed ends at a ReadyForQuery (a Sync, a Query, the gateway's COMMIT after a wrapped Query).
  if (!inBatch && last !== undefined && last !== 'sync' && last !== 'query' && last !== 'end') return { error: refused('it follows an extended-query batch not yet ended by Sync; send Sync first') };
  const answer = await describeWithin(core, copy.select, copy.table, inBatch);
  if ('refused' in answer) return { error: answer.refused, ...(answer.batchFailed ? { batchFailed: answer.batchFailed } : {}) };
  // COPY of a whole table leaves out its generated columns (the catalog query's answer).
  const described = copy.table ? answer.columns.filter((c) => !answer.values.includes(c.name)) : answer.columns;
  const derived = derivedMasks(copy.derivation, rules);
  const missing = missingDerived(described, derived);
  if (missing !== undefined) return { error: refused(`its query carries a value of masked column "${derived!.rule}" in a column the gateway expected as "${missing}" and cannot find; name the column with an alias`) };
  const force = copy.format.forceQuote;
  const forced = described.map((c) => force === true || force.includes(c.name));
  return { format: copy.format, plan: fitted(planMasking(described, rules, derived), described), width: described.length, forced, headerLeft: copy.format.header };
}

const varcharOid = 1043;
const bpcharOid = 1042;

/**
 * The plan with each masked value of a `varchar(n)` or `char(n)` column cut to n
 * characters: a label (`[EMAIL]`) longer than the column would not load back with COPY
 * FROM ("value too long for type character varying(5)"). A partial value keeps the
 * value's length already.
 */
function fitted(plan: MaskPlan, columns: readonly ColumnDescription[]): MaskPlan {
  if (!plan) return plan;
  return plan.map((p, i): ColumnPlan => {
    const column = columns[i]!;
    const max = (column.typeOid === varcharOid || column.typeOid === bpcharOid) && column.typeModifier !== undefined && column.typeModifier >= 4 ? column.typeModifier - 4 : undefined;
    if (max === undefined) return p;
    if (p.kind === 'text') return { kind: 'text', apply: (value) => cut(p.apply(value), max) };
    if (p.kind === 'entities') {
      return {
        kind: 'entities',
        apply: (value, counts) => {
          const masked = p.apply(value, counts);
          return masked ? Buffer.from(cut(masked.toString('utf8'), max), 'utf8') : masked;
        },
      };
    }
    return p;
  });
}

function cut(value: string, max: number): string {
  const chars = [...value];
  return chars.length <= max ? value : chars.slice(0, max).join('');
}

function refused(why: string): GatehouseError {
  return new GatehouseError('sql_not_supported', { message: `COPY … TO STDOUT on a connection with column masking rules is masked column by column, but ${why}; it was not run.` });
}

// The generated columns of a table (names and operators schema-qualified: a function or
// operator of the same name elsewhere cannot answer it). PostgreSQL 12 and later.
const generatedColumns =
  "select a.attname from pg_catalog.pg_attribute a where a.attrelid operator(pg_catalog.=) $1::pg_catalog.regclass::pg_catalog.oid and a.attnum operator(pg_catalog.>) 0 and not a.attisdropped and a.attgenerated operator(pg_catalog.<>) ''";

type Described = { readonly columns: ColumnDescription[]; readonly values: string[] };
type NotDescribed = { readonly refused: GatehouseError; readonly batchFailed?: 'error' | 'skipped' };

/**
 * `describe` under `limits.statementTimeout`: describing waits for the table's lock (held
 * by another session's ALTER TABLE, say), and is cancelled on the database past the limit
 * (SessionCore.cancel), as the COPY would have been. The time counts from when the
 * database is on it: a statement ahead of it (in its batch) has a timeout of its own.
 */
async function describeWithin(core: SessionCore, select: string, table: string | undefined, inBatch: boolean): Promise<Described | NotDescribed> {
  const { connection } = core.ctx;
  const ms = connection.statementTimeoutMs;
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;
  let answered = false;
  try {
    const { probe, answer: answering } = describe(core, select, table, inBatch);
    if (ms !== undefined) {
      void core.whenAtHead(probe).then(() => {
        if (answered) return;
        timer = setTimeout(() => {
          timedOut = true;
          core.cancel();
        }, ms);
      });
    }
    const described = await answering;
    answered = true;
    const answer = described.answer;
    const skipped = described.skipped;
    // Described before the cancel landed: its absorbing Bind fails the batch at the next flush, as the refusal does.
    if (typeof answer !== 'string' && !timedOut) return answer;
    const batchFailed = skipped ? 'skipped' : inBatch && typeof answer === 'string' ? 'error' : undefined;
    const error = timedOut ? statementTimeoutError(connection) : refused(`the gateway could not learn its columns to mask them (the database answered: ${answer as string})`);
    return { refused: error, ...(batchFailed ? { batchFailed } : {}) };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The columns of `select` as the database describes them (and the generated columns of
 * `table`), or its error. Ended by a Sync, or inside the client's batch by a Flush (the
 * database sends its answers then, and the batch goes on).
 */
function describe(core: SessionCore, select: string, table: string | undefined, inBatch: boolean): { probe: Pending; answer: Promise<{ answer: Described | string; skipped: boolean }> } {
  const name = `gatehouse_copy_${randomBytes(8).toString('hex')}`;
  let resolve!: (value: { answer: Described | string; skipped: boolean }) => void;
  const described = new Promise<{ answer: Described | string; skipped: boolean }>((r) => (resolve = r));
  // One CloseComplete for the description, two more for the catalog query's portal and statement.
  const probe: Extract<Pending, { kind: 'probe' }> = { kind: 'probe', columns: undefined, values: [], error: undefined, ...(inBatch ? { closesLeft: table === undefined ? 1 : 3 } : {}), answered: (answer) => resolve({ answer, skipped: probe.skipped === true }) };
  core.expect(probe);
  const param = table === undefined ? undefined : Buffer.from(table, 'utf8');
  core.toUpstream(
    Buffer.concat([
      // Inside a batch: the answers to what is ahead first, so that its time is not taken for ours.
      ...(inBatch ? [flushMessage()] : []),
      message('P', Buffer.concat([cstring(name), cstring(select), Buffer.from([0, 0])])), // Parse: no parameter types
      message('D', Buffer.concat([Buffer.from('S'), cstring(name)])), // Describe the statement: ParameterDescription, RowDescription or NoData
      message('C', Buffer.concat([Buffer.from('S'), cstring(name)])), // Close it
      ...(param === undefined ? [] : oneParameterQueryMessages(name, generatedColumns, param)),
      inBatch ? flushMessage() : syncMessage(),
    ]),
  );
  const sent = core.flushToDatabase();
  return { probe, answer: sent ? sent.then(() => described) : described };
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
    case 'C': // CommandComplete
      return false;
    case '3': // CloseComplete: the last one ends a probe inside the client's batch
      if (head.closesLeft === undefined || --head.closesLeft > 0) return false;
      head.answered(head.columns ? { columns: head.columns, values: head.values } : 'no description');
      return true;
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
      // Inside the client's batch the database now skips to the client's Sync: nothing more comes.
      if (head.closesLeft === undefined) return false;
      head.answered(head.error);
      return true;
    }
    case 'Z':
      if (head.closesLeft !== undefined) throw new GatehouseError('upstream_failed', { detail: "unexpected ReadyForQuery in the answer to the gateway's description of a COPY inside a batch" });
      head.answered(head.error ?? (head.columns ? { columns: head.columns, values: head.values } : 'no description'));
      return true;
    default:
      throw new GatehouseError('upstream_failed', { detail: `unexpected message '${frame.type}' in the answer to the gateway's description of a COPY` });
  }
}
