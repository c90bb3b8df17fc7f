// Stage: identify the caller.
// - a request with no credential is refused (401 unauthenticated);
// - a credential is verified by the authenticator that recognises it (today API keys;
//   OIDC and gateway tokens plug in here as further authenticators);
// - the caller's credential never leaves this stage: the Identity carries only ids.

import { GatehouseError } from '../errors/index.js';
import type { Identity } from '../exchange/index.js';

export interface Authenticator {
  /** True when this authenticator recognises the token's format. */
  accepts(token: string): boolean;
  verify(token: string): Promise<Identity>;
}

export function identifyCaller(authenticators: readonly Authenticator[]) {
  return async function identify(token: string | undefined): Promise<Identity> {
    if (token === undefined || token === '') throw new GatehouseError('unauthenticated');
    for (const authenticator of authenticators) {
      if (authenticator.accepts(token)) return authenticator.verify(token);
    }
    throw new GatehouseError('invalid_credential', { detail: 'no authenticator recognises this credential format' });
  };
}
