// The failed-authentication throttle as the gateway wires it (identity/auth-throttle.ts):
// counters where policy limits keep theirs, in Redis and shared by every gateway when
// limits use it, else in a bounded store of this process's own; each throttle logged
// and chained once; refused attempts counted in the metrics; every attempt checked is
// watched for the failed-auth-then-success alert.

import type { EventInput } from '../audit/index.js';
import type { GatehouseConfig } from '../config/index.js';
import { authThrottledEvent, createAuthThrottle, type AuthThrottle } from '../identity/index.js';
import type { GatewayMetrics, Logger } from '../observability/index.js';
import { createMemoryLimitStore, type LimitStore } from '../policy/index.js';
import type { GatewayAlerts } from './start-alerts.js';

export interface GatewayAuthThrottle {
  readonly guard: AuthThrottle['guard'];
  readonly guardAttempt: AuthThrottle['guardAttempt'];
  /** Stops the throttle and closes its own store (not the shared limit store). */
  close(): Promise<void>;
}

export function startAuthThrottle(config: GatehouseConfig, limitStore: LimitStore, logger: Logger, metrics: GatewayMetrics, chainEvent: (event: EventInput) => void, alerts: GatewayAlerts): GatewayAuthThrottle {
  const throttleConfig = config.identity.authThrottle;
  const shared = config.policy.limits.store === 'redis' && config.policy.limits.redis !== undefined;
  // Up to three counters per failure: its address, the key id it claimed, and that address's failures against that key id.
  const store = shared ? limitStore : createMemoryLimitStore(Date.now, { maxCounters: throttleConfig.maxTracked * 3 });
  let lastStoreErrorLog = 0;
  const throttle = createAuthThrottle({
    config: throttleConfig,
    store,
    shared,
    onThrottled: (event) => {
      logger.warn({ scope: event.scope, key: event.key, listener: event.listener, client: event.client, failures: event.failures, retryAfterMs: event.retryAfterMs }, 'failed authentications throttled');
      chainEvent(authThrottledEvent(event));
    },
    onRefused: (listener) => metrics.observeThrottledAttempt(listener),
    // At most one line per 10 s: every attempt of a counted address asks Redis.
    onStoreError: (error) => {
      if (Date.now() - lastStoreErrorLog < 10_000) return;
      lastStoreErrorLog = Date.now();
      logger.warn({ err: String(error) }, 'failed-authentication counters: Redis did not answer; counting on this gateway meanwhile');
    },
  });
  return {
    // Around the throttle: the alert sees the attempts that were checked (start-alerts.ts).
    guard: (identify, listener) => alerts.watch(throttle.guard(identify, listener), listener),
    guardAttempt: (attempt, listener, client) => throttle.guardAttempt(attempt, listener, client),
    async close() {
      throttle.close();
      if (!shared) await store.close();
    },
  };
}
