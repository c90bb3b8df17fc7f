// The canonical form every audit hash is computed over: JSON with object keys sorted
// by UTF-16 code units, no insignificant whitespace, strings escaped as
// JSON.stringify does — RFC 8785 (JCS) for the values we record (strings, integers,
// booleans, null, arrays, objects). `undefined` members are dropped, as JSON does.

import { hash } from 'node:crypto';

export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new TypeError('canonical JSON: non-finite number');
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).filter((k) => record[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(record[k])}`).join(',')}}`;
}

/** One-shot (crypto.hash): about half the cost of a Hash object for the short texts hashed per record. */
export function sha256Hex(data: string | Buffer): string {
  return hash('sha256', data);
}
