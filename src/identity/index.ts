export { ApiKeyService, ApiKeyInputError, type ApiKeyInfo, type CreateApiKeyInput } from './api-keys.js';
export { identifyCaller, type Authenticator } from './identify-caller.js';
export { apiKeyAuthenticator } from './api-key-authenticator.js';
export { parseApiKey } from './api-key-format.js';
export { buildIdentity, type IdentityServices } from './build-identity.js';
export { VerifiedTokenCache } from './verified-token-cache.js';
export { jwtAuthenticator } from './jwt-authenticator.js';
export { OidcIssuer, type TokenVerifier } from './oidc/oidc-issuer.js';
export { groupsFromClaims } from './oidc/groups-from-claims.js';
