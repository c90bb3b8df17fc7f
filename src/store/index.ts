export { openStore, migrate, StoreError, type Store, type StoreConfig } from './open-store.js';
export type { Database, ExchangeRow, ApiKeyRow, ReviewRow, ReviewVoteRow, AuditEventRow, AuditCheckpointRow } from './schema.js';
export type { DialectName } from './migrations.js';
export { isStoreUnreachable } from './store-unreachable.js';
export { inTransaction } from './in-transaction.js';
export { storableText } from './storable-text.js';
export { tryFileLock, type FileLock } from './file-lock.js';
export { lockSqliteStore, sqliteStoreLockHeld, StoreInUseError, type StoreLock } from './store-lock.js';
