// Wiring for everything identity: API keys, OIDC issuers, Gatehouse tokens, the
// verified-token cache, revocations (polled from the store) and the in-flight registry
// they cut, and the identify stage built from them. The gateway calls this once at start.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { createOidcLogin } from './login/oidc-login.js';
import type { LoginRefusals } from './login/login-refusal.js';
import { createSamlLogin } from './login/saml-login.js';
import type { Kysely } from 'kysely';
import type { IdentityConfig } from '../config/identity-schema.js';
import type { Identity } from '../exchange/index.js';
import type { Database } from '../store/index.js';
import { apiKeyAuthenticator } from './api-key-authenticator.js';
import { ApiKeyService } from './api-keys.js';
import { GatewayTokens } from './gateway-tokens/gateway-tokens.js';
import { refuseConnectionScoped } from './gateway-tokens/check-token-scope.js';
import { loadSigningKey, SigningKeyError } from './gateway-tokens/signing-key.js';
import { identifyCaller } from './identify-caller.js';
import { jwtAuthenticator } from './jwt-authenticator.js';
import { OidcIssuer, type TokenVerifier } from './oidc/oidc-issuer.js';
import { InFlightRegistry } from './revocation/in-flight.js';
import { RevocationService, revocationChannel } from './revocation/revocations.js';
import { listenPostgres } from '../store/pg-listen.js';
import { VerifiedTokenCache } from './verified-token-cache.js';

export interface IdentityServices {
  readonly apiKeys: ApiKeyService;
  readonly revocations: RevocationService;
  readonly inFlight: InFlightRegistry;
  /** Undefined when `identity.gatewayTokens.enabled` is false. */
  readonly gatewayTokens: GatewayTokens | undefined;
  readonly identify: (credential: string | undefined) => Promise<Identity>;
  /** identify, for the admin API: a Gatehouse token scoped to connections is refused there. */
  readonly identifyAdmin: (credential: string | undefined) => Promise<Identity>;
  /** /auth/login, /auth/callback (identity.login) and /auth/saml/* (identity.saml) for the admin listener. */
  loginRoutes(secureCookies: boolean, refusals?: LoginRefusals): ((req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean>) | undefined;
  close(): Promise<void>;
}

export interface BuildIdentityOptions {
  readonly publicUrl?: string | undefined;
  readonly dataDir: string;
  /** A PostgreSQL store's URL: revocations written by other processes are heard at once (LISTEN). */
  readonly postgresUrl?: string | undefined;
  /** The LISTEN connection failed (it is made again; polling covers the gap). */
  readonly onListenError?: ((error: Error) => void) | undefined;
}

export async function buildIdentity(config: IdentityConfig, db: Kysely<Database>, options: BuildIdentityOptions): Promise<IdentityServices> {
  const apiKeys = new ApiKeyService(db);
  const revocations = new RevocationService(db, { pollIntervalMs: config.revocation.pollInterval });
  const inFlight = new InFlightRegistry((identity) => revocations.reason(identity));
  revocations.onChange(() => inFlight.cutRevoked());
  await revocations.start();
  const reread = () => void revocations.refresh().catch(() => undefined);
  const onError = options.onListenError ?? (() => undefined);
  // Not heard (the first connection failed): the poll still finds every revocation.
  const listener = options.postgresUrl === undefined ? undefined : await listenPostgres(options.postgresUrl, revocationChannel, { onNotification: reread, onReconnect: reread, onError }).catch((error: unknown) => void onError(error as Error));

  const verifiers: TokenVerifier[] = config.oidc.issuers.map((i) => new OidcIssuer(i, { clockSkewMs: config.oidc.clockSkew }));
  let gatewayTokens: GatewayTokens | undefined;
  const tokens = config.gatewayTokens;
  if (tokens.enabled) {
    const key = await loadSigningKey({ signingKey: tokens.signingKey, keyFile: tokens.keyFile ?? join(options.dataDir, 'gateway-signing-key.pem') });
    // Every token it signed would be refused: a leaked key must be replaced, not reused.
    if (revocations.signingKeyRevoked(key.kid)) throw new SigningKeyError(`the gateway token signing key (kid ${key.kid}) is revoked: configure a new key (identity.gatewayTokens.signingKey or keyFile), or remove the key file to have one generated`);
    gatewayTokens = new GatewayTokens(db, key, { issuer: tokens.issuer ?? options.publicUrl ?? 'gatehouse', audience: tokens.audience, keyRevoked: (kid) => revocations.signingKeyRevoked(kid) });
    await gatewayTokens.publish();
    verifiers.push(gatewayTokens);
  }
  const cache = new VerifiedTokenCache({ maxEntries: config.oidc.cache.maxEntries, ttlMs: config.oidc.cache.ttl });
  const identify = identifyCaller([apiKeyAuthenticator(apiKeys), jwtAuthenticator(verifiers, cache)], { checkRevoked: (identity) => revocations.check(identity) });
  return {
    apiKeys,
    revocations,
    inFlight,
    gatewayTokens,
    identify,
    async identifyAdmin(credential) {
      const identity = await identify(credential);
      // Login sessions (scoped to no connection) are the Gatehouse tokens meant for the admin API.
      refuseConnectionScoped(identity, 'on the admin API');
      return identity;
    },
    loginRoutes(secureCookies, refusals) {
      const { login, saml } = config;
      if (!gatewayTokens) return undefined;
      const handlers: Array<(req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean>> = [];
      if (login) handlers.push(createOidcLogin({ login, issuer: config.oidc.issuers.find((i) => i.name === login.issuer)!, tokens: gatewayTokens, secureCookies, refusals }));
      if (saml) handlers.push(createSamlLogin({ saml, tokens: gatewayTokens, db, secureCookies, refusals }));
      if (handlers.length === 0) return undefined;
      return async (req, res, url) => {
        for (const handle of handlers) if (await handle(req, res, url)) return true;
        return false;
      };
    },
    async close() {
      revocations.stop();
      await listener?.close();
    },
  };
}
