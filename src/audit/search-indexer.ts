// SQLite full-text indexing in batches (migrations 0010, 0013). Every new or changed
// row is queued in the commit that writes it (a trigger), and this indexer moves queued
// rows into the FTS5 index, one transaction per batch. Indexing costs about as much CPU
// as the rest of applying a record, and nothing waits for it: in the gateway it runs
// on a thread of its own at the lowest priority (search-index-thread.ts), so under load
// it yields to the threads relaying traffic and catches up when they are idle.
//
// A row is indexed once it has ended, or once it is older than `staleMs` (an answer
// still streaming, or cut off by a crash): indexing a row that later changes only
// queues it again. Search covers queued rows directly (exchange-query.ts), so nothing
// recorded is ever missing from a search while it waits; a long queue only makes text
// searches slower.

import SQLite from 'better-sqlite3';
import { tuneSqliteConnection } from '../store/sqlite-connection.js';

export interface SearchIndexerOptions {
  readonly intervalMs?: number | undefined;
  readonly batch?: number | undefined;
  readonly staleMs?: number | undefined;
  readonly now?: () => number;
  /** Runs each indexing transaction, which holds the store's write lock (the background thread's priority change). */
  readonly holdingWriteLock?: (<T>(write: () => T) => T) | undefined;
}

export interface SearchIndexer {
  /** Indexes one batch of what is ready now; returns how many rows were indexed. */
  runOnce(): number;
  /** Rows queued for the index (indexed or not yet ready). */
  queuedRows(): number;
  /** Stops the timer. Rows still queued stay queued (and searchable) for the next indexer. */
  close(): void;
}

export function startSearchIndexer(path: string, options: SearchIndexerOptions = {}): SearchIndexer {
  const db = new SQLite(path);
  // Indexing can always wait for the next pass: never hold the thread (often the one
  // relaying traffic) waiting for another writer's lock.
  tuneSqliteConnection(db, { busyTimeoutMs: 50 });
  const batch = options.batch ?? 200;
  const staleMs = options.staleMs ?? 60_000;
  const now = options.now ?? Date.now;
  const ready = db.prepare(
    `select p.seq from exchanges_fts_pending p join exchanges e on e.seq = p.seq
     where e.ended_at is not null or e.started_at < @stale order by p.seq limit ${batch}`,
  ).pluck();
  const index = db.prepare('insert into exchanges_fts(rowid, prompt_text, response_text) select seq, prompt_text, response_text from exchanges where seq = ?');
  const dequeue = db.prepare('delete from exchanges_fts_pending where seq = ?');
  const countQueued = db.prepare('select count(*) from exchanges_fts_pending').pluck();
  const move = db.transaction(() => {
    // Read again under the write lock: another process may have indexed some meanwhile.
    const seqs = ready.all({ stale: now() - staleMs }) as number[];
    for (const seq of seqs) {
      index.run(seq);
      dequeue.run(seq);
    }
    return seqs.length;
  });

  let closed = false;
  const runOnce = (): number => {
    if (closed || ready.all({ stale: now() - staleMs }).length === 0) return 0;
    return options.holdingWriteLock ? options.holdingWriteLock(() => move.immediate()) : move.immediate();
  };
  // One batch per turn of the event loop, so the thread (often the one relaying traffic)
  // is never held for more than one batch; a full batch means more may be ready.
  const pass = () => {
    try {
      if (runOnce() === batch) setImmediate(pass).unref();
    } catch {
      // Busy or failing: the rows stay queued (and searchable) for the next pass.
    }
  };
  const timer = setInterval(pass, options.intervalMs ?? 250);
  timer.unref();

  return {
    runOnce,
    queuedRows: () => (closed ? 0 : Number(countQueued.get())),
    close() {
      // A backlog left by a busy period can be large: stopping never waits for it.
      clearInterval(timer);
      closed = true;
      db.close();
    },
  };
}
