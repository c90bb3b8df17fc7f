// The settings every SQLite connection to the store takes (they are per connection;
// only WAL mode is kept in the file). One place, so the gateway's connection, the
// record journal's and the search indexer's cannot drift apart.

import type SQLite from 'better-sqlite3';

export interface SqliteConnectionOptions {
  /** How long a statement waits for another connection's write lock before SQLITE_BUSY. */
  readonly busyTimeoutMs: number;
}

export function tuneSqliteConnection(db: SQLite.Database, options: SqliteConnectionOptions): void {
  db.pragma(`busy_timeout = ${Math.trunc(options.busyTimeoutMs)}`);
  // NORMAL survives a process crash (a committed transaction is in the WAL) at a
  // fraction of FULL's fsync cost.
  db.pragma('synchronous = NORMAL');
  // Statement journals in memory: an INSERT that fires a trigger (the full-text index)
  // or an upsert inside a transaction otherwise opens, writes and deletes a temporary
  // file each time, which was most of the system calls of applying a record batch.
  db.pragma('temp_store = MEMORY');
}
