// What a statement's record says once its transaction has ended. A statement that
// completed in a transaction still to be committed (implicit, or the gateway's own
// around a wrapped Query) is recorded once the commit is known: a commit that fails (a
// deferred constraint, a serialization failure) fails it; a rollback of that
// transaction rolls it back (database-messages.ts decides when; this says what).

import { GatehouseError } from '../../errors/index.js';
import { parseNoticeFields, type Frame } from './codec.js';
import type { PostgresConnection } from './connection.js';
import type { Run } from './session-state.js';
import type { StatementRecording } from './statement-recording.js';

/** A statement cancelled for running past the connection's `statementTimeout`. */
export function statementTimeoutError(connection: Pick<PostgresConnection, 'name' | 'statementTimeoutMs'>): GatehouseError {
  return new GatehouseError('statement_timeout', { message: `The statement ran longer than ${connection.statementTimeoutMs} ms, the limit on connection "${connection.name}" (statementTimeout), and was cancelled.` });
}

/** The record of a statement whose transaction was rolled back because of another one. */
export function rolledBack(where: 'batch' | 'Query', which: 'an earlier statement' | 'another statement' | 'a later statement' = 'an earlier statement'): GatehouseError {
  const why = which === 'an earlier statement' ? 'was stopped by the gateway' : which === 'a later statement' ? 'failed' : 'failed or was stopped by the gateway';
  return new GatehouseError('upstream_failed', { message: `rolled back: ${which} in the same ${where} ${why}` });
}

/**
 * The database's error for the commit of statements that had completed (the gateway's
 * COMMIT, a Query's or a batch's implicit commit): each of them failed with it, since
 * none of their changes was kept.
 */
export function failWithCommitError(runs: readonly Run[], frame: Frame): void {
  const fields = parseNoticeFields(frame.body);
  const detail = `the transaction's commit failed, so the statement's changes were not kept: ${fields.get('C') ?? ''}: ${fields.get('M') ?? ''}`;
  for (const r of runs) if (!r.done && !r.error) r.error = { code: 'sql_error', detail, status: 400 };
}

/** A wrapped Query's statements, at the answer to the gateway's COMMIT (a failed one has set their error) or ROLLBACK. */
export function endWrappedRuns(recording: StatementRecording, runs: readonly Run[], committed: boolean, connection: Pick<PostgresConnection, 'name' | 'statementTimeoutMs'>): void {
  for (const r of runs) {
    if (committed) recording.finish(r);
    else if (r.timedOut) recording.finish(r, statementTimeoutError(connection));
    else recording.finish(r, new GatehouseError('upstream_failed', { message: 'rolled back: another statement in the same Query failed or was stopped, and the gateway rolled back its transaction' }), 'rolled_back');
  }
}

/**
 * A batch's Sync is answered: the Executes that completed in its implicit transaction
 * (`uncommitted`, emptied) are recorded. Rolled back when the transaction ended without
 * a commit (status I) after an error in the batch, a refusal, or a stop of the gateway's
 * (`failed`): unless the batch ran transaction commands of its own, whose effect the
 * gateway does not follow.
 */
export function settleUncommitted(recording: StatementRecording, uncommitted: Run[], ready: Frame, failed: boolean): void {
  if (uncommitted.length === 0) return;
  const rolled = failed && ready.body[0] === 73 && !uncommitted.some((r) => r.exchange.operation === 'sql.transaction');
  for (const r of uncommitted.splice(0)) recording.finish(r, rolled ? rolledBack('batch', 'another statement') : undefined, 'rolled_back');
}
