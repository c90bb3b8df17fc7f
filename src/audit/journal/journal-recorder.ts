// The recorder of a gateway on a SQLite store. Each record operation is built on the
// relaying thread (record-columns.ts) and appended to the record journal; the promise
// the pipeline awaits settles when the line is written (journal-writer.ts). A worker
// thread applies the journal to the store in batches (journal-worker.ts), so hashing,
// SQLite writes and indexing cost the relaying thread nothing. drain() waits until
// everything written so far is applied: readers of the store (the admin API) call it
// first, so what a client has been answered is always found.

import { Worker } from 'node:worker_threads';
import type { AuditConfig } from '../../config/audit-schema.js';
import type { AuditEvent } from '../audit-event.js';
import { recordColumns, type RecordColumnOptions } from '../record-columns.js';
import type { Recorder } from '../recorder.js';
import { startSearchIndexThread } from '../search-index-thread.js';
import { workerScript } from '../worker-script.js';
import { openLine } from './journal-lines.js';
import { JournalWriter } from './journal-writer.js';
import { journalDirOf } from './segments.js';

export interface JournalWorkerData {
  readonly sqlitePath: string;
  readonly audit: AuditConfig;
  readonly progress: SharedArrayBuffer;
  readonly ownSegmentPrefix: string;
  readonly intervalMs: number;
  readonly publishEvents: boolean;
}

export type ToJournalWorker =
  | { readonly type: 'drain' | 'close'; readonly id: number }
  /** The writer began segment `name`: register it, so its deletion is found. */
  | { readonly type: 'segment'; readonly name: string }
  /** The writer found segment `name` deleted under it after writing `written` bytes: chain it now. */
  | { readonly type: 'unlinked'; readonly name: string; readonly written: number };
export type FromJournalWorker =
  | { readonly type: 'ready'; readonly error?: string | undefined }
  | { readonly type: 'done'; readonly id: number; readonly error?: string | undefined }
  | { readonly type: 'events'; readonly events: AuditEvent[] }
  | { readonly type: 'error'; readonly message: string };

export class RecordJournalError extends Error {
  readonly code = 'recording_failed';
}

export interface JournalRecorderOptions extends RecordColumnOptions {
  readonly sqlitePath: string;
  readonly audit: AuditConfig;
  /** Committed events, for the audit sinks (omit when there are none). */
  readonly onEvents?: ((events: readonly AuditEvent[]) => void) | undefined;
  /** A segment was deleted under the writer after `written` bytes went to it (it writes on in a new one; recording.journal_missing is chained). */
  readonly onSegmentDeleted?: ((segment: string, written: number) => void) | undefined;
  /** Applying failed (the lines stay in the journal and are retried). */
  readonly onError?: ((message: string) => void) | undefined;
  /** How often the worker looks for new lines (default 100 ms: bigger batches cost less per record, and readers drain first anyway). */
  readonly intervalMs?: number | undefined;
  /** How often the full-text index thread looks for queued rows (default 250 ms). */
  readonly searchIndexIntervalMs?: number | undefined;
}

export interface JournalRecorder extends Recorder {
  /** Batches written to the journal and not yet applied to the store (0 when caught up). */
  pendingBatches(): number;
  /** Rows applied to the store and not yet in its full-text index (search still finds them). */
  unindexedRows(): number;
  close(): Promise<void>;
}

export async function startJournalRecorder(options: JournalRecorderOptions): Promise<JournalRecorder> {
  // Set once the worker runs; the first segment is begun by the first record, after that.
  let tell: ((message: ToJournalWorker) => void) | undefined;
  const journal = new JournalWriter(journalDirOf(options.sqlitePath), {
    onSegmentOpened: (name) => tell?.({ type: 'segment', name }),
    onSegmentUnlinked: (name, written) => {
      options.onSegmentDeleted?.(name, written);
      tell?.({ type: 'unlinked', name, written });
    },
  });
  // The answer of a plain JSON exchange is read on the worker, off the relaying thread.
  const columns = recordColumns({ ...options, answersReadLater: true });
  const pending = new Map<number, { resolve: () => void; reject: (error: Error) => void }>();
  let nextId = 1;
  let closing = false;
  let alive = false;

  const data: JournalWorkerData = {
    sqlitePath: options.sqlitePath,
    audit: options.audit,
    progress: journal.progress.buffer as SharedArrayBuffer,
    ownSegmentPrefix: journal.segmentPrefix,
    intervalMs: options.intervalMs ?? 100,
    publishEvents: options.onEvents !== undefined,
  };

  let worker!: Worker;
  const start = () =>
    new Promise<void>((resolve) => {
      worker = new Worker(workerScript(import.meta.url, 'journal-worker'), { workerData: data });
      worker.on('message', (message: FromJournalWorker) => {
        if (message.type === 'ready') {
          alive = true;
          if (message.error) options.onError?.(message.error);
          resolve();
        } else if (message.type === 'done') {
          const waiter = pending.get(message.id);
          pending.delete(message.id);
          if (message.error) waiter?.reject(new RecordJournalError(`applying the record journal failed: ${message.error}`));
          else waiter?.resolve();
        } else if (message.type === 'events') options.onEvents?.(message.events);
        else options.onError?.(message.message);
      });
      worker.on('error', (error) => options.onError?.(`record journal worker failed: ${error.message}`));
      worker.on('exit', (code) => {
        alive = false;
        const failure = new RecordJournalError(`record journal worker exited (${code})`);
        for (const waiter of pending.values()) waiter.reject(failure);
        pending.clear();
        resolve();
        // Records stay durable in the journal meanwhile; a new worker applies them.
        if (!closing) setTimeout(() => void start(), 1000).unref();
      });
    });
  await start();
  tell = (message) => {
    if (alive) worker.postMessage(message);
  };
  // The full-text index is kept by a thread of its own at background priority.
  const searchIndex = await startSearchIndexThread(options.sqlitePath, { intervalMs: options.searchIndexIntervalMs, onError: options.onError });

  const call = (type: 'drain' | 'close') =>
    new Promise<void>((resolve, reject) => {
      if (!alive) return reject(new RecordJournalError('the record journal worker is not running (it restarts within a second)'));
      const id = nextId++;
      pending.set(id, { resolve, reject });
      worker.postMessage({ type, id } satisfies ToJournalWorker);
    });

  return {
    // Without the columns still at their default (journal-lines.ts).
    open: (exchange, decision, request) => journal.appendLine(openLine(columns.opened(exchange, decision, request))),
    progress: (exchange, progress) => journal.append({ op: 'progress', id: exchange.id, columns: columns.progress(progress) }),
    finish: (exchange, outcome) => {
      const finished = columns.outcome(exchange, outcome);
      return journal.append(outcome.unreadAnswer ? { op: 'finish', id: exchange.id, columns: finished, answer: outcome.unreadAnswer } : { op: 'finish', id: exchange.id, columns: finished });
    },
    refuse: (exchange, decision, request, outcome) => journal.append({ op: 'refuse', row: { ...columns.opened(exchange, decision, request), ...columns.outcome(exchange, outcome) } }),
    pendingBatches: () => (Atomics.load(journal.progress, 0) - Atomics.load(journal.progress, 1)) | 0,
    unindexedRows: () => searchIndex.queuedRows(),
    drain() {
      journal.flush();
      return call('drain');
    },
    async close() {
      journal.close();
      closing = true;
      await call('close').catch((error: unknown) => options.onError?.((error as Error).message));
      await worker.terminate();
      await searchIndex.close();
    },
  };
}
