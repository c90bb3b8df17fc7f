// A caller whose SDK sends the key in its provider's own header (the Anthropic SDK's
// `x-api-key`, Azure's `api-key`, Google Gen AI's `x-goog-api-key`) and no bearer token
// was refused with "Send Authorization: Bearer", which reads as if no key was sent at
// all. The refusal now names the header it came in and how to make that SDK send a
// bearer token. The key is not accepted from those headers (identity.md: every request
// names its caller with `Authorization: Bearer`), never echoed, and never forwarded
// (headers.ts drops any header holding a Gatehouse key).

import type { IncomingHttpHeaders } from 'node:http';
import { GatehouseError } from '../../errors/index.js';

/** Each provider header an SDK puts its key in, and how to make that SDK send a bearer token. */
const providerKeyHeaders: ReadonlyArray<readonly [header: string, sdk: string, fix: string]> = [
  ['x-api-key', 'the Anthropic SDK', 'pass the key as authToken (ANTHROPIC_AUTH_TOKEN), not apiKey'],
  ['api-key', 'the Azure OpenAI client', 'use the plain OpenAI client with the key as apiKey, on an openai connection whose target carries the deployment'],
  ['x-goog-api-key', 'the Google Gen AI SDK', 'add httpOptions.headers { Authorization: "Bearer <key>" }'],
];

/**
 * `error` as the caller should read it: an `unauthenticated` refusal of a request that
 * carries a key in a provider's header names that header and the SDK's setting.
 */
export function withCredentialHint(error: GatehouseError, headers: IncomingHttpHeaders): GatehouseError {
  if (error.code !== 'unauthenticated') return error;
  const found = providerKeyHeaders.find(([header]) => {
    const value = headers[header];
    return typeof value === 'string' ? value.trim() !== '' : Array.isArray(value) && value.some((v) => v.trim() !== '');
  });
  if (!found) return error;
  const [header, sdk, fix] = found;
  const message = `A credential was sent in "${header}" (as ${sdk} does), which Gatehouse does not read and does not forward. Send "Authorization: Bearer <key>": with ${sdk}, ${fix}.`;
  return new GatehouseError('unauthenticated', { message, detail: `${error.detail ?? error.code}; a key in ${header}`, cause: error.cause });
}
