// Wiring for everything identity: API keys, OIDC issuers, the verified-token cache,
// and the identify stage built from them. The gateway calls this once at start.

import type { Kysely } from 'kysely';
import type { IdentityConfig } from '../config/identity-schema.js';
import type { Identity } from '../exchange/index.js';
import type { Database } from '../store/index.js';
import { apiKeyAuthenticator } from './api-key-authenticator.js';
import { ApiKeyService } from './api-keys.js';
import { identifyCaller } from './identify-caller.js';
import { jwtAuthenticator } from './jwt-authenticator.js';
import { OidcIssuer } from './oidc/oidc-issuer.js';
import { VerifiedTokenCache } from './verified-token-cache.js';

export interface IdentityServices {
  readonly apiKeys: ApiKeyService;
  readonly identify: (credential: string | undefined) => Promise<Identity>;
  close(): Promise<void>;
}

export async function buildIdentity(config: IdentityConfig, db: Kysely<Database>): Promise<IdentityServices> {
  const apiKeys = new ApiKeyService(db);
  const cache = new VerifiedTokenCache({ maxEntries: config.oidc.cache.maxEntries, ttlMs: config.oidc.cache.ttl });
  const issuers = config.oidc.issuers.map((i) => new OidcIssuer(i, { clockSkewMs: config.oidc.clockSkew }));
  const identify = identifyCaller([apiKeyAuthenticator(apiKeys), jwtAuthenticator(issuers, cache)]);
  return { apiKeys, identify, close: async () => undefined };
}
