export { ApiKeyService, ApiKeyInputError, type ApiKeyInfo, type CreateApiKeyInput } from './api-keys.js';
export { identifyCaller, type Authenticator } from './identify-caller.js';
export { apiKeyAuthenticator } from './api-key-authenticator.js';
export { parseApiKey } from './api-key-format.js';
