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
// On SQLite the gateway records through the record journal instead (journal/): the
// same rows and events, made durable as one append to a file and applied to the store
// in batches on a worker thread.

import type { Kysely } from 'kysely';
import type { Decision, Exchange, ExchangeOutcome, RecordedRequest } from '../exchange/index.js';
import type { Database } from '../store/index.js';
import type { ExchangeState } from './exchange-state.js';
import { GroupCommitWriter } from './group-commit.js';
import { eventFor, recordColumns, type ExchangeProgress, type RecordColumnOptions } from './record-columns.js';

export type { ExchangeProgress } from './record-columns.js';

export interface Recorder {
  open(exchange: Exchange, decision: Decision, request: RecordedRequest): Promise<void>;
  progress(exchange: Exchange, progress: ExchangeProgress): Promise<void>;
  finish(exchange: Exchange, outcome: ExchangeOutcome): Promise<void>;
  /** One write for an exchange that never reached the upstream. */
  refuse(exchange: Exchange, decision: Decision | undefined, request: RecordedRequest | undefined, outcome: ExchangeOutcome): Promise<void>;
  /** Resolves when everything recorded so far can be read from the store. */
  drain(): Promise<void>;
}

export interface RecorderOptions extends RecordColumnOptions {
  /** Shared with the AuditLog so both append to the chain in the same batches. */
  readonly writer?: GroupCommitWriter | undefined;
}

export function createRecorder(db: Kysely<Database>, options: RecorderOptions = {}): Recorder {
  const writer = options.writer ?? new GroupCommitWriter(db);
  const columns = recordColumns(options);
  // The row as last written, per exchange in flight: each event hashes the whole row.
  const rows = new Map<string, ExchangeState>();

  return {
    open(exchange, decision, request) {
      const row = columns.opened(exchange, decision, request);
      rows.set(exchange.id, row);
      return writer.record({ exchange: { insert: row }, event: eventFor('exchange.opened', row) });
    },
    progress(exchange, progress) {
      const previous = rows.get(exchange.id);
      if (!previous) return Promise.resolve();
      const changed = columns.progress(progress);
      const row = { ...previous, ...changed };
      rows.set(exchange.id, row);
      return writer.record({ exchange: { update: exchange.id, columns: changed }, event: eventFor('exchange.progress', row) });
    },
    finish(exchange, outcome) {
      const changed = columns.outcome(exchange, outcome);
      const previous = rows.get(exchange.id);
      rows.delete(exchange.id);
      if (previous) return writer.record({ exchange: { update: exchange.id, columns: changed }, event: eventFor('exchange.finished', { ...previous, ...changed }) });
      // Without the opened row in memory (not expected), read it back so the digest is exact.
      return writer.write(async (trx, emit) => {
        await trx.updateTable('exchanges').set(changed).where('id', '=', exchange.id).execute();
        const base = (await trx.selectFrom('exchanges').selectAll().where('id', '=', exchange.id).executeTakeFirst()) as ExchangeState | undefined;
        if (base) emit(eventFor('exchange.finished', { ...base, ...changed }));
      });
    },
    refuse(exchange, decision, request, outcome) {
      const row = { ...columns.opened(exchange, decision, request), ...columns.outcome(exchange, outcome) };
      return writer.record({ exchange: { insert: row }, event: eventFor('exchange.refused', row) });
    },
    drain: () => writer.drain(),
  };
}
