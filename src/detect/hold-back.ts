// How much of the end of a text a streaming masker must hold back: the earliest
// position from which a built-in detector could still find, grow or drop a finding
// once more text arrives. Everything before it is final. Each rule below mirrors one
// scanner and holds only what that scanner could still take:
//
// - e-mail: the trailing run of local-part characters (any word may turn out to be a
//   local part when `@example.com` follows), or an address whose domain may go on;
// - tokens (keys, JWTs, generic secrets): the trailing token when it can still become
//   one: a vendor prefix (or the start of one), or a context word such as "secret"
//   within 48 characters before it;
// - numbers (phones, cards, SSNs, IPv4): a run of digit groups that the next
//   character could continue (`415 555 `, `(415`, `4111-`, a lone `+` or `(`);
// - IBANs: a country code, check digits and groups of four that may go on;
// - IPv6: a trailing run of hex digits and colons not glued to a word;
// - PEM: an open private key block, or the start of `-----BEGIN ` at the end.
//
// A word followed by a space, or any text followed by a character none of these can
// continue with, is released at once. What the rules cannot see (a finding already in
// the text that loses an overlap to one still growing) the detector covers by also
// holding every finding that straddles the point (detector.ts).

import { ALNUM, charClass, DIGIT, isDigit, isGluedScript, isWordChar, TOKEN } from './char-class.js';
import { isDomainChar, isLocalChar, pemBegin } from './scan-misc.js';
import { awsContext, contextWindow, isGluedSecretChar, secretContext } from './scan-tokens.js';
import { ibanLengths } from './validators.js';
import { userinfoPasswordStart } from './scan-url-credentials.js';

/** An unbroken token longer than this is released: a key longer than 8 KiB is not a key. */
const maxTokenHold = 8 * 1024;
/** An unterminated PEM block is held up to this size, then masked whole. */
const maxPemHold = 16 * 1024;
/** The e-mail scanner looks at most 65 characters back from `@` for the local part. */
const maxLocalPart = 65;
/** The e-mail scanner takes at most 255 characters of domain. */
const maxDomain = 256;
/** An IPv6 candidate is at most 46 characters; this covers it with room. */
const maxIpv6Hold = 64;
/** A run of digit groups is kept as context back to its start up to this length. */
const maxRunContext = 1024;
/** The number scanner's longest run (scan-numeric.ts). */
const maxRunGroups = 12;
/** A printed IBAN: at most 34 characters and 8 single spaces. */
const maxIbanHold = 48;

/**
 * Where the left context detection needs for what follows `text` begins: the run of
 * characters an entity may contain that reaches the end (a token, word or address the
 * next piece may continue, up to 8 KiB), plus 48 characters before it for context
 * words and the glued-word checks. A streaming masker keeps this much of what it has
 * released, so detection over "context + new text" decides as it would on the whole.
 */
export function contextStart(text: string): number {
  const n = text.length;
  let s = n;
  while (s > 0 && n - s < maxTokenHold && isEntityChar(text.charCodeAt(s - 1))) s--;
  // Digit groups joined by single separators: the number scanner cuts a run into
  // pieces of 12 groups counted from the run's start, so the start must be in view
  // for the pieces (and what is found in them) to be the same as in the whole text.
  let r = n;
  while (r > 0 && n - r < maxRunContext) {
    const c = text.charCodeAt(r - 1);
    if ((c >= 48 && c <= 57) || c === 40 || c === 41 || c === 43 || c === 45 || c === 46 || (c === 32 && r > 1 && text.charCodeAt(r - 2) !== 32)) r--;
    else break;
  }
  return Math.max(0, Math.min(s, r) - contextWindow);
}

/** A character some built-in entity may contain (spaces aside): any other ends them all. */
function isEntityChar(c: number): boolean {
  return (charClass[c]! & TOKEN) !== 0 || c === 64 || c === 58 || c === 37 || c === 39 || c === 40 || c === 41 || (c > 127 && isWordChar(c));
}

