// An exclusive lock on a file, for "is the process that wrote this still running?" where
// a pid cannot tell: a process in another container (pid namespace) sharing the folder
// looks dead, or has this process's own pid (each container's pid 1). The lock is
// SQLite's (the kernel's fcntl lock) on a dedicated empty database, as store-lock.ts
// takes the store's, so it ends with its process, SIGKILL included, and holds across pid
// namespaces on one host; within one process SQLite keeps it per connection.

import { closeSync, openSync } from 'node:fs';
import SQLite from 'better-sqlite3';

export interface FileLock {
  /** Releases the lock (the process ending releases it too). */
  release(): void;
}

/**
 * Takes the lock at `path` (creating the file, mode 0600, when missing), or returns
 * undefined when another process (or connection) holds it (after waiting up to
 * `waitMs` for it to be let go). Throws when the file system gives no lock at all.
 */
export function tryFileLock(path: string, options: { readonly waitMs?: number } = {}): FileLock | undefined {
  try {
    closeSync(openSync(path, 'wx', 0o600));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const db = new SQLite(path, { timeout: options.waitMs ?? 0 });
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    db.pragma('journal_mode = MEMORY');
    // A write takes the EXCLUSIVE lock, which this locking mode keeps until close.
    db.pragma('user_version = 1');
  } catch (error) {
    db.close();
    if (String((error as { code?: string }).code).startsWith('SQLITE_BUSY')) return undefined;
    throw error;
  }
  return { release: () => db.close() };
}
