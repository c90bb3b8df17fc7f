// Bounds what CancelRequests (PostgreSQL protocol, "Canceling Requests in Progress") can
// make the gateway do. Each forwarded cancel opens a new connection to the database, so:
// - only a key the gateway issued to a live session is forwarded (listener.ts);
// - at most one cancel per session is in flight: a repeat while one is on its way is
//   dropped (the first one cancels whatever the backend runs);
// - at most `perSecond` CancelRequests per client address in any second, valid or not
//   (a valid key repeated, or keys guessed); the rest are closed unanswered, as
//   PostgreSQL answers every CancelRequest.
// Memory is bounded: one small entry per address seen in the current second.

export interface CancelLimiter {
  /** True when a CancelRequest from `client` may be acted on now (counts it). */
  admit(client: string | undefined): boolean;
  /** Runs `cancel` for `key` unless one for that key is still in flight. */
  once(key: string, cancel: () => Promise<void>): Promise<void>;
}

/** CancelRequests acted on per client address per second. */
export const cancelsPerSecond = 10;

export function createCancelLimiter(perSecond = cancelsPerSecond, now: () => number = Date.now): CancelLimiter {
  let window = 0;
  let counts = new Map<string, number>();
  const inFlight = new Set<string>();
  return {
    admit(client) {
      const second = Math.floor(now() / 1000);
      // A new second starts every count afresh (and frees the last second's entries).
      if (second !== window) {
        window = second;
        counts = new Map();
      }
      const address = client ?? '';
      const count = counts.get(address) ?? 0;
      if (count >= perSecond) return false;
      counts.set(address, count + 1);
      return true;
    },
    async once(key, cancel) {
      if (inFlight.has(key)) return;
      inFlight.add(key);
      try {
        await cancel();
      } finally {
        inFlight.delete(key);
      }
    },
  };
}
