import type { ApiKeyService } from './api-keys.js';
import type { Authenticator } from './identify-caller.js';

export function apiKeyAuthenticator(keys: ApiKeyService): Authenticator {
  return {
    accepts: (token) => token.startsWith('ghk_'),
    verify: (token) => keys.verify(token),
  };
}
