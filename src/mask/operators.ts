// Operators that replace a finding in text:
// - redact:  `[EMAIL]`
// - partial: every letter and digit but the last N becomes `*`; separators stay
//            (`***-**-6789`, `**** **** **** 1111`)
// - hash:    `[EMAIL:3f9a1c2b7d4e]`, HMAC-SHA256 under the profile's key over the type
//            and the value in one form per entity (hashForm): stable for one key, so
//            analysts can correlate without the value, however it was written
// - drop:    removes the JSON field holding the value; in text it redacts.

import { createHmac } from 'node:crypto';
import type { Finding } from './plan.js';
import { disguiseView } from './disguise-view.js';

export type EntityCounts = Record<string, number>;

/** The count under which the HTTP data plane records target credentials it replaced in an answer (not a detector's entity). */
export const targetCredentialEntity = 'target_credential';

export function replacement(value: string, finding: Finding): string {
  switch (finding.operator) {
    case 'partial':
      return partial(value, finding.keepLast);
    case 'hash': {
      const mac = createHmac('sha256', finding.hashKey ?? '').update(`${finding.type}\u0000${hashForm(finding.type, value)}`).digest('hex');
      return `[${finding.type}:${mac.slice(0, 12)}]`;
    }
    default:
      return label(finding.type);
  }
}

/**
 * The form of a value that is hashed: one per entity, whatever way it was written, so
 * analysts can correlate `Ann@Example.com` with `ann@example.com`, `(415) 555-0100` with
 * `+1 415-555-0100`, a card with spaces with the same card with dashes.
 */
export function hashForm(type: string, written: string): string {
  // Invisible characters, full-width forms and character references are not part of the value.
  const value = disguiseView(written)?.text ?? written;
  switch (type) {
    case 'EMAIL':
      // `ann%40example.com` (a URL's query) is the same address.
      return percentDecoded(value).toLowerCase();
    case 'PHONE':
      return phoneForm(value);
    case 'CREDIT_CARD':
    case 'US_SSN':
      return value.replace(/\D/g, '');
    case 'IBAN':
      return value.replace(/[^0-9A-Za-z]/g, '').toUpperCase();
    case 'IP_ADDRESS':
      return value.includes(':') ? ipv6Form(value) : value;
    default:
      return value;
  }
}

/** E.164 (`+14155550100`): a trunk `(0)` and the `00` prefix dropped; a North-American number without its country code gets `1`. */
function phoneForm(value: string): string {
  const trimmed = value.trim();
  const digits = trimmed.replace(/\(0\)/g, '').replace(/\D/g, '');
  if (trimmed.startsWith('+')) return `+${digits}`;
  if (digits.startsWith('00')) return `+${digits.slice(2)}`;
  if (digits.length === 10) return `+1${digits}`;
  return `+${digits}`;
}

function ipv6Form(value: string): string {
  try {
    return new URL(`http://[${value}]/`).hostname.slice(1, -1);
  } catch {
    return value.toLowerCase();
  }
}

function percentDecoded(value: string): string {
  if (!value.includes('%')) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    return value.replace(/%40/gi, '@');
  }
}

/** `[TYPE]`, one string per type (not one per finding). */
const labels = new Map<string, string>();
function label(type: string): string {
  let l = labels.get(type);
  if (l === undefined) {
    l = `[${type}]`;
    // Custom entity names come from config; the cache cannot grow past a few hundred.
    if (labels.size < 1024) labels.set(type, l);
  }
  return l;
}

function partial(value: string, keepLast: number): string {
  // From the end, step over code points until `keepLast` letters and digits are kept;
  // before that point every letter and digit becomes `*`.
  let cut = value.length;
  for (let kept = 0; cut > 0 && kept < keepLast; ) {
    const low = value.charCodeAt(cut - 1);
    const width = low >= 0xdc00 && low <= 0xdfff && cut > 1 && isHighSurrogate(value.charCodeAt(cut - 2)) ? 2 : 1;
    cut -= width;
    if (isLetterOrDigit(value.codePointAt(cut)!)) kept++;
  }
  let out = '';
  for (let k = 0; k < cut; ) {
    const cp = value.codePointAt(k)!;
    const width = cp > 0xffff ? 2 : 1;
    out += isLetterOrDigit(cp) ? '*' : value.slice(k, k + width);
    k += width;
  }
  return out + value.slice(cut);
}

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}

function isLetterOrDigit(cp: number): boolean {
  if (cp < 128) return (cp >= 48 && cp <= 57) || (cp >= 65 && cp <= 90) || (cp >= 97 && cp <= 122);
  return /[\p{L}\p{N}]/u.test(String.fromCodePoint(cp));
}

/** Applies findings (sorted, non-overlapping) to `text`; counts what it replaced. */
export function applyFindings(text: string, findings: readonly Finding[], counts: EntityCounts): string {
  if (findings.length === 0) return text;
  // One list of slices of the input and replacements, joined once: the result is one
  // flat copy (no rope of thousands of pieces for the consumer to flatten), and
  // redaction, the common case, cuts no string out of the value. The types seen, their
  // labels and counts are kept in small local arrays (a text has a handful of types)
  // and added to `counts` once per type at the end, not once per finding.
  const parts: string[] = [];
  const types: string[] = [];
  const typeLabels: string[] = [];
  const typeCounts: number[] = [];
  let at = 0;
  for (let i = 0; i < findings.length; i++) {
    const f = findings[i]!;
    let t = types.indexOf(f.type);
    if (t < 0) {
      t = types.length;
      types.push(f.type);
      typeLabels.push(label(f.type));
      typeCounts.push(0);
    }
    typeCounts[t]!++;
    if (f.start > at) parts.push(text.slice(at, f.start));
    parts.push(f.operator === 'redact' || f.operator === 'drop' ? typeLabels[t]! : replacement(text.slice(f.start, f.end), f));
    at = f.end;
  }
  if (at < text.length) parts.push(text.slice(at));
  for (let t = 0; t < types.length; t++) counts[types[t]!] = (counts[types[t]!] ?? 0) + typeCounts[t]!;
  return parts.join('');
}

/** How many values `counts` says were masked, all types together. */
export function totalCount(counts: EntityCounts): number {
  let sum = 0;
  for (const n of Object.values(counts)) sum += n ?? 0;
  return sum;
}

export function addCounts(into: EntityCounts, from: EntityCounts): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}