export function builtinHoldBack(text: string): number {
  const n = text.length;
  if (n === 0) return 0;
  let p = emailHold(text);
  p = Math.min(p, tokenHold(text));
  p = Math.min(p, gluedSecretHold(text));
  p = Math.min(p, numericHold(text));
  p = Math.min(p, ibanHold(text));
  p = Math.min(p, ipv6Hold(text));
  p = Math.min(p, urlPasswordHold(text));
  return Math.min(p, pemHold(text));
}

/** `scheme://user:pass` at the end: the password may still be one (`@host` may follow). */
function urlPasswordHold(text: string): number {
  const p = userinfoPasswordStart(text, text.length);
  return p < 0 ? text.length : p;
}

function emailHold(text: string): number {
  const n = text.length;
  // A local part in progress.
  let hold = n;
  // (2 more: the `%4` of a percent-encoded `@` still coming.)
  while (hold > 0 && n - hold < maxLocalPart + 2 && isLocalChar(text.charCodeAt(hold - 1))) hold--;
  // A domain in progress: `@` followed by domain characters up to the end (an address
  // ending at the end may still grow, or be glued to a word and stop being one).
  let d = n;
  while (d > 0 && n - d < maxDomain && isDomainChar(text.charCodeAt(d - 1))) d--;
  if (d > 0 && text.charCodeAt(d - 1) === 64) {
    let local = d - 1;
    while (local > 0 && d - 1 - local < maxLocalPart && isLocalChar(text.charCodeAt(local - 1))) local--;
    hold = Math.min(hold, local);
  }
  // The same, percent-encoded: `jane%40example.co` (the domain run took the `40`).
  if (d > 0 && text.charCodeAt(d - 1) === 37 && text.charCodeAt(d) === 52 && text.charCodeAt(d + 1) === 48) {
    let local = d - 1;
    while (local > 0 && d - 1 - local < maxLocalPart && isLocalChar(text.charCodeAt(local - 1))) local--;
    hold = Math.min(hold, local);
  }
  return hold;
}

// Vendor key prefixes, one string of allowed characters per position (scan-tokens.ts).
const keyPrefixes: readonly (readonly string[])[] = [
  ['s', 'k', '-'],
  ['g', 'h', 'pousr', '_'],
  ['g', 'i', 't', 'h', 'u', 'b', '_', 'p', 'a', 't', '_'],
  ['x', 'o', 'x', 'abposr', '-'],
  ['x', 'a', 'p', 'p', '-'],
  ['e', 'y', 'J'],
  ...['AKIA', 'ASIA', 'AGPA', 'AIDA', 'AROA', 'AIPA', 'ANPA', 'ANVA', 'ABIA', 'ACCA'].map((p) => [...p]),
];

function tokenHold(text: string): number {
  const n = text.length;
  let t = n;
  while (t > 0 && n - t < maxTokenHold && (charClass[text.charCodeAt(t - 1)]! & TOKEN) !== 0) t--;
  if (t === n) return n;
  if (n - t >= maxTokenHold) return t;
  // Glued to a letter of another script before it: never a token finding.
  if (t > 0 && isWordChar(text.charCodeAt(t - 1))) return n;
  // Candidate starts: the token's start and, for `key=value`, each point after a `=`.
  for (let c = t; c < n; c++) {
    if (c > t && text.charCodeAt(c - 1) !== 61) continue;
    let s = c;
    while (s < n && text.charCodeAt(s) === 61) s++;
    if (s < n && couldBeToken(text, s, n)) return c;
  }
  return n;
}

/**
 * A generic secret also covers password symbols and tokens glued to it (`Vq8#mT2z…`,
 * scan-tokens.ts): a trailing run of such characters holding a symbol may still be
 * (part of) one, when a context word is before it or in it.
 */
function gluedSecretHold(text: string): number {
  const n = text.length;
  let u = n;
  let symbol = false;
  while (u > 0 && n - u < maxTokenHold && isGluedSecretChar(text.charCodeAt(u - 1), false)) {
    if ((charClass[text.charCodeAt(u - 1)]! & TOKEN) === 0) symbol = true;
    u--;
  }
  // Without a symbol the run is a plain token: tokenHold decides.
  if (!symbol) return n;
  return secretContext.test(text.slice(Math.max(0, u - contextWindow), n)) ? u : n;
}

