// One gateway per SQLite store: a second gateway on the same file would write the same
// record journal, and when the two cannot see each other's pid (containers sharing a
// volume, each its own pid 1) each takes the other's live segments for a dead writer's
// and applies and deletes them under it: records are lost. The CLI does not take this
// lock (it reads, and writes through SQLite's own locks, beside a running gateway).
//
// Why this lock: an exclusive lock on a dedicated SQLite database, `<file>.lock`, held
// open with `locking_mode = EXCLUSIVE`. SQLite's file locks are the kernel's (fcntl), so
// - the lock dies with the process, SIGKILL included: nothing stale blocks a restart,
//   and no pid is ever compared (a pid can be reused, or be another namespace's);
// - it holds across pid namespaces on one host (containers sharing the volume), and
//   between two gateways in one process (SQLite tracks its own connections per inode);
// - it needs no dependency (Node has no flock; better-sqlite3 is the store's driver).
// Who holds it is written beside it, `<file>.lock-holder` (pid, host, start time), only
// to name the holder in the refusal: the lock, never that file, decides.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { tryFileLock, type FileLock } from './file-lock.js';
import { sqliteOpenError, StoreError } from './open-store.js';

export type StoreLock = FileLock;

interface LockHolder {
  readonly pid: number;
  readonly host: string;
  readonly startedAt: string;
}

/** Another gateway holds the SQLite store: this one must not start. */
export class StoreInUseError extends StoreError {
  readonly code = 'store_in_use';
  constructor(
    readonly sqlitePath: string,
    readonly holder: LockHolder | undefined,
  ) {
    const who = holder ? `pid ${holder.pid} on host ${holder.host}, started ${holder.startedAt}` : 'a process that has not yet said which';
    super(
      `the SQLite store ${sqlitePath} in ${dirname(sqlitePath)} is in use by another gateway (${who}): one gateway per SQLite store; stop that one, or give this one a store of its own (several gateways share a PostgreSQL store)`,
    );
    this.name = 'StoreInUseError';
  }
}

/**
 * Takes the gateway's lock on the SQLite store at `sqlitePath`, before the store is
 * opened, or throws StoreInUseError having changed nothing.
 */
export function lockSqliteStore(sqlitePath: string): StoreLock {
  const lockPath = `${sqlitePath}.lock`;
  const holderPath = `${lockPath}-holder`;
  let lock: FileLock | undefined;
  try {
    mkdirSync(dirname(sqlitePath), { recursive: true, mode: 0o700 });
    // A CLI command's probe (sqliteStoreLockHeld) holds a read lock for a moment: wait
    // that out. A gateway holding it holds it for good: that is an answer, not a wait.
    lock = tryFileLock(lockPath, { waitMs: 250 });
  } catch (error) {
    // As openStore says it: what stops the lock (a path, a permission, a file system
    // without locks) stops the store.
    throw sqliteOpenError(sqlitePath, error);
  }
  if (lock === undefined) throw new StoreInUseError(sqlitePath, readHolder(holderPath));
  const holder: LockHolder = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString() };
  try {
    writeFileSync(holderPath, `${JSON.stringify(holder)}\n`, { mode: 0o600 });
  } catch {
    // Only a name for a refusal (which then says the holder is unknown): the lock holds.
  }
  return lock;
}

/**
 * Whether a gateway holds the lock on the SQLite store at `sqlitePath` now. A CLI command
 * asks, so as to leave every record journal segment to that gateway: from another
 * container the gateway's pid looks dead, and its live segments like a dead writer's.
 */
export function sqliteStoreLockHeld(sqlitePath: string): boolean {
  let db: SQLite.Database;
  try {
    db = new SQLite(`${sqlitePath}.lock`, { readonly: true, fileMustExist: true, timeout: 0 });
  } catch {
    return false; // no lock file: no gateway of this version has run on the store
  }
  try {
    db.prepare('select count(*) from sqlite_master').get();
    return false;
  } catch (error) {
    return String((error as { code?: string }).code).startsWith('SQLITE_BUSY');
  } finally {
    db.close();
  }
}

function readHolder(path: string): LockHolder | undefined {
  try {
    const holder = JSON.parse(readFileSync(path, 'utf8')) as Partial<LockHolder>;
    return typeof holder.pid === 'number' && typeof holder.host === 'string' && typeof holder.startedAt === 'string' ? (holder as LockHolder) : undefined;
  } catch {
    // Not written yet (the holder took the lock a moment ago), or unreadable: unnamed.
    return undefined;
  }
}
