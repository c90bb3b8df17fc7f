// Stage: identify the caller.
// - a request with no credential is refused (401 unauthenticated);
// - a credential is verified by the authenticator that recognises it (API keys, JWTs
//   from OIDC issuers and Gatehouse's own tokens);
// - a verified identity that has been revoked (token, subject, user or key) is refused
//   on this very request: checkRevoked reads in-memory state kept fresh by the store;
// - a refusal's detail says who was claimed (key id, unverified iss/sub), never the
//   token: it goes to the recording as the failed-authentication event; a credential
//   that proved whose it is (revoked, expired) carries that identity for the record;
// - the caller's credential never leaves this stage: the Identity carries only ids.

import { GatehouseError, isGatehouseError } from '../errors/index.js';
import type { Identity } from '../exchange/index.js';
import { claimedIdentity } from './claimed-identity.js';
import { ProvenCredentialRefused, provenIdentity } from './proven-identity.js';

export interface Authenticator {
  /** True when this authenticator recognises the token's format. */
  accepts(token: string): boolean;
  verify(token: string): Promise<Identity>;
}

export interface IdentifyOptions {
  /** Throws credential_revoked when the identity has been revoked. */
  readonly checkRevoked?: ((identity: Identity) => void) | undefined;
}

export function identifyCaller(authenticators: readonly Authenticator[], options: IdentifyOptions = {}) {
  return async function identify(token: string | undefined): Promise<Identity> {
    if (token === undefined || token === '') throw new GatehouseError('unauthenticated');
    try {
      let authenticator: Authenticator | undefined;
      for (const candidate of authenticators) {
        if (candidate.accepts(token)) {
          authenticator = candidate;
          break;
        }
      }
      if (!authenticator) throw new GatehouseError('invalid_credential', { detail: 'no authenticator recognises this credential format' });
      const identity = await authenticator.verify(token);
      try {
        options.checkRevoked?.(identity);
      } catch (error) {
        // Verified, then found revoked: the refusal names whose credential it was.
        if (isGatehouseError(error)) throw new ProvenCredentialRefused(error.code, identity, { message: error.message, detail: error.detail, cause: error.cause });
        throw error;
      }
      return identity;
    } catch (error) {
      if (!isGatehouseError(error) || error.status >= 500) throw error;
      const refused = { message: error.message, detail: `${error.detail ?? error.code}; ${claimedIdentity(token)}`, cause: error.cause };
      const proven = provenIdentity(error);
      throw proven ? new ProvenCredentialRefused(error.code, proven, refused) : new GatehouseError(error.code, refused);
    }
  };
}
