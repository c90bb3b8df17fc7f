// Background work (the full-text indexer) runs on a thread the kernel schedules after
// everything else: on a busy machine it yields the CPU to the threads relaying traffic
// and catches up when they are idle. Linux keeps a nice value per thread, so
// setpriority(2) on this thread's id lowers this thread alone.

import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';

/** The nice value of background threads: the lowest priority (19). */
export const backgroundNice = 19;

/** Lowers the calling thread's priority; false where the platform offers no per-thread way. */
export function lowerThisThreadPriority(nice = backgroundNice): boolean {
  let tid: number;
  try {
    // "<pid>/task/<tid>": the calling thread's own entry (Linux 3.17+).
    tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
  } catch {
    return false;
  }
  if (!Number.isInteger(tid) || tid <= 0) return false;
  try {
    setPriority(tid, nice);
    return true;
  } catch {
    return false;
  }
}
