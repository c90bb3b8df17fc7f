// Entities found from an anchor character with a bounded look around it:
// - email (RFC 5321 §4.5.3.1 limits: local part ≤ 64, domain ≤ 255) from each `@`;
// - IPv6 (RFC 4291 §2.2, with `::` compression and a trailing IPv4) from each `:`;
// - PEM private keys (RFC 7468) from each `-----BEGIN`, to the matching END line
//   or, when there is none yet, to the end of the text.
// Each look is bounded, so the scan stays linear.

import type { Detection } from './types.js';
import { charClass, DIGIT, isGluedScript, isWordChar, LOWER, UPPER } from './char-class.js';

const fileExtensionList = ['png', 'jpg', 'jpeg', 'gif', 'svg', 'webp', 'bmp', 'ico', 'pdf', 'js', 'ts', 'css', 'map'];
const maxExtensionLength = 4;

export function scanEmails(text: string, out: Detection[]): void {
  for (let at = text.indexOf('@'); at >= 0; at = text.indexOf('@', emailAt(text, at, out))) {}
}

/**
 * Checks the address around the `@` at `at`; returns where the next `@` may start an
 * address (after this one's domain). The detector calls it from its one pass over the
 * text (scan-digits.ts), `scanEmails` from a search of its own.
 */
export function emailAt(text: string, at: number, out: Detection[], width = 1): number {
  let s = at;
  // Text in a script written without spaces (Chinese, Japanese, Thai; Korean particles)
  // is glued to an ASCII address: `请联系jane@example.com获取帮助`. Such a character
  // before an ASCII local part, or after an ASCII domain, is not part of the address.
  while (s > 0 && at - s < 65 && isLocalChar(text.charCodeAt(s - 1)) && !(s < at && isGluedScript(text.charCodeAt(s - 1)) && isAsciiAlnum(text.charCodeAt(s)))) s--;
  const d = at + width;
  let e = d;
  while (e < text.length && e - d < 255 && isDomainChar(text.charCodeAt(e)) && !(e > d && isGluedScript(text.charCodeAt(e)) && isAsciiAlnum(text.charCodeAt(e - 1)))) e++;
  while (e > d && (text.charCodeAt(e - 1) === 46 || text.charCodeAt(e - 1) === 45)) e--;
  // A local part does not start with a dot, nor with the quote around the address
  // (`'jane@example.com'` in SQL or prose; an apostrophe inside one, o'brien@…, stays).
  while (s < at && (text.charCodeAt(s) === 46 || text.charCodeAt(s) === 39 || text.charCodeAt(s) === 96)) s++;
  const before = s > 0 ? text.charCodeAt(s - 1) : 32;
  const after = e < text.length ? text.charCodeAt(e) : 32;
  const okLocal = s < at && at - s <= 64 && !(isWordChar(before) && !(isGluedScript(before) && isAsciiAlnum(text.charCodeAt(s)))) && text.charCodeAt(at - 1) !== 46;
  if (okLocal && validDomain(text, d, e) && !(isWordChar(after) && !(isGluedScript(after) && isAsciiAlnum(text.charCodeAt(e - 1))))) {
    out.push({ type: 'EMAIL', start: s, end: e, score: 0.95 });
  }
  return Math.max(at + 1, e);
}

/** At the `%` of `%40`: an address written percent-encoded, as in a URL's query (`email=jane%40example.com`). */
export function encodedEmailAt(text: string, at: number, out: Detection[]): void {
  emailAt(text, at, out, 3);
}

/** `text[from, to)` is a dotted domain with an alphabetic TLD that is not a file extension. */
function validDomain(text: string, from: number, to: number): boolean {
  let labels = 0;
  let labelStart = from;
  let tldStart = from;
  for (let k = from; k <= to; k++) {
    if (k < to && text.charCodeAt(k) !== 46) continue;
    const length = k - labelStart;
    if (length === 0 || length > 63 || text.charCodeAt(labelStart) === 45 || text.charCodeAt(k - 1) === 45) return false;
    labels++;
    tldStart = labelStart;
    labelStart = k + 1;
  }
  if (labels < 2) return false;
  let ascii = true;
  for (let k = tldStart; k < to; k++) {
    const c = text.charCodeAt(k);
    if (c > 127) ascii = false;
    else if ((charClass[c]! & (UPPER | LOWER)) === 0) return false;
  }
  if (ascii) {
    if (to - tldStart < 2 || to - tldStart > 24) return false;
  } else if (!/^\p{L}{2,24}$/u.test(text.slice(tldStart, to))) return false;
  return to - tldStart > maxExtensionLength || !isFileExtension(text, tldStart, to);
}

