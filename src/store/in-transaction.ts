// Runs `work` in a transaction: the caller's, when `db` already is one (so a change can
// share the transaction that chains its audit event), or a new one.

import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

export function inTransaction<T>(db: Kysely<Database>, work: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
  // Kysely refuses a transaction inside a transaction; the outer one is what commits.
  return db.isTransaction ? work(db) : db.transaction().execute(work);
}
