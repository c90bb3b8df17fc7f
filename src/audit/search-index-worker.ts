// The full-text indexer's thread (search-index-thread.ts starts it): lowers its own
// priority, then indexes queued rows whenever the CPU is free, and publishes how many
// rows wait (for /metrics).

import { parentPort, workerData } from 'node:worker_threads';
import { startSearchIndexer } from './search-indexer.js';
import type { FromSearchIndexWorker, SearchIndexWorkerData } from './search-index-thread.js';
import { atNormalPriority, lowerThisThreadPriority } from './thread-priority.js';

const data = workerData as SearchIndexWorkerData;
const port = parentPort!;
const queued = new Int32Array(data.queued);
const background = lowerThisThreadPriority();
// Each indexing transaction holds the store's write lock, which the journal worker
// waits for: it runs at normal priority (thread-priority.ts).
const indexer = startSearchIndexer(data.sqlitePath, { intervalMs: data.intervalMs, holdingWriteLock: background ? atNormalPriority : undefined });

const count = () => {
  try {
    Atomics.store(queued, 0, Math.min(indexer.queuedRows(), 0x7fffffff));
  } catch {
    // Busy: the next count will do.
  }
};
count();
const timer = setInterval(count, 1000);

port.on('message', () => {
  clearInterval(timer);
  indexer.close();
  port.postMessage({ type: 'closed' } satisfies FromSearchIndexWorker);
});
port.postMessage({ type: 'ready', background } satisfies FromSearchIndexWorker);
