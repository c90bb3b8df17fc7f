// A refused browser login (OIDC callback, SAML response) is a failed authentication on
// record, as a refused data-plane credential is, and counts against the client address
// in failed-authentication throttling (identity/auth-throttle.ts): a throttled address's
// login step is refused (429 auth_throttled) before it is checked, and not recorded. The
// caller of a login route passes where to record it and the throttle.

import type { IncomingMessage } from 'node:http';
import { GatehouseError } from '../../errors/index.js';

export interface LoginRefusal {
  /** The configured provider: `oidc:<issuer>` or `saml:<name>`. */
  readonly provider: string;
  /** The operator detail (never a credential: ids, issuer, the validator's message). */
  readonly reason: string;
  readonly client: string | undefined;
}

/** Records a refused login; awaited before the answer, so no refusal goes unrecorded. */
export type RecordLoginRefusal = (refusal: LoginRefusal) => Promise<void>;

/** Runs a login step behind the failed-authentication throttle of the client's address. */
export type LoginThrottle = (attempt: () => Promise<void>, client: string | undefined) => Promise<void>;

/** Where a login route's refusals go: their record, and the throttle that counts them. */
export interface LoginRefusals {
  readonly record?: RecordLoginRefusal | undefined;
  readonly throttle?: LoginThrottle | undefined;
}

/**
 * Runs one login step behind the throttle; an `invalid_credential` it throws is recorded
 * before it is answered (then counted).
 */
export function recordingRefusal(refusals: LoginRefusals | undefined, provider: string, req: IncomingMessage, attempt: () => Promise<void>): Promise<void> {
  const client = req.socket.remoteAddress;
  const recorded = async () => {
    try {
      await attempt();
    } catch (error) {
      if (refusals?.record && error instanceof GatehouseError && error.code === 'invalid_credential') {
        await refusals.record({ provider, reason: error.detail ?? error.message, client });
      }
      throw error;
    }
  };
  return refusals?.throttle ? refusals.throttle(recorded, client) : recorded();
}
