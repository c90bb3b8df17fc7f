// Which held-records spill files in the data directory a starting gateway takes over
// (held-records.ts): those of gateways that are gone. While its file exists a gateway
// holds a kernel lock on `held-records-<pid>-<file id>.lock` beside it (file-lock.ts),
// which ends with the process, SIGKILL included; a start takes over only a file whose
// lock it can take. A pid could not tell: gateways in other containers sharing the folder
// look dead, or have this one's pid (each container's pid 1), and two such gateways once
// wrote one file, each removing the other's records with its own. A file of an earlier
// build (held-records-<pid>.jsonl, no lock), or on a file system that gives no locks, is
// taken over when no process has its pid (the limit docs/operations.md states).

import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { tryFileLock, type FileLock } from '../store/index.js';

/** `held-records-<pid>-<file id>.jsonl`; an earlier build's has no file id (and no lock). */
export const spillPattern = /^held-records-(\d+)(?:-([A-Za-z0-9_-]{16}))?\.jsonl$/;
const lockPattern = /^held-records-\d+-[A-Za-z0-9_-]{16}\.lock$/;

/** The lock held by the writer of the spill file `name` (beside it) while it runs. */
export function lockPathOf(dir: string, name: string): string {
  return join(dir, name.replace(/\.jsonl$/, '.lock'));
}

/** A previous run's spill file to take over, and its writer's lock, now this process's (undefined: an earlier build's). */
export interface Taken {
  readonly name: string;
  readonly lock: FileLock | undefined;
}

/** Whether a process with this pid exists (another gateway's spill file is not taken over). */
function processAlive(pid: number): boolean {
  if (pid === process.pid) return false; // this process has written nothing yet: a previous run's (a container's pid 1)
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The spill file `name` when it is a previous run's to take over: its writer's lock is
 * free (taken now, held until its records are in this process's file), or, written by an
 * earlier build (no lock), no process has its pid. Empty otherwise: a gateway still
 * running, in this container or another, keeps its own.
 */
export function takeOver(dir: string, name: string): Taken[] {
  const match = spillPattern.exec(name);
  if (!match) return [];
  if (match[2] === undefined) return processAlive(Number(match[1])) ? [] : [{ name, lock: undefined }];
  let lock: FileLock | undefined;
  try {
    lock = tryFileLock(lockPathOf(dir, name));
  } catch {
    // A file system without locks (its writer spilled without one): by the pid, as before locks.
    return processAlive(Number(match[1])) ? [] : [{ name, lock: undefined }];
  }
  return lock ? [{ name, lock }] : [];
}

/** Lock files whose spill file is gone (a writer killed between removing the one and the other), when free. */
export function removeStaleLocks(dir: string, listed: readonly string[]): void {
  const present = new Set(listed);
  for (const name of listed) {
    if (!lockPattern.test(name) || present.has(name.replace(/\.lock$/, '.jsonl'))) continue;
    try {
      const lock = tryFileLock(join(dir, name));
      if (!lock) continue;
      rmSync(join(dir, name), { force: true });
      lock.release();
    } catch {
      // Left: it holds nothing.
    }
  }
}
