// A bounded cache of verified bearer tokens, keyed by a SHA-256 of the token (the
// token itself is never kept). An entry lives until min(token exp, ttl), so a cached
// token can never outlive its own expiry; revocation is checked by the caller on every
// hit. Oldest entries leave first when full (Map keeps insertion order).

import { hash } from 'node:crypto';
import type { Identity } from '../exchange/index.js';

interface Entry {
  readonly identity: Identity;
  readonly until: number;
}

export class VerifiedTokenCache {
  readonly #entries = new Map<string, Entry>();
  readonly #maxEntries: number;
  readonly #ttlMs: number;
  readonly #now: () => number;

  constructor(options: { maxEntries: number; ttlMs: number; now?: () => number }) {
    this.#maxEntries = options.maxEntries;
    this.#ttlMs = options.ttlMs;
    this.#now = options.now ?? Date.now;
  }

  static keyOf(token: string): string {
    return hash('sha256', token, 'base64url');
  }

  get(key: string): Identity | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.until <= this.#now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.identity;
  }

  set(key: string, identity: Identity): void {
    if (this.#maxEntries === 0 || this.#ttlMs === 0) return;
    const now = this.#now();
    const until = Math.min(identity.expiresAt ?? Number.POSITIVE_INFINITY, now + this.#ttlMs);
    if (until <= now) return;
    this.#entries.delete(key);
    this.#entries.set(key, { identity, until });
    if (this.#entries.size > this.#maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
  }

  get size(): number {
    return this.#entries.size;
  }
}
