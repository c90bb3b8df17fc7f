// The digest an approval is bound to: SHA-256 over the request body in canonical
// form (and an HTTP request's query string, when it has one). A JSON body is re-serialised with sorted keys and no insignificant whitespace
// (RFC 8785-style ordering), so a client that re-encodes the same request still
// matches; any other body is hashed byte for byte. An empty body hashes as "".
//
// The canonical form is written from the body's text, not from JSON.parse's values:
// numbers keep their exact spelling, since a parsed double would make
// `{"to":12345678901234567891}` and `{"to":12345678901234567890}` one request (both
// round to the same double) while the target, reading the bytes, sees two. A body the
// canonical form could make ambiguous in the same way (a key given twice, which parsers
// resolve differently; bytes that are not UTF-8; nesting deeper than maxDepth) is
// hashed as bytes.

import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';

const maxDepth = 256;
const whitespace = /[ \t\n\r]*/y;
const stringToken = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
const numberToken = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const literalToken = /true|false|null/y;

/**
 * `query` is an HTTP request's query string as sent (without `?`): it is part of what a
 * reviewer approves (`POST /jobs?dry_run=true` is not `?dry_run=false`, and a target
 * reads it as it reads the body), so it is hashed too, byte for byte; a request without
 * one hashes as the body alone, as before.
 */
export function requestDigest(body: Buffer | undefined, query = ''): string {
  const bytes = body ?? Buffer.alloc(0);
  const canonical = bytes.length > 0 && isUtf8(bytes) ? canonicalText(bytes.toString('utf8')) : undefined;
  const hash = createHash('sha256');
  if (query !== '') hash.update(`\u0000query\u0000${query}\u0000`, 'utf8');
  return `sha256:${hash.update(canonical ?? bytes).digest('hex')}`;
}

/** The canonical form of a JSON text; undefined when it is not JSON, or not one unambiguous value. */
function canonicalText(text: string): string | undefined {
  const reader = { text, at: 0 };
  const value = readValue(reader, 0);
  if (value === undefined) return undefined;
  skip(reader, whitespace);
  return reader.at === text.length ? value : undefined;
}

export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
}

interface Reader {
  readonly text: string;
  at: number;
}

function skip(reader: Reader, token: RegExp): string | undefined {
  token.lastIndex = reader.at;
  const match = token.exec(reader.text);
  if (!match) return undefined;
  reader.at = token.lastIndex;
  return match[0];
}

function readValue(reader: Reader, depth: number): string | undefined {
  skip(reader, whitespace);
  const next = reader.text[reader.at];
  if (next === '{' || next === '[') {
    if (depth >= maxDepth) return undefined;
    reader.at++;
    return next === '{' ? readObject(reader, depth + 1) : readArray(reader, depth + 1);
  }
  if (next === '"') {
    const token = skip(reader, stringToken);
    // Escapes normalised (`"\u0041"` is `"A"`), so a re-encoded string matches.
    return token === undefined ? undefined : JSON.stringify(JSON.parse(token) as string);
  }
  return skip(reader, numberToken) ?? skip(reader, literalToken);
}

function readArray(reader: Reader, depth: number): string | undefined {
  const items: string[] = [];
  skip(reader, whitespace);
  if (reader.text[reader.at] === ']') {
    reader.at++;
    return '[]';
  }
  for (;;) {
    const item = readValue(reader, depth);
    if (item === undefined) return undefined;
    items.push(item);
    skip(reader, whitespace);
    const separator = reader.text[reader.at++];
    if (separator === ']') return `[${items.join(',')}]`;
    if (separator !== ',') return undefined;
  }
}

function readObject(reader: Reader, depth: number): string | undefined {
  const members = new Map<string, string>();
  skip(reader, whitespace);
  if (reader.text[reader.at] === '}') {
    reader.at++;
    return '{}';
  }
  for (;;) {
    skip(reader, whitespace);
    const token = skip(reader, stringToken);
    if (token === undefined) return undefined;
    const key = JSON.parse(token) as string;
    if (members.has(key)) return undefined;
    skip(reader, whitespace);
    if (reader.text[reader.at++] !== ':') return undefined;
    const value = readValue(reader, depth);
    if (value === undefined) return undefined;
    members.set(key, value);
    skip(reader, whitespace);
    const separator = reader.text[reader.at++];
    if (separator === '}') break;
    if (separator !== ',') return undefined;
  }
  // Sorted by UTF-16 code units, as canonicalJson (Array.prototype.sort) sorts.
  const keys = [...members.keys()].sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${members.get(k)!}`).join(',')}}`;
}
