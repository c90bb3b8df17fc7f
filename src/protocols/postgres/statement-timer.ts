// limits.statementTimeout: one timer for the Query or Execute at the head of a session's
// FIFO, from when the database starts on it (a pipelined Execute does not count its
// wait in the queue). On expiry the callback gets the head it was armed for; the session
// checks it is still the head and cancels the statement on the database.

import type { Pending } from './session-state.js';

export class StatementTimer {
  readonly #ms: number | undefined;
  readonly #onExpire: (head: Pending) => void;
  #armed: Pending | undefined;
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
    // One Timeout, restarted (refresh) per statement; a stale expiry finds another head
    // armed and does nothing.
    if (this.#timer) this.#timer.refresh();
    else
      this.#timer = setTimeout(() => {
        const armed = this.#armed;
        if (armed && (armed.kind === 'query' || armed.kind === 'execute')) this.#onExpire(armed);
      }, ms);
  }

  clear(): void {
    clearTimeout(this.#timer);
  }
}