/** `text[from, to)` is one of `fileExtensionList`, in any case (compared in place: most addresses end in such a short TLD). */
function isFileExtension(text: string, from: number, to: number): boolean {
  next: for (const ext of fileExtensionList) {
    if (ext.length !== to - from) continue;
    for (let k = 0; k < ext.length; k++) if ((text.charCodeAt(from + k) | 32) !== ext.charCodeAt(k)) continue next;
    return true;
  }
  return false;
}

/** A letter of a script written without spaces between words, or whose particles attach to the word before (Korean). */
function isAsciiAlnum(c: number): boolean {
  return c < 128 && (charClass[c]! & (UPPER | LOWER | DIGIT)) !== 0;
}

// RFC 6531: internationalized addresses may use non-ASCII letters on both sides.
export function isLocalChar(c: number): boolean {
  return (charClass[c]! & 15) !== 0 || c === 46 || c === 43 || c === 37 || c === 39 || (c > 127 && isWordChar(c));
}

export function isDomainChar(c: number): boolean {
  return (charClass[c]! & 7) !== 0 || c === 45 || c === 46 || (c > 127 && isWordChar(c));
}

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
}

export function scanIpv6(text: string, out: Detection[]): void {
  let scannedTo = 0;
  for (let colon = text.indexOf(':'); colon >= 0; colon = text.indexOf(':', Math.max(colon + 1, scannedTo))) {
    if (colon >= scannedTo) scannedTo = ipv6At(text, colon, out);
  }
}

/**
 * Checks the address around the `:` at `colon`; returns where its scan ended (a colon
 * before that is part of what was checked).
 */
export function ipv6At(text: string, colon: number, out: Detection[]): number {
  let s = colon;
  while (s > 0 && colon - s < 40 && (isHex(text.charCodeAt(s - 1)) || text.charCodeAt(s - 1) === 58)) s--;
  let e = colon;
  while (e < text.length && e - s < 46 && (isHex(text.charCodeAt(e)) || text.charCodeAt(e) === 58 || text.charCodeAt(e) === 46)) e++;
  while (e > colon && text.charCodeAt(e - 1) === 46) e--;
  // Every IPv6 text form has at least two colons (`::1`); times (`12:30`) and
  // `key: value` have one, and stop here without cutting a string.
  let colons = 0;
  for (let k = s; k < e && colons < 2; k++) if (text.charCodeAt(k) === 58) colons++;
  const beforeOk = s === 0 || !isWordChar(text.charCodeAt(s - 1));
  const afterOk = e >= text.length || !isWordChar(text.charCodeAt(e));
  if (colons >= 2 && beforeOk && afterOk && validIpv6(text, s, e)) out.push({ type: 'IP_ADDRESS', start: s, end: e, score: 0.85 });
  return e;
}

/** Group bounds of the candidate being validated (a candidate is at most 46 characters). */
const v6Start = new Int32Array(48);
const v6End = new Int32Array(48);

/**
 * `text[s, e)` is an IPv6 address (RFC 4291 §2.2: eight groups of 1-4 hex digits, or
 * fewer with one `::`, optionally ending in a dotted IPv4). Read in place: no strings
 * are cut out and no regex runs.
 */
