// Counters behind limits, one interface and two stores: in memory (one process) and
// Redis (several gateways, exact: every check-and-add is one atomic script).
// Windows are fixed: a counter belongs to window floor(now / windowMs) and expires
// with it; a refusal says how long until the window ends (Retry-After).

export interface CounterRequest {
  /** Counter key without the window suffix. */
  readonly key: string;
  readonly windowMs: number;
  /** Added when every counter of the request passes. */
  readonly amount: number;
  /** Refused when current + check > limit (tokens: amount 0, check 1 = "not yet used up"). */
  readonly check: number;
  readonly limit: number;
}

export interface TakeRefusal {
  /** Index of the first counter that refused. */
  readonly index: number;
  readonly retryAfterMs: number;
}

export interface LimitStore {
  /** Atomically: if every counter passes its check, adds every amount; else adds nothing. */
  take(counters: readonly CounterRequest[]): Promise<TakeRefusal | undefined>;
  /** Adds to a counter in its current window (tokens, after the answer). */
  add(key: string, windowMs: number, amount: number): Promise<void>;
  /**
   * Adds to a counter in its current window and says its new value and the time left in
   * the window: one atomic step, so of several gateways counting at once exactly one sees
   * a given value (failed authentications: the one that reaches the limit says so once).
   */
  count(key: string, windowMs: number, amount: number): Promise<{ readonly value: number; readonly retryAfterMs: number }>;
  /**
   * Takes concurrency slot `slot` (an id unique to the exchange) unless `max` are taken.
   * Each slot expires `ttlMs` after it was taken, so a slot never given back (its
   * process died, Redis was away when it ended) is freed then, however busy the scope.
   */
  acquire(key: string, slot: string, max: number, ttlMs: number): Promise<boolean>;
  /** Gives slot `slot` back; giving back a slot not held (any more) does nothing. */
  release(key: string, slot: string): Promise<void>;
  /** Resolves when the store answers (readiness); rejects when it does not. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface MemoryLimitStoreOptions {
  /**
   * At most this many counters: a new one then drops the oldest. For counters keyed by
   * what a caller chooses (client addresses), which would otherwise grow without bound
   * within one window; policy limits are keyed by identities and leave it unset.
   */
  readonly maxCounters?: number | undefined;
}

export function createMemoryLimitStore(now: () => number = Date.now, options: MemoryLimitStoreOptions = {}): LimitStore {
  const counters = new Map<string, { value: number; expiresAt: number }>();
  const maxCounters = options.maxCounters ?? Infinity;
  const slots = new Map<string, Set<string>>();
  const sweep = setInterval(() => {
    const t = now();
    for (const [key, entry] of counters) if (entry.expiresAt <= t) counters.delete(key);
  }, 60_000);
  sweep.unref();

  const windowKey = (key: string, windowMs: number, t: number) => `${key}:${Math.floor(t / windowMs)}`;
  const current = (key: string, t: number) => {
    const entry = counters.get(key);
    return entry && entry.expiresAt > t ? entry.value : 0;
  };
  const addAt = (key: string, windowMs: number, amount: number, t: number) => {
    const wk = windowKey(key, windowMs, t);
    const value = current(wk, t) + amount;
    if (counters.size >= maxCounters && !counters.has(wk)) counters.delete(counters.keys().next().value!);
    counters.set(wk, { value, expiresAt: (Math.floor(t / windowMs) + 1) * windowMs });
    return value;
  };

  return {
    async take(requests) {
      const t = now();
      for (const [index, r] of requests.entries()) {
        if (current(windowKey(r.key, r.windowMs, t), t) + r.check > r.limit) {
          return { index, retryAfterMs: (Math.floor(t / r.windowMs) + 1) * r.windowMs - t };
        }
      }
      for (const r of requests) if (r.amount > 0) addAt(r.key, r.windowMs, r.amount, t);
      return undefined;
    },
    async add(key, windowMs, amount) {
      if (amount > 0) addAt(key, windowMs, amount, now());
    },
    async count(key, windowMs, amount) {
      const t = now();
      return { value: addAt(key, windowMs, amount, t), retryAfterMs: (Math.floor(t / windowMs) + 1) * windowMs - t };
    },
    // One process: its slots end with it, and release always reaches the map, so they need no expiry.
    async acquire(key, slot, max) {
      const taken = slots.get(key) ?? new Set<string>();
      if (taken.size >= max) return false;
      slots.set(key, taken.add(slot));
      return true;
    },
    async release(key, slot) {
      const taken = slots.get(key);
      if (taken?.delete(slot) && taken.size === 0) slots.delete(key);
    },
    async ping() {},
    async close() {
      clearInterval(sweep);
    },
  };
}
