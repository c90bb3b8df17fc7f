// Links a re-executed exchange to the recording it repeats. The admin API issues a
// one-time random token for the original's id and sends it with the new request in
// `gatehouse-reexecution`; the data plane binds it to the new exchange's id, and the
// recorder takes the link from there. Tokens live only in this process, so a caller
// cannot forge a link by sending the header; unused ones expire after a minute.

import { randomBytes } from 'node:crypto';

const ttlMs = 60_000;

export class Reexecutions {
  readonly #tokens = new Map<string, { originalId: string; at: number }>();
  readonly #bound = new Map<string, { originalId: string; at: number }>();

  issue(originalId: string): string {
    this.#sweep();
    const token = randomBytes(24).toString('base64url');
    this.#tokens.set(token, { originalId, at: Date.now() });
    return token;
  }

  /** Data plane: the request for `exchangeId` carried this header value. */
  bind(exchangeId: string, token: string | string[] | undefined): void {
    if (typeof token !== 'string') return;
    const entry = this.#tokens.get(token);
    if (!entry) return;
    this.#tokens.delete(token);
    this.#bound.set(exchangeId, entry);
  }

  /** Recorder: the original this exchange re-executes, if any (once). */
  take(exchangeId: string): string | undefined {
    const entry = this.#bound.get(exchangeId);
    this.#bound.delete(exchangeId);
    return entry?.originalId;
  }

  #sweep(): void {
    const old = Date.now() - ttlMs;
    for (const map of [this.#tokens, this.#bound]) for (const [key, value] of map) if (value.at < old) map.delete(key);
  }
}
