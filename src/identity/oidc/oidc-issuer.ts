// Verifies access / ID tokens of one configured OIDC issuer (RFC 9068 / RFC 7519).
// Enforces, in this order:
// - the header `alg` is in the issuer's allow-list (asymmetric only: never `none`,
//   never HMAC, so the issuer's public key cannot be used as an HMAC secret);
// - the signature verifies with a key from the issuer's JWKS, found by discovery or
//   configured; an unknown `kid` triggers at most one refetch per cooldown (jose's
//   createRemoteJWKSet), which is how key rotation at the IdP is followed;
// - `iss` equals the configured issuer, `aud` contains the configured audience,
//   `exp` is present and not past, `nbf` / `iat` not in the future, each with the
//   bounded clock skew;
// - the subject claim is a non-empty string.

import { createRemoteJWKSet, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { GatehouseError } from '../../errors/index.js';
import type { Identity } from '../../exchange/index.js';
import type { OidcIssuerConfig } from '../../config/identity-schema.js';
import type { PeekedJwt } from '../jwt-peek.js';
import { discover } from './discovery.js';
import { groupsFromClaims, readClaimPath } from './groups-from-claims.js';
import { withLastGoodKeys } from './last-good-keys.js';
import { mapJoseError } from './map-jose-error.js';

export interface TokenVerifier {
  readonly issuer: string;
  verify(token: string, peeked: PeekedJwt, tokenHash: string): Promise<Identity>;
}


export class OidcIssuer implements TokenVerifier {
  readonly issuer: string;
  readonly #config: OidcIssuerConfig;
  readonly #clockSkewSec: number;
  readonly #now: () => number;
  #jwks: Promise<JWTVerifyGetKey> | undefined;
  #jwksFailedAt = 0;

  constructor(config: OidcIssuerConfig, options: { clockSkewMs: number; now?: () => number }) {
    this.issuer = config.issuer;
    this.#config = config;
    this.#clockSkewSec = Math.floor(options.clockSkewMs / 1000);
    this.#now = options.now ?? Date.now;
  }

  /** Discovery (once, retried no more than once per cooldown after a failure). */
  #keySet(): Promise<JWTVerifyGetKey> {
    const { jwks } = this.#config;
    if (this.#jwks && this.#jwksFailedAt !== 0 && this.#now() - this.#jwksFailedAt >= jwks.cooldown) this.#jwks = undefined;
    if (this.#jwks) return this.#jwks;
    this.#jwksFailedAt = 0;
    const attempt = (async () => {
      const uri = this.#config.jwksUri ?? (await discover(this.issuer, jwks.timeout)).jwks_uri;
      const remote = createRemoteJWKSet(new URL(uri), { cooldownDuration: jwks.cooldown, cacheMaxAge: jwks.cacheMaxAge, timeoutDuration: jwks.timeout });
      return withLastGoodKeys(remote, { maxStaleMs: jwks.maxStale, cooldownMs: jwks.cooldown, now: this.#now });
    })();
    // The failure time is set once, by the attempt that failed: requests that find it
    // failed must not push it forward, or steady traffic would keep it failed forever.
    attempt.catch(() => {
      if (this.#jwks === attempt) this.#jwksFailedAt = this.#now();
    });
    this.#jwks = attempt;
    return attempt;
  }

  /**
   * The operator detail of a refusal an operator must act on (a clock, the audience
   * configured): what the token said against what was expected. Read only after the
   * signature verified (jose checks claims after it), so these are the IdP's values.
   * No quotes: log lines cut a detail at its first quote.
   */
  #explained(error: GatehouseError, peeked: PeekedJwt): GatehouseError {
    const config = this.#config;
    const claims = peeked.payload;
    const nowMs = this.#now();
    const skew = `clockSkew ${this.#clockSkewSec} s`;
    const at = (sec: number) => `${new Date(sec * 1000).toISOString()}, ${Math.round(Math.abs(nowMs / 1000 - sec))} s ${sec * 1000 < nowMs ? 'before' : 'after'} this gateway's clock`;
    let detail: string | undefined;
    if (error.code === 'credential_expired' && typeof claims.exp === 'number') detail = `token expired: exp ${at(claims.exp)}; ${skew}`;
    if (error.code === 'token_not_yet_valid') {
      const claim = typeof claims.nbf === 'number' && claims.nbf * 1000 > nowMs ? 'nbf' : 'iat';
      const value = claims[claim];
      if (typeof value === 'number') detail = `${claim} ${at(value)}; ${skew}: check the clocks of the IdP and the gateway`;
    }
    if (error.code === 'token_audience_invalid') {
      const aud = (Array.isArray(claims.aud) ? claims.aud : [claims.aud]).map((a) => String(a).slice(0, 100)).slice(0, 10).join(', ');
      detail = `token aud [${aud}] does not contain the configured audience [${([] as string[]).concat(config.audience).join(', ')}]`;
    }
    if (detail === undefined) return error;
    return new GatehouseError(error.code, { detail: `${detail} (issuer ${config.name})`, cause: error.cause });
  }

  async verify(token: string, peeked: PeekedJwt, tokenHash: string): Promise<Identity> {
    const config = this.#config;
    const alg = peeked.header.alg;
    if (typeof alg !== 'string' || !(config.allowedAlgorithms as readonly string[]).includes(alg)) {
      throw new GatehouseError('token_algorithm_not_allowed', { detail: `alg ${JSON.stringify(String(alg)).slice(0, 40)} is not in allowedAlgorithms of issuer ${config.name}` });
    }
    const jwks = await this.#keySet();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, jwks, {
        issuer: config.issuer,
        audience: config.audience,
        algorithms: config.allowedAlgorithms,
        clockTolerance: this.#clockSkewSec,
        requiredClaims: ['exp'],
        currentDate: new Date(this.#now()),
      }));
    } catch (error) {
      throw this.#explained(mapJoseError(error, config.name), peeked);
    }
    const nowSec = this.#now() / 1000;
    if (typeof payload.iat === 'number' && payload.iat > nowSec + this.#clockSkewSec) {
      throw this.#explained(new GatehouseError('token_not_yet_valid', { detail: `iat in the future (issuer ${config.name})` }), peeked);
    }
    const sub = readClaimPath(payload, config.subjectClaim);
    if (typeof sub !== 'string' || sub === '') throw new GatehouseError('invalid_credential', { detail: `claim ${config.subjectClaim} missing (issuer ${config.name})` });
    return {
      subject: `oidc:${config.name}:${sub}`,
      kind: config.kind,
      groups: groupsFromClaims(payload, config.groupsClaims, config.groupMap),
      method: 'oidc',
      credentialId: typeof payload.jti === 'string' ? `jti:${payload.jti}` : `sha256:${tokenHash.slice(0, 22)}`,
      issuer: config.issuer,
      issuedAt: typeof payload.iat === 'number' ? payload.iat * 1000 : undefined,
      expiresAt: payload.exp! * 1000,
    };
  }
}
