// Gatehouse tokens (just-in-time access): short-lived EdDSA JWTs that carry the
// identity proven by an IdP token or an API key, narrowed to named connections and
// operations. Issue and verify both live here so the claim layout is in one place.
// Verification enforces: alg EdDSA only; a kid published in the store (an unknown kid
// re-reads the store at most once a second); iss and aud of this gateway; exp and jti
// present; the embedded scope well-formed. The identity names the kid, so revoking a
// signing key (revocations.ts) refuses every token it signed.

import { randomBytes } from 'node:crypto';
import { decodeProtectedHeader, importJWK, jwtVerify, SignJWT, type JWK, type JWTPayload, type KeyObject } from 'jose';
import type { Kysely } from 'kysely';
import { GatehouseError } from '../../errors/index.js';
import type { Identity, IdentityKind, IdentityScope } from '../../exchange/index.js';
import type { Database } from '../../store/index.js';
import type { PeekedJwt } from '../jwt-peek.js';
import { mapJoseError } from '../oidc/map-jose-error.js';
import type { TokenVerifier } from '../oidc/oidc-issuer.js';
import type { SigningKey } from './signing-key.js';

interface GatehouseClaims {
  readonly kind: IdentityKind;
  readonly groups: readonly string[];
  readonly via: string;
  readonly scope: IdentityScope;
}

export interface IssuedToken {
  readonly token: string;
  readonly jti: string;
  readonly expiresAt: number;
  /** Whole seconds from issue to expiry (OAuth `expires_in`): the TTL asked for, unless the exchanged credential expires sooner. */
  readonly expiresIn: number;
}

/** Records an issued token before it is handed out (the audit log: token.issued). */
export type TokenIssueRecorder = (identity: Identity, scope: IdentityScope, issued: Omit<IssuedToken, 'token'>) => Promise<void>;

export class GatewayTokens implements TokenVerifier {
  readonly issuer: string;
  readonly #audience: string;
  readonly #db: Kysely<Database>;
  readonly #key: SigningKey;
  readonly #now: () => number;
  #publicKeys = new Map<string, KeyObject | Uint8Array>();
  #lastReload = 0;
  #recordIssue: TokenIssueRecorder | undefined;

  readonly #keyRevoked: (kid: string) => boolean;

  constructor(db: Kysely<Database>, key: SigningKey, options: { issuer: string; audience: string; now?: () => number; keyRevoked?: (kid: string) => boolean }) {
    this.#db = db;
    this.#key = key;
    this.#keyRevoked = options.keyRevoked ?? (() => false);
    this.issuer = options.issuer;
    this.#audience = options.audience;
    this.#now = options.now ?? Date.now;
  }

