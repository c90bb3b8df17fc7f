// Background work (the full-text indexer) runs on a thread the kernel schedules after
// everything else: on a busy machine it yields the CPU to the threads relaying traffic
// and catches up when they are idle. Linux keeps a nice value per thread, so
// setpriority(2) on this thread's id changes this thread alone.
//
// A thread at the lowest priority must not hold a lock a normal thread waits for: on a
// busy machine it may wait for the CPU for a long time meanwhile (priority inversion).
// Such a thread comes back to normal priority for as long as it holds one
// (atNormalPriority), which needs the right to raise a priority: CAP_SYS_NICE, or an
// RLIMIT_NICE of 20. Without it, background work stays at normal priority.

import { readFileSync, readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';

/** The nice value of background threads: the lowest priority (19). */
export const backgroundNice = 19;

const capSysNice = 23n;

/** Whether this process may raise a thread's priority back to normal (nice 0) once lowered. */
export function mayRaisePriority(): boolean {
  try {
    const capEff = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    if (capEff !== undefined && ((BigInt(`0x${capEff}`) >> capSysNice) & 1n) === 1n) return true;
    // The soft limit: a process may go down to nice 20 - limit.
    const limit = /^Max nice priority\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1];
    return limit === 'unlimited' || Number(limit) >= 20;
  } catch {
    return false;
  }
}

/** Sets the calling thread's nice value; false where the platform offers no per-thread way or refuses it. */
export function setThisThreadPriority(nice: number): boolean {
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

/** Lowers the calling thread to background priority, if it can come back (see above); whether it did. */
export function lowerThisThreadPriority(): boolean {
  return mayRaisePriority() && setThisThreadPriority(backgroundNice);
}

/** Runs `work` at normal priority (a background thread holding a lock), then lowers the thread again. */
export function atNormalPriority<T>(work: () => T): T {
  setThisThreadPriority(0);
  try {
    return work();
  } finally {
    setThisThreadPriority(backgroundNice);
  }
}
