// Rows the recording gateway's full-text indexer has not indexed yet, read from its
// SQLite store. The gateway indexes at background priority, so under load this grows
// and the work is done when the machine is idle: the benches report how far it got
// behind, and let it finish between rounds rather than in another target's round.

import SQLite from 'better-sqlite3';

export function unindexedRows(storeFile: string): number {
  const db = new SQLite(storeFile, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM exchanges_fts_pending').get() as { n: number }).n;
  } finally {
    db.close();
  }
}
