// An issuer's JWKS with the last keys fetched kept for an IdP outage. jose refetches
// the JWKS once it is older than cacheMaxAge, and a refetch that fails would refuse
// every token not yet in the verified-token cache, though the keys already fetched
// (over the same checked transport) still verify them: a short IdP outage would stop
// the gateway. Instead, while refetches fail:
// - a token whose kid is among the last keys fetched verifies with them, for at most
//   `maxStale` after the first failed refetch (a key the IdP withdrew is trusted no
//   longer than that; 0 turns this off);
// - a token whose kid is unknown is still identity_provider_unavailable (503): whether
//   the IdP published it cannot be known;
// - the IdP is asked again at most once per `cooldown`, so a blackholed IdP does not
//   hold every request for the fetch timeout.
// Any verdict on the token (no key matches, several match) is passed on unchanged.

import { createLocalJWKSet, errors, type createRemoteJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';

type RemoteJwks = ReturnType<typeof createRemoteJWKSet>;

/** The JWKS could not be fetched (network, timeout, a non-200 answer, not a JWKS): no verdict on the token. */
export function isJwksFetchFailure(error: unknown): boolean {
  if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) return false;
  if (error instanceof errors.JWKSTimeout || error instanceof errors.JWKSInvalid || error instanceof TypeError) return true;
  return error instanceof errors.JOSEError && error.code === 'ERR_JOSE_GENERIC';
}

export function withLastGoodKeys(remote: RemoteJwks, options: { maxStaleMs: number; cooldownMs: number; now: () => number }): JWTVerifyGetKey {
  let failingSince: number | undefined;
  let lastTriedAt = 0;
  let lastJwks: JSONWebKeySet | undefined;
  let lastLocal: JWTVerifyGetKey | undefined;

  const fromLastKeys: JWTVerifyGetKey = async (header, token) => {
    const jwks = remote.jwks();
    if (!jwks) throw new errors.JOSEError('no JWKS was ever fetched');
    if (jwks !== lastJwks) {
      lastJwks = jwks;
      lastLocal = createLocalJWKSet(jwks);
    }
    return lastLocal!(header, token);
  };

  return async (header, token) => {
    const now = options.now();
    const staleAllowed = () => failingSince !== undefined && options.maxStaleMs > 0 && now - failingSince < options.maxStaleMs && remote.jwks() !== undefined;
    // During an outage, between two tries: the last keys, without waiting on the IdP.
    if (staleAllowed() && now - lastTriedAt < options.cooldownMs) {
      try {
        return await fromLastKeys(header, token);
      } catch (error) {
        throw new errors.JWKSTimeout(`the IdP has been unreachable since ${new Date(failingSince!).toISOString()} and no key fetched before matches (${(error as Error).message})`);
      }
    }
    lastTriedAt = now;
    try {
      const key = await remote(header, token);
      failingSince = undefined;
      return key;
    } catch (error) {
      if (!isJwksFetchFailure(error)) throw error;
      failingSince ??= now;
      if (!staleAllowed()) throw error;
      try {
        return await fromLastKeys(header, token);
      } catch {
        throw error;
      }
    }
  };
}