/** Whether the token part `text[s, n)` could still become a key, JWT or secret. */
function couldBeToken(text: string, s: number, n: number): boolean {
  for (const prefix of keyPrefixes) {
    let k = 0;
    while (k < prefix.length && s + k < n && prefix[k]!.includes(text[s + k]!)) k++;
    if (k === prefix.length || s + k === n) return true;
  }
  const before = text.slice(Math.max(0, s - contextWindow), s);
  return secretContext.test(before) || awsContext.test(before);
}

/**
 * A run of digit groups the next character could continue, as scan-numeric.ts reads
 * them: groups of digits or `(digits)`, separated by `-`, `.`, one space or ` - `,
 * with an optional leading `+`. Held from its first group (or `+`/`(`).
 */
function numericHold(text: string): number {
  const n = text.length;
  const last = text.charCodeAt(n - 1);
  const prev = n > 1 ? text.charCodeAt(n - 2) : 32;
  let j = n;
  if (last === 43 || last === 40) {
    // A lone `+` or `(` may start a run (not when glued to a word, like `f(`);
    // `(` may also open the next group after a separator, or follow a `+`.
    if (isWordChar(prev)) return last === 40 && isDigit(prev) ? countryCodeStart(text, n - 1) : n;
    j = n - 1;
    if (last === 40 && prev === 43 && !(n > 2 && isWordChar(text.charCodeAt(n - 3)))) j = n - 2;
  }
  // Strip one partial separator: `-`, `.`, ` `, ` -`, ` - `.
  let k = j;
  if (k >= 3 && text.charCodeAt(k - 1) === 32 && text.charCodeAt(k - 2) === 45 && text.charCodeAt(k - 3) === 32) k -= 3;
  else if (k >= 2 && text.charCodeAt(k - 1) === 45 && text.charCodeAt(k - 2) === 32) k -= 2;
  else if (k >= 1 && (text.charCodeAt(k - 1) === 45 || text.charCodeAt(k - 1) === 46 || text.charCodeAt(k - 1) === 32)) k -= 1;
  // Only a digit (or the `)` of a group) can be followed by a separator; otherwise
  // only a trailing `+`/`(` is held, as the start of a run of its own.
  const end = k > 0 ? text.charCodeAt(k - 1) : 32;
  const groupEnds = (end >= 48 && end <= 57) || (end === 41 && k > 1 && isDigit(text.charCodeAt(k - 2)));
  if (!groupEnds) return j;
  // Walk back over the run: digits, `(` `)` `+` `-` `.` and single spaces, at most
  // over the last 12 groups: the scanner cuts runs into 12-group pieces, so a run
  // still growing has fewer groups since its last cut.
  let s = k;
  let groups = 0;
  while (s > 0 && n - s < maxTokenHold) {
    const c = text.charCodeAt(s - 1);
    if (c >= 48 && c <= 57) {
      if (s === k || !isDigit(text.charCodeAt(s))) {
        if (groups === maxRunGroups) break;
        groups++;
      }
      s--;
    } else if (c === 40 || c === 41 || c === 43 || c === 45 || c === 46) s--;
    else if (c === 32 && s > 1 && text.charCodeAt(s - 2) !== 32) s--;
    else break;
  }
  // Leading separators are not part of the run.
  while (s < k && (text.charCodeAt(s) === 32 || text.charCodeAt(s) === 45 || text.charCodeAt(s) === 46)) s++;
  return s;
}

/**
 * `+1(` at the end: the `(` may open the group after a country code (`+1(415)555-2671`),
 * so the number is held from its `+`; `n` when the digits before `(` are no country code.
 */
function countryCodeStart(text: string, paren: number): number {
  let p = paren;
  while (p > 0 && paren - p < 4 && isDigit(text.charCodeAt(p - 1))) p--;
  if (p === 0 || text.charCodeAt(p - 1) !== 43) return text.length;
  const before = p > 1 ? text.charCodeAt(p - 2) : 32;
  return isWordChar(before) && !isGluedScript(before) ? text.length : p - 1;
}

