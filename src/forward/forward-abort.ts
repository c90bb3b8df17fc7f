// A one-shot abort for a forwarded request. The data plane makes one per exchange, so it
// carries only what the forwarders read of an AbortSignal — `aborted`, `reason`, and
// 'abort' listeners (undici's request, the agent hub) — without the EventTarget set-up
// a real AbortController costs on every request.

import type { ForwardSignal } from './forwarder.js';

export class ForwardAbort implements ForwardSignal {
  aborted = false;
  reason: unknown = undefined;
  #listeners: Array<() => void> | undefined;

  addEventListener(_type: 'abort', listener: () => void): void {
    // As on an AbortSignal, a listener added after the abort never runs.
    if (this.aborted) return;
    (this.#listeners ??= []).push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const listeners = this.#listeners;
    if (!listeners) return;
    const i = listeners.indexOf(listener);
    if (i >= 0) listeners.splice(i, 1);
  }

  /** Aborts once (later calls do nothing); each listener runs once, as with `{ once: true }`. */
  abort(reason: unknown = new DOMException('This operation was aborted', 'AbortError')): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.#listeners;
    this.#listeners = undefined;
    if (listeners) for (const listener of listeners) listener();
  }
}
