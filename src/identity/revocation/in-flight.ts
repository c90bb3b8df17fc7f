// The exchanges in flight on this gateway and who made them, so a revocation can end
// them: each entry's `cut` aborts the upstream request and destroys the client
// socket. An exchange registered after its identity was revoked is cut at once
// (closes the race between the identify stage and a revocation landing).

import type { Identity } from '../../exchange/index.js';

interface Entry {
  readonly identity: Identity;
  /** Ends the exchange; `reason` says which revocation (for the record's detail). */
  readonly cut: (reason: string) => void;
}

export class InFlightRegistry {
  readonly #entries = new Map<string, Entry>();
  readonly #revoked: (identity: Identity) => string | undefined;

  constructor(revoked: (identity: Identity) => string | undefined) {
    this.#revoked = revoked;
  }

  /** Returns the function that removes the entry (call it when the exchange ends). */
  register(id: string, identity: Identity, cut: (reason: string) => void): () => void {
    const reason = this.#revoked(identity);
    if (reason) {
      cut(reason);
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
      entry.cut(reason);
    }
    return cut;
  }

  get size(): number {
    return this.#entries.size;
  }
}