const ibanFirstLetters = new Set(Object.keys(ibanLengths).flatMap((cc) => [cc.charCodeAt(0), cc.charCodeAt(0) + 32]));

/** An IBAN, compact or in groups of four, in either case, that may still go on (scan-tokens.ts `iban`). */
function ibanHold(text: string): number {
  const n = text.length;
  let r = n;
  while (r > 0 && n - r < maxIbanHold && ((charClass[text.charCodeAt(r - 1)]! & ALNUM) !== 0 || text.charCodeAt(r - 1) === 32)) r--;
  for (let p = r; p < n; p++) {
    if ((charClass[text.charCodeAt(p)]! & (ALNUM & ~DIGIT)) === 0) continue;
    // An IBAN starts a token: after a space, a `=`, or a character outside tokens.
    const before = p > 0 ? text.charCodeAt(p - 1) : 32;
    if (!(before === 32 || before === 61 || (charClass[before]! & TOKEN) === 0)) continue;
    if (ibanPrefix(text, p, n)) return p;
  }
  return n;
}

function ibanPrefix(text: string, p: number, n: number): boolean {
  if (p + 1 === n) return ibanFirstLetters.has(text.charCodeAt(p));
  const expected = ibanLengths[text.slice(p, p + 2).toUpperCase()];
  if (expected === undefined) return false;
  let compact = 2;
  for (let k = p + 2; k < n; k++) {
    const c = text.charCodeAt(k);
    const cls = charClass[c]!;
    if (cls & ALNUM) {
      if (compact < 4 && !(cls & DIGIT)) return false;
      if (++compact > expected) return false;
    } else if (c === 32) {
      if (compact % 4 !== 0) return false;
      if (k + 1 < n && (charClass[text.charCodeAt(k + 1)]! & ALNUM) === 0) return false;
    } else return false;
  }
  return true;
}

function isIpv6Char(c: number): boolean {
  return (c >= 48 && c <= 58) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102) || c === 46;
}

/**
 * A trailing run of hex digits, colons and dots with a colon in it, held from where
 * an address could start: the run's start when no word is glued before it (`Note:`
 * cannot start one), else just after a dot in it (`the.fe80::`). Without a colon the
 * run is a word or a number, which the e-mail and number rules hold.
 */
function ipv6Hold(text: string): number {
  const n = text.length;
  let s = n;
  while (s > 0 && n - s < maxIpv6Hold && isIpv6Char(text.charCodeAt(s - 1))) s--;
  if (s === n || text.indexOf(':', s) < 0) return n;
  if (n - s >= maxIpv6Hold || s === 0 || !isWordChar(text.charCodeAt(s - 1))) return s;
  const dot = text.indexOf('.', s);
  return dot >= 0 ? dot + 1 : n;
}

const pemMarker = '-----BEGIN ';
const pemLines = ['', 'RSA ', 'EC ', 'DSA ', 'OPENSSH ', 'ENCRYPTED ', 'PGP '].flatMap((kind) => [`${pemMarker}${kind}PRIVATE KEY-----`, `${pemMarker}${kind}PRIVATE KEY BLOCK-----`]);

function pemHold(text: string): number {
  const n = text.length;
  let hold = n;
  const begin = text.lastIndexOf(pemMarker);
  if (begin >= 0 && n - begin < maxPemHold) {
    const m = pemBegin.exec(text.slice(begin, begin + 64));
    if (m) {
      // A private key block is complete once its own END line has arrived.
      if (text.indexOf(`-----END ${m[1]}-----`, begin + m[0].length) < 0) hold = begin;
    } else {
      // A BEGIN line still arriving may yet name a private key.
      const head = text.slice(begin);
      if (pemLines.some((line) => line.length > head.length && line.startsWith(head))) hold = begin;
    }
  }
  // The start of the marker itself at the end: `-`, `--`, …, `-----BEGIN`.
  for (let k = Math.min(pemMarker.length - 1, n); k > 0; k--) {
    if (text.endsWith(pemMarker.slice(0, k))) return Math.min(hold, n - k);
  }
  return hold;
}
