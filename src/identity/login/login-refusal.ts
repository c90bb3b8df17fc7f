// A refused browser login (OIDC callback, SAML response) is a failed authentication on
// record, as a refused data-plane credential is: the caller of a login route passes
// where to record it.

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

/** Runs one login step; an `invalid_credential` it throws is recorded before it is answered. */
export async function recordingRefusal(record: RecordLoginRefusal | undefined, provider: string, req: IncomingMessage, attempt: () => Promise<void>): Promise<void> {
  try {
    await attempt();
  } catch (error) {
    if (record && error instanceof GatehouseError && error.code === 'invalid_credential') {
      await record({ provider, reason: error.detail ?? error.message, client: req.socket.remoteAddress });
    }
    throw error;
  }
}
