// The exchanges in flight on this gateway and who made them, so a revocation (or the
// end of a shutdown's grace period) can end them: each entry's `cut` aborts the
// upstream request and closes the client's side, recording the error it is given. An
// exchange registered after its identity was revoked is cut at once (closes the race
// between the identify stage and a revocation landing).

import { GatehouseError } from '../../errors/index.js';
import type { Identity } from '../../exchange/index.js';

/** Ends an exchange in flight; `error` is what its record says ended it. */
export type CutExchange = (error: GatehouseError) => void;

interface Entry {
  readonly identity: Identity;
  readonly cut: CutExchange;
}

function revokedError(reason: string): GatehouseError {
  return new GatehouseError('credential_revoked', { message: 'The credential was revoked while this exchange was in flight, so it was ended.', detail: reason });
}

export class InFlightRegistry {
  readonly #entries = new Map<string, Entry>();
  #ended: GatehouseError | undefined;
  readonly #revoked: (identity: Identity) => string | undefined;

  constructor(revoked: (identity: Identity) => string | undefined) {
    this.#revoked = revoked;
  }

  /** Returns the function that removes the entry (call it when the exchange ends). */
  register(id: string, identity: Identity, cut: CutExchange): () => void {
    const reason = this.#revoked(identity);
    if (reason) {
      cut(revokedError(reason));
      return () => undefined;
    }
    this.#entries.set(id, { identity, cut });
    return () => this.#entries.delete(id);
  }

  /** Cuts every exchange whose identity is now revoked; returns how many. */
  cutRevoked(): number {
    let cut = 0;
    for (const [id, entry] of this.#entries) {
      const reason = this.#revoked(entry.identity);
      if (!reason) continue;
      this.#entries.delete(id);
      cut++;
      entry.cut(revokedError(reason));
    }
    return cut;
  }

  /** Cuts every exchange in flight with `error` (a shutdown's grace period is over); returns how many. */
  cutAll(error: GatehouseError): number {
    this.#ended = error;
    const entries = [...this.#entries.values()];
    this.#entries.clear();
    for (const entry of entries) entry.cut(error);
    return entries.length;
  }

  /**
   * Set once `cutAll` ran: the error exchanges not (yet) registered, such as one held for
   * approval, are ended with when their connection is closed next.
   */
  get ended(): GatehouseError | undefined {
    return this.#ended;
  }

  get size(): number {
    return this.#entries.size;
  }
}