export function validIpv6(text: string, s: number, e: number): boolean {
  if (e - s < 3 || e - s > 47) return false;
  // The groups between colons, as `value.split(':')` would give them.
  let groups = 0;
  for (let k = s, from = s; k <= e; k++) {
    if (k < e && text.charCodeAt(k) !== 58) continue;
    v6Start[groups] = from;
    v6End[groups] = k;
    groups++;
    from = k + 1;
  }
  let v4 = false;
  const lastStart = v6Start[groups - 1]!;
  const lastEnd = v6End[groups - 1]!;
  for (let k = lastStart; k < lastEnd; k++) {
    if (text.charCodeAt(k) === 46) {
      if (!dottedQuad(text, lastStart, lastEnd)) return false;
      v4 = true;
      break;
    }
  }
  let compressed = -1;
  for (let k = s; k + 1 < e; k++) {
    if (text.charCodeAt(k) === 58 && text.charCodeAt(k + 1) === 58) {
      if (compressed >= 0) return false;
      compressed = k;
      k++;
      // `:::` holds a second `::` starting one later.
      if (k + 1 < e && text.charCodeAt(k + 1) === 58) return false;
    }
  }
  if (compressed < 0) {
    const hexGroups = v4 ? groups - 1 : groups;
    if (hexGroups + (v4 ? 2 : 0) !== 8) return false;
    for (let g = 0; g < hexGroups; g++) if (!hexGroup(text, v6Start[g]!, v6End[g]!)) return false;
    return true;
  }
  // The parts around `::`: every group but the empty one between its colons, and the
  // empty group before (after) it when it starts (ends) the value.
  let parts = 0;
  let lastPart = -1;
  for (let g = 0; g < groups; g++) {
    const gs = v6Start[g]!;
    if (gs === compressed + 1 || (compressed === s && g === 0) || (compressed + 2 === e && gs === e)) continue;
    parts++;
    lastPart = g;
  }
  const hexParts = v4 ? parts - 1 : parts;
  if (hexParts + (v4 ? 2 : 0) > 7) return false;
  for (let g = 0; g < groups; g++) {
    const gs = v6Start[g]!;
    if (gs === compressed + 1 || (compressed === s && g === 0) || (compressed + 2 === e && gs === e)) continue;
    if (v4 && g === lastPart) continue;
    if (!hexGroup(text, gs, v6End[g]!)) return false;
  }
  // `::` alone, or `a::b` made of words, is too weak; require a digit or 3+ groups.
  if (hexParts >= 2 || v4) return true;
  if (e - s === 3 && text.startsWith('::1', s)) return true;
  for (let k = s; k < e; k++) {
    const c = text.charCodeAt(k);
    if (c >= 48 && c <= 57) return true;
  }
  return false;
}

/** `text[s, e)` is 1-4 hex digits. */
function hexGroup(text: string, s: number, e: number): boolean {
  if (e - s < 1 || e - s > 4) return false;
  for (let k = s; k < e; k++) if (!isHex(text.charCodeAt(k))) return false;
  return true;
}

/** `text[s, e)` is four dot-separated decimal octets of 1-3 digits, each at most 255. */
function dottedQuad(text: string, s: number, e: number): boolean {
  let octets = 0;
  let digits = 0;
  let value = 0;
  for (let k = s; k <= e; k++) {
    const c = k < e ? text.charCodeAt(k) : 46;
    if (c === 46) {
      if (digits === 0 || value > 255) return false;
      octets++;
      digits = 0;
      value = 0;
    } else if (c >= 48 && c <= 57 && digits < 3) {
      digits++;
      value = value * 10 + c - 48;
    } else return false;
  }
  return octets === 4;
}

export const pemBegin = /^-----BEGIN ((?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?)-----/;

export function scanPem(text: string, out: Detection[]): void {
  let at = nextPemBegin(text, 0);
  while (at >= 0) {
    const m = pemBegin.exec(text.slice(at, at + 64));
    let next = at + 11;
    if (m) {
      const endLine = `-----END ${m[1]}-----`;
      const endAt = text.indexOf(endLine, at + m[0].length);
      const end = endAt < 0 ? text.length : endAt + endLine.length;
      out.push({ type: 'PRIVATE_KEY', start: at, end, score: 0.99 });
      next = end;
    }
    at = nextPemBegin(text, next);
  }
}

/**
 * The next `-----BEGIN ` at or after `from`. Searching for `BEGIN ` and checking the
 * dashes before it is several times faster than searching for the whole marker: `-`
 * is common in text, `BEGIN ` is not.
 */
function nextPemBegin(text: string, from: number): number {
  for (let b = text.indexOf('BEGIN ', from + 5); b >= 0; b = text.indexOf('BEGIN ', b + 6)) {
    if (text.startsWith('-----', b - 5)) return b - 5;
  }
  return -1;
}
