// Alert: a client address that failed to authenticate several times, then got in. A
// guessed or stolen credential shows this way: wrong keys tried, then one that works
// (the leaked key of a service, a password sprayed until one matched). The throttle
// (identity/auth-throttle.ts) bounds the guessing; this says when guessing succeeded.
// - a failure is a refused credential (401), not a missing one (`unauthenticated`:
//   a browser or a probe without a key says nothing about guessing);
// - failures count per address (an IPv6 address by its /64) since its last success, in
//   a fixed window that starts at the first of them; a success within it, after
//   `failures` or more, raises one alert; any success starts the count over;
// - memory is bounded: at most `maxTracked` addresses, the oldest forgotten first.
// Counted per gateway: several gateways behind a balancer each see their own share.

import type { Identity } from '../../exchange/index.js';

export interface FailedAuthThenSuccessConfig {
  readonly failures: number;
  readonly window: number;
}

export type FailedAuthThenSuccessAlert = {
  readonly alert: 'failed-auth-then-success';
  /** The address as the listener saw it. */
  readonly client: string;
  readonly listener: string;
  /** Who got in. */
  readonly subject: string;
  readonly failures: number;
  readonly firstFailureAt: number;
  readonly windowMs: number;
};

export interface FailedAuthThenSuccess {
  /** False while no address has failures on record: a success needs no lookup. */
  readonly tracking: boolean;
  failed(address: string, now: number): void;
  succeeded(address: string, client: string, listener: string, identity: Identity, now: number): FailedAuthThenSuccessAlert | undefined;
}

export function failedAuthThenSuccess(config: FailedAuthThenSuccessConfig, maxTracked = 100_000): FailedAuthThenSuccess {
  const runs = new Map<string, { failures: number; since: number }>();
  const current = (address: string, now: number) => {
    const run = runs.get(address);
    if (run && now - run.since < config.window) return run;
    if (run) runs.delete(address);
    return undefined;
  };
  return {
    get tracking() {
      return runs.size > 0;
    },
    failed(address, now) {
      const run = current(address, now);
      if (run) {
        run.failures++;
        return;
      }
      runs.set(address, { failures: 1, since: now });
      if (runs.size > maxTracked) runs.delete(runs.keys().next().value!);
    },
    succeeded(address, client, listener, identity, now) {
      // Any success ends the run: the failures before it are counted since the last one.
      const run = current(address, now);
      if (run) runs.delete(address);
      if (!run || run.failures < config.failures) return undefined;
      return { alert: 'failed-auth-then-success', client, listener, subject: identity.subject, failures: run.failures, firstFailureAt: run.since, windowMs: config.window };
    },
  };
}
