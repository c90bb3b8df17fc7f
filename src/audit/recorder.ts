// The recorder: every exchange, allowed or denied, becomes a row, and every write to
// that row emits a chained audit event carrying the digest of the row as written
// (exchange-state.ts), in the same transaction.
// - open(): durable before the request is forwarded (exchange.opened);
// - progress(): while an answer streams, throttled by the adapter, so a gateway killed
//   mid-stream leaves a row marked incomplete with what was relayed (exchange.progress);
// - finish(): durable before the last byte is released (exchange.finished);
// - a denial is one write with the decision and the error (exchange.refused).
// Headers are recorded through an allow-list (recordable-headers.ts); bodies are
// capped at `maxBodyBytes` with a truncation flag.
//
// This file writes straight into the store through group commit (PostgreSQL stores).
// A finish or a refusal that the store does not take because it cannot be reached is
// held (in memory, and in a file when given) and written when it answers again (held-records.ts): the exchange was
// forwarded or refused all the same, and its record must not vanish without a word.
// On SQLite the gateway records through the record journal instead (journal/): the
// same rows and events, made durable as one append to a file and applied to the store
// in batches on a worker thread.

import type { Kysely } from 'kysely';
import type { Decision, Exchange, ExchangeOutcome, RecordedRequest } from '../exchange/index.js';
import type { Database } from '../store/index.js';
import type { ExchangeState } from './exchange-state.js';
import { GroupCommitWriter, type RecordWrite } from './group-commit.js';
import { HeldRecords, type HeldRecordsReport, type SpillOptions } from './held-records.js';
import { eventFor, recordColumns, type ExchangeProgress, type RecordColumnOptions } from './record-columns.js';

export type { ExchangeProgress } from './record-columns.js';

export interface Recorder {
  open(exchange: Exchange, decision: Decision, request: RecordedRequest): Promise<void>;
  progress(exchange: Exchange, progress: ExchangeProgress): Promise<void>;
  /**
   * `ifHeld`: the outcome to record instead when this write fails and is written later
   * (the relay cut the answer it could not record).
   */
  finish(exchange: Exchange, outcome: ExchangeOutcome, ifHeld?: (error: unknown) => ExchangeOutcome): Promise<void>;
  /** One write for an exchange that never reached the upstream. */
  refuse(exchange: Exchange, decision: Decision | undefined, request: RecordedRequest | undefined, outcome: ExchangeOutcome): Promise<void>;
  /** Resolves when everything recorded so far can be read from the store. */
  drain(): Promise<void>;
}

export interface RecorderOptions extends RecordColumnOptions {
  /** Shared with the AuditLog so both append to the chain in the same batches. */
  readonly writer?: GroupCommitWriter | undefined;
  /** Records held while the store could not be reached, written, or lost (logged by the gateway). */
  readonly onHeldRecords?: ((report: HeldRecordsReport) => void) | undefined;
  /** Where held records are also kept (0600, bounded, each line authenticated with `key`), so a restart after a crash writes them (held-records.ts). */
  readonly heldRecords?: SpillOptions | undefined;
}

export function createRecorder(db: Kysely<Database>, options: RecorderOptions = {}): Recorder & { close(): Promise<void> } {
  const writer = options.writer ?? new GroupCommitWriter(db);
  const columns = recordColumns(options);
  // The row as last written, per exchange in flight: each event hashes the whole row.
  const rows = new Map<string, ExchangeState>();
  const held = new HeldRecords(writer, options.onHeldRecords, options.heldRecords);
  /** Writes `write`; when the store cannot be reached, holds `later` (by default the same write) and still rejects. */
  const record = (write: RecordWrite, later: (error: unknown) => RecordWrite = () => write) =>
    writer.record(write).catch((error: unknown) => {
      held.holdIfUnreachable(error, () => later(error));
      throw error;
    });

  return {
    open(exchange, decision, request) {
      const row = columns.opened(exchange, decision, request);
      rows.set(exchange.id, row);
      return writer.record({ exchange: { insert: row }, event: eventFor('exchange.opened', row, true) });
    },
    progress(exchange, progress) {
      const previous = rows.get(exchange.id);
      if (!previous) return Promise.resolve();
      const changed = columns.progress(progress);
      const row = { ...previous, ...changed };
      rows.set(exchange.id, row);
      return writer.record({ exchange: { update: exchange.id, columns: changed }, event: eventFor('exchange.progress', row) });
    },
    finish(exchange, outcome, ifHeld) {
      const changed = columns.outcome(exchange, outcome);
      const previous = rows.get(exchange.id);
      rows.delete(exchange.id);
      if (previous) {
        const finished = (set: Partial<ExchangeState>): RecordWrite => ({ exchange: { update: exchange.id, columns: set }, event: eventFor('exchange.finished', { ...previous, ...set }) });
        return record(finished(changed), (error) => (ifHeld ? finished(columns.outcome(exchange, ifHeld(error))) : finished(changed)));
      }
      // Without the opened row in memory (not expected), read it back so the digest is exact.
      return writer.write(async (trx, emit) => {
        await trx.updateTable('exchanges').set(changed).where('id', '=', exchange.id).execute();
        const base = (await trx.selectFrom('exchanges').selectAll().where('id', '=', exchange.id).executeTakeFirst()) as ExchangeState | undefined;
        if (base) emit(eventFor('exchange.finished', { ...base, ...changed }));
      });
    },
    refuse(exchange, decision, request, outcome) {
      const row = { ...columns.opened(exchange, decision, request), ...columns.outcome(exchange, outcome) };
      return record({ exchange: { insert: row }, event: eventFor('exchange.refused', row, true) });
    },
    drain: () => writer.drain(),
    close: () => held.close(),
  };
}
