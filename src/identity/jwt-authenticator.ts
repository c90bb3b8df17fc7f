// One authenticator for every JWT the gateway accepts: IdP tokens (OIDC issuers) and
// Gatehouse's own tokens. The unverified `iss` only chooses the verifier; the verifier
// then checks everything. A verified token is cached by its hash until min(exp, ttl),
// so a repeat costs a hash and a map lookup; revocation is still checked on every
// request by identifyCaller.

import { GatehouseError } from '../errors/index.js';
import type { Identity } from '../exchange/index.js';
import type { Authenticator } from './identify-caller.js';
import { looksLikeJwt, peekJwt } from './jwt-peek.js';
import type { TokenVerifier } from './oidc/oidc-issuer.js';
import { VerifiedTokenCache } from './verified-token-cache.js';

export function jwtAuthenticator(verifiers: readonly TokenVerifier[], cache: VerifiedTokenCache): Authenticator {
  const byIssuer = new Map(verifiers.map((v) => [v.issuer, v]));
  return {
    accepts: looksLikeJwt,
    async verify(token: string): Promise<Identity> {
      const key = VerifiedTokenCache.keyOf(token);
      const hit = cache.get(key);
      if (hit) return hit;
      const peeked = peekJwt(token);
      if (!peeked) throw new GatehouseError('invalid_credential', { detail: 'malformed JWT' });
      const iss = peeked.payload.iss;
      const verifier = typeof iss === 'string' ? byIssuer.get(iss) : undefined;
      if (!verifier) throw new GatehouseError('token_issuer_unknown', { detail: `untrusted iss ${JSON.stringify(String(iss)).slice(0, 200)}` });
      const identity = await verifier.verify(token, peeked, key);
      cache.set(key, identity);
      return identity;
    },
  };
}
