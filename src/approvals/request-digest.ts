// The digest an approval is bound to: SHA-256 over the request body in canonical
// form. A JSON body is re-serialised with sorted keys and no insignificant whitespace
// (RFC 8785-style ordering), so a client that re-encodes the same request still
// matches; any other body is hashed byte for byte. An empty body hashes as "".

import { createHash } from 'node:crypto';

export function requestDigest(body: Buffer | undefined): string {
  const bytes = body ?? Buffer.alloc(0);
  let canonical: string | Buffer = bytes;
  if (bytes.length > 0) {
    try {
      canonical = canonicalJson(JSON.parse(bytes.toString('utf8')));
    } catch {
      canonical = bytes;
    }
  }
  return `sha256:${createHash('sha256').update(canonical).digest('hex')}`;
}

export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
}
