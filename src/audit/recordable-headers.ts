// Headers kept in a recording: an allow-list, so a credential in an unexpected header
// (x-api-key, cookie, a vendor's own) is never stored.

import { credentialLabel, redactPathCredentials } from '../detect/path-credentials.js';

const recordable = new Set([
  'accept',
  'accept-encoding',
  'content-type',
  'content-length',
  'content-encoding',
  'transfer-encoding',
  'user-agent',
  'openai-organization',
  'openai-project',
  'openai-beta',
  'openai-model',
  'openai-processing-ms',
  'openai-version',
  'x-request-id',
  'request-id',
  'x-ratelimit-limit-requests',
  'x-ratelimit-limit-tokens',
  'x-ratelimit-remaining-requests',
  'x-ratelimit-remaining-tokens',
  'x-stainless-lang',
  'x-stainless-package-version',
  'x-stainless-runtime',
  'x-stainless-runtime-version',
  'date',
  'cache-control',
]);

export function recordableHeaders(headers: Readonly<Record<string, string | string[] | undefined>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    // Node and undici give names in lower case already: lowered only when not found as given.
    let key = name;
    if (!recordable.has(key)) {
      key = name.toLowerCase();
      if (key === name || !recordable.has(key)) continue;
    }
    out[key] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

// Credentials in the path itself (`/users/sk-live-…`) are replaced by their type label
// (redactPathCredentials); so is a query value that is a credential under any name.
// Query parameters that carry credentials (Google's `key`, `access_token`, presigned
// URLs' `X-Amz-Signature` / `sig`, …): their values are replaced in the recorded path.
// The gateway's own credential is a header, but callers put the target's keys in the
// query too, and the path is recorded as sent (the target still gets them as sent).
const credentialParam = /key|token|secret|passw|pwd|sig|auth|credential|session|cookie/i;

/** `path?query` for the record: credential segments are `[TYPE]`, the value of every credential-like query parameter `[redacted]`. */
export function recordablePath(path: string): string {
  const query = path.indexOf('?');
  if (query < 0) return redactPathCredentials(path);
  const params = path
    .slice(query + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const name = eq < 0 ? pair : pair.slice(0, eq);
      let decoded = name;
      try {
        decoded = decodeURIComponent(name.replace(/\+/g, ' '));
      } catch {
        // a malformed name is matched as sent
      }
      if (eq < 0) return pair;
      if (credentialParam.test(decoded)) return `${name}=[redacted]`;
      const label = credentialLabel(pair.slice(eq + 1).replace(/\+/g, ' '));
      return label === undefined ? pair : `${name}=${label}`;
    });
  return `${redactPathCredentials(path.slice(0, query))}?${params.join('&')}`;
}
