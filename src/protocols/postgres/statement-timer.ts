// limits.statementTimeout: a limit on the first Query or Execute of a session's FIFO,
// from when the database starts on it (a pipelined Execute does not count its wait in
// the queue behind another). Parse, Bind, Describe, Close and Sync ahead of it take the
// database no time, but their answers are not flushed before the Sync that follows the
// Execute (node-postgres sends Parse … Execute Sync at once): so the Execute behind them
// is already running, and its clock starts with theirs. On expiry the callback gets the
// statement it was armed for; the session checks it is still the running one and
// cancels it on the database.
//
// A session runs thousands of statements per second, each far shorter than the limit:
// arming one costs a clock read, not a timer. One Timeout per session runs while some
// statement is armed; when it fires, the statement armed then is cancelled only if it
// has run the whole limit, and otherwise the Timeout is set again for what it has left.

import { performance } from 'node:perf_hooks';
import type { Pending } from './session-state.js';

export class StatementTimer {
  readonly #ms: number | undefined;
  readonly #onExpire: (head: Pending) => void;
  #armed: Pending | undefined;
  /** When the armed statement started (performance.now()). */
  #armedAt = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(ms: number | undefined, onExpire: (head: Pending) => void) {
    this.#ms = ms;
    this.#onExpire = onExpire;
  }

  /** Called whenever the head of `pending` may have changed. */
  arm(pending: readonly Pending[]): void {
    const ms = this.#ms;
    if (ms === undefined) return;
    const head = runningStatement(pending);
    if (head === this.#armed) return;
    this.#armed = head;
    if (!head) return;
    this.#armedAt = performance.now();
    this.#timer ??= setTimeout(() => this.#fire(), ms);
  }

  clear(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armed = undefined;
  }

  #fire(): void {
    this.#timer = undefined;
    const armed = this.#armed;
    if (!armed || (armed.kind !== 'query' && armed.kind !== 'execute')) return; // idle: the next arm starts a Timeout
    const left = this.#armedAt + this.#ms! - performance.now();
    // Timers may fire a little early (whole milliseconds): within 1 ms counts as expired.
    if (left > 1) this.#timer = setTimeout(() => this.#fire(), Math.ceil(left));
    else this.#onExpire(armed);
  }
}

/** The Query or Execute the database is running, or will run next: the first in the FIFO. */
export function runningStatement(pending: readonly Pending[]): Pending | undefined {
  for (const p of pending) if (p.kind === 'query' || p.kind === 'execute') return p;
  return undefined;
}
