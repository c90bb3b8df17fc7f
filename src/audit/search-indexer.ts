// SQLite full-text indexing in batches (migration 0010). Writing the FTS5 index inside
// each record commit cost more than the record itself (every commit wrote an index
// segment that FTS5 then had to merge), on the path the client waits on. Instead each
// new or changed row is queued in the same commit (a trigger), and this indexer moves
// queued rows into the index in one transaction per batch, a few times a second.
//
// A row is indexed once it has ended, or once it is older than `staleMs` (an answer
// still streaming, or cut off by a crash): indexing a row that later changes only
// queues it again. Search covers queued rows directly (exchange-query.ts), so nothing
// recorded is ever missing from a search while it waits.

import SQLite from 'better-sqlite3';
import { tuneSqliteConnection } from '../store/sqlite-connection.js';

export interface SearchIndexerOptions {
  readonly intervalMs?: number | undefined;
  readonly batch?: number | undefined;
  readonly staleMs?: number | undefined;
  readonly now?: () => number;
}

export interface SearchIndexer {
  /** Indexes what is ready now; returns how many rows were indexed. */
  runOnce(): number;
  /** Stops the timer, then indexes what is ready. */
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
    return move.immediate();
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
    close() {
      clearInterval(timer);
      try {
        while (runOnce() === batch);
      } catch {
        // Left queued; the next process to index picks them up.
      }
      closed = true;
      db.close();
    },
  };
}
