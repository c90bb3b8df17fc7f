// limits.statementTimeout: a limit on the Query or Execute at the head of a session's
// FIFO, from when the database starts on it (a pipelined Execute does not count its
// wait in the queue). On expiry the callback gets the head it was armed for; the session
// checks it is still the head and cancels the statement on the database.
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

  /** Called whenever the head may have changed. */
  arm(head: Pending | undefined): void {
    const ms = this.#ms;
    if (ms === undefined || head === this.#armed) return;
    this.#armed = head;
    if (!head || (head.kind !== 'query' && head.kind !== 'execute')) return;
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
