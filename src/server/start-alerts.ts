// Alerts as the gateway raises them (src/audit/alerts/): each one is logged (warn,
// `alert`) and chained as an `alert.raised` event, so it reaches every audit sink (the
// SIEM), evidence exports and `gatehouse audit alerts`. Two signals:
// - failed-auth-then-success: identify on every listener, watched around the throttle
//   (a throttled attempt, 429, was never checked: neither a failure nor a success);
// - bulk-requests: every exchange observed, per subject.

import type { EventInput } from '../audit/index.js';
import { bulkRequests } from '../audit/alerts/bulk-requests.js';
import { failedAuthThenSuccess } from '../audit/alerts/failed-auth-then-success.js';
import type { AuditConfig } from '../config/audit-schema.js';
import { isGatehouseError } from '../errors/index.js';
import type { Exchange } from '../exchange/index.js';
import { addressKey } from '../identity/index.js';
import type { Identity } from '../exchange/index.js';
import type { Logger } from '../observability/index.js';

type Identify = (credential: string | undefined, client?: string) => Promise<Identity>;

export interface GatewayAlerts {
  /** identify (behind the throttle), watched for failures followed by a success from the same address. */
  watch(identify: Identify, listener: string): Identify;
  /** Every exchange, once observed. */
  observe(exchange: Exchange): void;
}

export function startAlerts(config: AuditConfig['alerts'], logger: Logger, chainEvent: (event: EventInput) => void, now: () => number = Date.now): GatewayAlerts {
  const auth = config.failedAuthThenSuccess === false ? undefined : failedAuthThenSuccess(config.failedAuthThenSuccess);
  const bulk = config.bulkRequests === false ? undefined : bulkRequests(config.bulkRequests);
  const raise = (target: string, actor: string | null, details: { readonly alert: string } & Record<string, unknown>) => {
    logger.warn({ ...details }, 'alert');
    chainEvent({ kind: 'alert.raised', actor, target, details });
  };
  return {
    watch(identify, listener) {
      if (!auth) return identify;
      return (credential, client) => {
        if (client === undefined) return identify(credential);
        return identify(credential, client).then(
          (identity) => {
            // The common case, no failure on record anywhere: nothing to look up.
            if (!auth.tracking) return identity;
            const address = addressKey(client);
            const alert = auth.succeeded(address, client, listener, identity, now());
            if (alert) raise(`address:${address.slice(2)}`, identity.subject, alert);
            return identity;
          },
          (error: unknown) => {
            if (isGatehouseError(error) && error.status === 401 && error.code !== 'unauthenticated') auth.failed(addressKey(client), now());
            throw error;
          },
        );
      };
    },
    observe(exchange) {
      const subject = exchange.identity?.subject;
      if (!bulk || subject === undefined) return;
      const alert = bulk.counted(subject, exchange.connection, now());
      if (alert) raise(subject, subject, alert);
    },
  };
}