  /** Publishes this gateway's public key in the store (idempotent). */
  async publish(): Promise<void> {
    const existing = await this.#db.selectFrom('identity_signing_keys').select('kid').where('kid', '=', this.#key.kid).executeTakeFirst();
    if (!existing) {
      await this.#db
        .insertInto('identity_signing_keys')
        .values({ kid: this.#key.kid, public_jwk: JSON.stringify(this.#key.publicJwk), created_at: this.#now() })
        .onConflict((oc) => oc.column('kid').doNothing())
        .execute();
    }
    await this.#reload();
  }

  /** Every published public key not revoked, for `/.well-known/jwks.json`. */
  async jwks(): Promise<{ keys: JWK[] }> {
    const rows = await this.#db.selectFrom('identity_signing_keys').select(['kid', 'public_jwk']).orderBy('created_at', 'desc').execute();
    return { keys: rows.filter((r) => !this.#keyRevoked(r.kid)).map((r) => JSON.parse(r.public_jwk) as JWK) };
  }

  /** Every token issued from now on (POST /auth/token, a login's session) is recorded first. */
  recordIssuesWith(record: TokenIssueRecorder): void {
    this.#recordIssue = record;
  }

  async issue(identity: Identity, scope: IdentityScope, ttlMs: number): Promise<IssuedToken> {
    // Every token this key signs would be refused: say so rather than hand out dead tokens.
    if (this.#keyRevoked(this.#key.kid)) throw new GatehouseError('signing_key_revoked', { detail: `the signing key ${this.#key.kid} was revoked while this gateway runs` });
    // Hex, not base64url: a jti is typed on the command line (`revoke token JTI`), and one
    // starting with '-' would be read as an option.
    const jti = randomBytes(16).toString('hex');
    const now = this.#now();
    const iat = Math.floor(now / 1000);
    // Rounded up: the token lives at least the TTL asked for, so a client that trusts
    // `expires_in` never holds an expired token before its own clock says so. But never
    // past the credential it was exchanged for (rounded down): an API key about to
    // expire, or an IdP token, would otherwise be stretched to maxTtl.
    let exp = Math.ceil((now + Math.max(1000, ttlMs)) / 1000);
    if (identity.expiresAt !== undefined) exp = Math.min(exp, Math.floor(identity.expiresAt / 1000));
    if (exp * 1000 <= now) throw new GatehouseError('credential_expired', { detail: `the credential expires at ${new Date(identity.expiresAt!).toISOString()}, too soon to issue a token` });
    const claims: GatehouseClaims = { kind: identity.kind, groups: identity.groups, via: identity.credentialId, scope };
    const token = await new SignJWT({ gh: claims })
      .setProtectedHeader({ alg: 'EdDSA', kid: this.#key.kid, typ: 'gatehouse+jwt' })
      .setIssuer(this.issuer)
      .setAudience(this.#audience)
      .setSubject(identity.subject)
      .setJti(jti)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .sign(this.#key.privateKey);
    const issued = { jti, expiresAt: exp * 1000, expiresIn: Math.floor((exp * 1000 - now) / 1000) };
    // Fail closed: a token whose issue is not on record is not handed out.
    if (this.#recordIssue) {
      try {
        await this.#recordIssue(identity, scope, issued);
      } catch (error) {
        throw new GatehouseError('recording_failed', { detail: `token.issued: ${String(error)}` });
      }
    }
    return { token, ...issued };
  }

  /**
   * The identity assertion an upstream receives (connection `identityAssertion`): who
   * called, for this connection (`aud`) and this exchange (`jti`), valid for `ttlMs`.
   * It carries no part of the caller's credential; verify it with /.well-known/jwks.json.
   */
  async assertIdentity(identity: Identity, connection: string, ttlMs: number, exchangeId: string): Promise<string> {
    const iat = Math.floor(this.#now() / 1000);
    return new SignJWT({ kind: identity.kind, groups: identity.groups, method: identity.method })
      .setProtectedHeader({ alg: 'EdDSA', kid: this.#key.kid, typ: 'gatehouse-identity+jwt' })
      .setIssuer(this.issuer)
      .setAudience(connection)
      .setSubject(identity.subject)
      .setJti(exchangeId)
      .setIssuedAt(iat)
      .setExpirationTime(iat + Math.ceil(ttlMs / 1000))
      .sign(this.#key.privateKey);
  }

  /** Signs short-lived internal state (e.g. the login cookie) for another audience. */
  async signState(claims: Record<string, string>, audience: string, ttlMs: number): Promise<string> {
    const iat = Math.floor(this.#now() / 1000);
    return new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', kid: this.#key.kid }).setIssuer(this.issuer).setAudience(audience).setIssuedAt(iat).setExpirationTime(iat + Math.ceil(ttlMs / 1000)).sign(this.#key.privateKey);
  }

  /** Verifies what signState signed; undefined when it does not verify or has expired. */
  async verifyState(token: string, audience: string): Promise<JWTPayload | undefined> {
    try {
      const kid = decodeProtectedHeader(token).kid;
      const key = typeof kid === 'string' && !this.#keyRevoked(kid) ? await this.#keyFor(kid) : undefined;
      if (!key) return undefined;
      const { payload } = await jwtVerify(token, key, { issuer: this.issuer, audience, algorithms: ['EdDSA'], currentDate: new Date(this.#now()) });
      return payload;
    } catch {
      return undefined;
    }
  }

  async verify(token: string, peeked: PeekedJwt): Promise<Identity> {
    if (peeked.header.alg !== 'EdDSA') throw new GatehouseError('token_algorithm_not_allowed', { detail: `Gatehouse tokens are EdDSA, not ${String(peeked.header.alg).slice(0, 20)}` });
    // Identity assertions and login state are signed with the same key: only a token
    // typed as an access token is one.
    if (peeked.header.typ !== 'gatehouse+jwt') throw new GatehouseError('invalid_credential', { detail: `a Gatehouse JWT of type ${JSON.stringify(String(peeked.header.typ).slice(0, 40))} is not an access token` });
    const kid = typeof peeked.header.kid === 'string' ? peeked.header.kid : '';
    const key = await this.#keyFor(kid);
    if (!key) throw new GatehouseError('token_signature_invalid', { detail: `no published gateway key has kid ${JSON.stringify(kid.slice(0, 60))}` });
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key, {
        issuer: this.issuer,
        audience: this.#audience,
        algorithms: ['EdDSA'],
        requiredClaims: ['exp', 'jti', 'sub', 'iat'],
        currentDate: new Date(this.#now()),
      }));
    } catch (error) {
      throw mapJoseError(error, 'gatehouse');
    }
    const gh = payload['gh'] as Partial<GatehouseClaims> | undefined;
    const scope = gh?.scope;
    if (!gh || !Array.isArray(gh.groups) || !scope || !Array.isArray(scope.connections)) throw new GatehouseError('invalid_credential', { detail: 'Gatehouse token without a valid gh claim' });
    return {
      subject: payload.sub!,
      kind: gh.kind ?? 'human',
      groups: gh.groups,
      method: 'gateway_token',
      credentialId: `jti:${payload.jti}`,
      ...(typeof gh.via === 'string' ? { exchangedFrom: gh.via } : {}),
      signingKeyId: kid,
      issuer: this.issuer,
      issuedAt: payload.iat! * 1000,
      expiresAt: payload.exp! * 1000,
      scope: { connections: scope.connections, operations: scope.operations },
    };
  }

  /** A published key by kid; an unknown kid re-reads the store at most once a second. */
  async #keyFor(kid: string): Promise<KeyObject | Uint8Array | undefined> {
    if (!this.#publicKeys.has(kid) && this.#now() - this.#lastReload >= 1000) await this.#reload();
    return this.#publicKeys.get(kid);
  }

  async #reload(): Promise<void> {
    this.#lastReload = this.#now();
    const rows = await this.#db.selectFrom('identity_signing_keys').select(['kid', 'public_jwk']).execute();
    const keys = new Map<string, KeyObject | Uint8Array>();
    for (const row of rows) keys.set(row.kid, await importJWK(JSON.parse(row.public_jwk) as JWK, 'EdDSA'));
    this.#publicKeys = keys;
  }
}
