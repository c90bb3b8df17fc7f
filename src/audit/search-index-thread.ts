// Keeps the SQLite full-text index on a worker thread of its own, at the lowest
// priority (search-index-worker.ts): indexing never takes CPU from relaying traffic or
// from applying records, and catches up when the machine is idle. Until a row is
// indexed, search reads it from the queue (exchange-query.ts).

import { Worker } from 'node:worker_threads';
import { workerScript } from './worker-script.js';

export interface SearchIndexWorkerData {
  readonly sqlitePath: string;
  readonly intervalMs: number;
  /** [0]: rows queued for the index, as last counted by the worker. */
  readonly queued: SharedArrayBuffer;
}

export type FromSearchIndexWorker = { readonly type: 'ready'; readonly background: boolean } | { readonly type: 'closed' };

export interface SearchIndexThread {
  /** Rows waiting for the full-text index, as of the indexer's last count (about once a second). */
  queuedRows(): number;
  /** Whether the thread runs at background priority (false where the platform cannot lower one thread). */
  readonly background: boolean;
  close(): Promise<void>;
}

export interface SearchIndexThreadOptions {
  readonly intervalMs?: number | undefined;
  /** The thread failed (it is restarted a second later; rows stay queued meanwhile). */
  readonly onError?: ((message: string) => void) | undefined;
}

export async function startSearchIndexThread(sqlitePath: string, options: SearchIndexThreadOptions = {}): Promise<SearchIndexThread> {
  const queued = new Int32Array(new SharedArrayBuffer(4));
  const data: SearchIndexWorkerData = { sqlitePath, intervalMs: options.intervalMs ?? 250, queued: queued.buffer as SharedArrayBuffer };
  let worker!: Worker;
  let closing = false;
  let alive = false;
  let background = false;
  let closed: (() => void) | undefined;

  const start = () =>
    new Promise<void>((resolve) => {
      worker = new Worker(workerScript(import.meta.url, 'search-index-worker'), { workerData: data });
      worker.on('message', (message: FromSearchIndexWorker) => {
        if (message.type === 'ready') {
          alive = true;
          background = message.background;
          resolve();
        } else closed?.();
      });
      worker.on('error', (error) => options.onError?.(`search index thread failed: ${error.message}`));
      worker.on('exit', () => {
        alive = false;
        resolve();
        closed?.();
        if (!closing) setTimeout(() => void start(), 1000).unref();
      });
    });
  await start();

  return {
    queuedRows: () => Atomics.load(queued, 0),
    get background() {
      return background;
    },
    async close() {
      closing = true;
      if (alive) await new Promise<void>((resolve) => {
        closed = resolve;
        worker.postMessage({ type: 'close' });
      });
      await worker.terminate();
    },
  };
}
