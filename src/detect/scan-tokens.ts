// Secrets and account numbers that are single tokens: vendor API keys by their
// documented prefixes, JWTs (RFC 7519 compact form: three base64url parts, header and
// payload JSON objects, so both start with `eyJ`), IBANs (compact or printed in groups
// of four, mod-97), AWS secret keys and generic high-entropy tokens (these two only
// next to a context word such as "secret" or "token", which keeps hashes, UUIDs and
// ids out).
//
// One pass splits the text into maximal runs of token characters
// (`A-Z a-z 0-9 _ - . / + = ~`); `key=value` splits at the `=`.

import type { Detection } from './types.js';
import { ALNUM, charClass, DIGIT, isWordChar, LOWER, TOKEN, UPPER } from './char-class.js';
import { entropy, ibanLength, mod97Codes } from './validators.js';

/** How far before a token its context word may be. */
export const contextWindow = 48;
export const secretContext = /(?:secret|token|passw(?:or)?d|pwd|api[_-]?key|apikey|access[_-]?key|private[_-]?key|credential|bearer|auth|client[_-]?secret|\bkey\b|key\s*[:=])/i;
export const awsContext = /aws|secret/i;

export function scanTokens(text: string, out: Detection[]): void {
  const n = text.length;
  let i = 0;
  while (i < n) {
    if ((charClass[text.charCodeAt(i)]! & TOKEN) === 0) {
      i++;
      continue;
    }
    let j = i;
    let classes = 0;
    while (j < n) {
      const k = charClass[text.charCodeAt(j)]!;
      if ((k & TOKEN) === 0) break;
      classes |= k;
      j++;
    }
    // Tokens glued to non-ASCII letters belong to a longer word.
    const glued = (i > 0 && isWordChar(text.charCodeAt(i - 1))) || (j < n && isWordChar(text.charCodeAt(j)));
    if (!glued && j - i >= 4 && (classes & DIGIT) !== 0) token(text, i, j, out);
    i = j;
  }
}

/** Checks one maximal token `[start, end)` that contains a digit. */
export function token(text: string, start: number, end: number, out: Detection[]): void {
  // `key=value`: the value is the candidate (base64 padding `==` stays at the end).
  for (let k = end - 2; k > start; k--) {
    if (text.charCodeAt(k) === 61 && text.charCodeAt(k + 1) !== 61 && text.charCodeAt(k - 1) !== 61) {
      start = k + 1;
      break;
    }
  }
  while (start < end && text.charCodeAt(start) === 61) start++;
  // Trailing sentence punctuation is not part of a token.
  while (end > start && isTrailingPunct(text.charCodeAt(end - 1))) end--;
  const len = end - start;
  if (len < 4) return;
  const c0 = text.charCodeAt(start);

  if (((c0 >= 65 && c0 <= 90) || (c0 >= 97 && c0 <= 122)) && iban(text, start, out)) return;
  if (len < 16) return;
  // Vendor prefixes start with one of `s g x A e`; any other token goes straight to
  // the generic check without cutting a head string out of the text.
  if (c0 === 115 || c0 === 103 || c0 === 120 || c0 === 65 || c0 === 101) {
    // Every prefix below is at most 12 characters and the token has 16 or more, so
    // the prefixes are compared in place (no head string, no regex).
    if (c0 === 115) {
      if (text.startsWith('sk-ant-', start)) return void keyLike(text, start, end, 7, 32, 'ANTHROPIC_KEY', 0.99, out);
      if (text.startsWith('sk-', start)) return void keyLike(text, start, end, openAiPrefix(text, start), 20, 'OPENAI_KEY', 0.95, out);
    } else if (c0 === 103) {
      // Gatehouse's own API keys (ghk_<16 id>_<43 secret>): one pasted in a URL or a
      // prompt must not be recorded as sent.
      if (text.startsWith('ghk_', start)) {
        if (gatehouseKey(text, start)) out.push({ type: 'GATEHOUSE_KEY', start, end: start + 64, score: 0.99 });
        return;
      }
      // gh[pousr]_
      const c2 = text.charCodeAt(start + 2);
      if (text.charCodeAt(start + 1) === 104 && text.charCodeAt(start + 3) === 95 && (c2 === 112 || c2 === 111 || c2 === 117 || c2 === 115 || c2 === 114)) {
        return void keyLike(text, start, end, 4, 36, 'GITHUB_TOKEN', 0.99, out);
      }
      if (text.startsWith('github_pat_', start)) return void keyLike(text, start, end, 11, 40, 'GITHUB_TOKEN', 0.99, out);
    } else if (c0 === 120) {
      // xox[abposr]- or xapp-
      const c3 = text.charCodeAt(start + 3);
      const xox = text.startsWith('xox', start) && text.charCodeAt(start + 4) === 45 && (c3 === 97 || c3 === 98 || c3 === 112 || c3 === 111 || c3 === 115 || c3 === 114);
      if (xox || text.startsWith('xapp-', start)) return void keyLike(text, start, end, 5, 10, 'SLACK_TOKEN', 0.95, out);
    } else if (c0 === 65) {
      if (awsKeyPrefixes.has(text.substr(start, 4))) {
        if (len === 20 && allIn(text, start, end, UPPER | DIGIT)) out.push({ type: 'AWS_ACCESS_KEY', start, end, score: 0.95 });
        return;
      }
    } else if (text.startsWith('eyJ', start)) {
      if (jwt(text.slice(start, end))) out.push({ type: 'JWT', start, end, score: 0.95 });
      return;
    }
  }
  secretLike(text, start, end, out);
}

/** AWS access key id prefixes (IAM unique id prefixes). */
const awsKeyPrefixes = new Set(['AKIA', 'ASIA', 'AGPA', 'AIDA', 'AROA', 'AIPA', 'ANPA', 'ANVA', 'ABIA', 'ACCA']);

/** Length of an OpenAI key's prefix at `start` (`sk-` or `sk-proj-`, `sk-svcacct-`, `sk-admin-`, `sk-None-`). */
function openAiPrefix(text: string, start: number): number {
  for (const p of openAiPrefixes) if (text.startsWith(p, start)) return p.length;
  return 3;
}
const openAiPrefixes = ['sk-proj-', 'sk-svcacct-', 'sk-admin-', 'sk-None-'];

/** `<prefix><body>` where the body is `[A-Za-z0-9_-]` of at least `minBody` characters with a digit. */
function keyLike(text: string, start: number, end: number, prefix: number, minBody: number, type: string, score: number, out: Detection[]): void {
  let k = start + prefix;
  let digits = 0;
  let letters = 0;
  for (; k < end; k++) {
    const cls = charClass[text.charCodeAt(k)]!;
    if ((cls & (ALNUM | 8)) === 0) break;
    if (cls & DIGIT) digits++;
    else if (cls & (UPPER | LOWER)) letters++;
  }
  if (k - start - prefix >= minBody && digits > 0 && letters > 0) out.push({ type, start, end: k, score });
}

/**
 * `ghk_<16 [0-9a-z]>_<43 base64url>` at `start`, read from the text itself: a secret may
 * end in `-`, which the token's trailing-punctuation trim would have cut.
 */
function gatehouseKey(text: string, start: number): boolean {
  if (start + 64 > text.length || text.charCodeAt(start + 20) !== 95) return false;
  for (let k = start + 4; k < start + 20; k++) if ((charClass[text.charCodeAt(k)]! & (DIGIT | LOWER)) === 0) return false;
  for (let k = start + 21; k < start + 64; k++) {
    const c = text.charCodeAt(k);
    if ((charClass[c]! & ALNUM) === 0 && c !== 45 && c !== 95) return false;
  }
  const after = text.charCodeAt(start + 64);
  return Number.isNaN(after) || ((charClass[after]! & ALNUM) === 0 && after !== 45 && after !== 95);
}

function jwt(value: string): boolean {
  const parts = value.split('.');
  if (parts.length !== 3 || parts[0]!.length < 10 || parts[1]!.length < 10 || !parts[1]!.startsWith('eyJ')) return false;
  return parts.every((p) => /^[A-Za-z0-9_-]*$/.test(p));
}

function secretLike(text: string, start: number, end: number, out: Detection[]): void {
  const len = end - start;
  if (len < 20 || len > 512) return;
  // One loop collects what the checks below need, so no value string is cut out of
  // the text unless every cheap check passes.
  let classes = 0;
  let notHex = false; // a character outside `0-9 a-f A-F -`
  let notBase64 = false; // a character outside `A-Z a-z 0-9 / +`
  let pathish = false; // a `/` or `.`
  let notLowerPath = false; // a character outside `a-z 0-9 . _ / -`
  for (let k = start; k < end; k++) {
    const c = text.charCodeAt(k);
    const cls = charClass[c]!;
    classes |= cls;
    if (cls & DIGIT) continue;
    if (cls & LOWER) {
      if (c > 102) notHex = true;
      continue;
    }
    if (cls & UPPER) {
      notLowerPath = true;
      if (c > 70) notHex = true;
      continue;
    }
    // `_ - . / + = ~`
    if (c !== 45) notHex = true;
    if (c !== 47 && c !== 43) notBase64 = true;
    if (c === 47 || c === 46) pathish = true;
    else if (c === 43 || c === 61 || c === 126) notLowerPath = true;
  }
  const mixedCase = (classes & UPPER) !== 0 && (classes & LOWER) !== 0;
  // AWS secret access key: 40 characters of base64 alphabet, mixed case and digits.
  if (len === 40 && mixedCase && (classes & DIGIT) !== 0 && !notBase64 && awsContext.test(contextBefore(text, start))) {
    out.push({ type: 'AWS_SECRET_KEY', start, end, score: 0.9 });
    return;
  }
  if ((classes & (UPPER | LOWER)) === 0) return;
  // Hex strings (hashes, git SHAs) and UUIDs are ids, not secrets.
  if (!notHex) return;
  // Mixed case, or long enough to not be a word with a number.
  if (!mixedCase && len < 32) return;
  if (!notLowerPath && pathish) return;
  if (entropy(text, start, end) < 3.5) return;
  if (!secretContext.test(contextBefore(text, start))) return;
  // A password often holds symbols (`Vq8#mT2z…`): the token found is then only part of
  // it. The finding covers the symbols and tokens glued to it on both sides, so no
  // piece of the secret is left in clear beside the label.
  let s = start;
  while (s > 0 && start - s < maxGlued && isGluedSecretChar(text.charCodeAt(s - 1), true)) s--;
  let e = end;
  while (e < text.length && e - end < maxGlued && isGluedSecretChar(text.charCodeAt(e), false)) e++;
  // Sentence punctuation after the secret is not part of it.
  while (e > end && isSentenceEnd(text.charCodeAt(e - 1))) e--;
  out.push({ type: 'SECRET', start: s, end: e, score: 0.75 });
}

/**
 * Right before a password run: a password word, then at most a quote, `:`/`=`/`:=`/`=>`
 * or `is`/`was`, and an opening quote (`password: `, `"db_password": "`, `pwd=`,
 * `the password is `). Every match also matches `secretContext`, which is what the
 * stream's hold-back checks (hold-back.ts, gluedSecretHold).
 */
const passwordLead = /(?:passw(?:or)?d|pwd|secret)[A-Za-z0-9_-]{0,24}["'`]?\s{0,4}(?:[:=]|:=|=>|is|was)?\s{0,4}["'`]?$/i;

/**
 * A password too short for the generic check (`password: Vq8#mT2z!pL9@xR4`): the run
 * of token characters and password symbols around the token `[start, end)`, when it
 * holds a letter, a digit and a symbol other than `:`, is 8 to `maxGlued` characters
 * long, and follows a password word (`passwordLead`). Returns whether it was reported.
 */
export function passwordRun(text: string, start: number, end: number, out: Detection[]): boolean {
  let s = start;
  while (s > 0 && start - s <= maxGlued && isGluedSecretChar(text.charCodeAt(s - 1), true)) s--;
  let e = end;
  while (e < text.length && e - s <= maxGlued && isGluedSecretChar(text.charCodeAt(e), false)) e++;
  while (e > s && isSentenceEnd(text.charCodeAt(e - 1))) e--;
  const len = e - s;
  if (len < 8 || len > maxGlued) return false;
  let classes = 0;
  let symbol = false;
  for (let k = s; k < e; k++) {
    const c = text.charCodeAt(k);
    const cls = charClass[c]!;
    classes |= cls;
    if ((cls & TOKEN) === 0 && c !== 58) symbol = true;
  }
  if (!symbol || (classes & DIGIT) === 0 || (classes & (UPPER | LOWER)) === 0) return false;
  if (!passwordLead.test(contextBefore(text, s))) return false;
  out.push({ type: 'SECRET', start: s, end: e, score: 0.7 });
  return true;
}

/** A password key with its `=` or `:` right before the value: `password=`, `"pwd": "`, `DB_PASSWORD: '`. */
const passwordKey = /(?:passw(?:or)?d|pwd)[A-Za-z0-9_-]{0,24}["'`]?\s{0,2}[:=]\s{0,2}["'`]?$/i;

/**
 * The value of a password key (`password=hunter2`, `?user=root&password=s3cret99`):
 * 6 to `maxGlued` token characters with a letter and a digit, after `passwordKey`,
 * within the token `[start, end)` (after its last `=`) or as the whole token. A value
 * with `.` or `/` is a reference or a path (`password=settings.DB_PASS2`), not a secret.
 */
export function keyValuePassword(text: string, start: number, end: number, out: Detection[]): boolean {
  for (let k = end - 1; k > start; k--) {
    if (text.charCodeAt(k) === 61) {
      start = k + 1;
      break;
    }
  }
  while (end > start && isTrailingPunct(text.charCodeAt(end - 1))) end--;
  const len = end - start;
  if (len < 6 || len > maxGlued) return false;
  let classes = 0;
  for (let k = start; k < end; k++) {
    const c = text.charCodeAt(k);
    if (c === 46 || c === 47) return false;
    classes |= charClass[c]!;
  }
  if ((classes & DIGIT) === 0 || (classes & (UPPER | LOWER)) === 0) return false;
  if (!passwordKey.test(contextBefore(text, start))) return false;
  out.push({ type: 'SECRET', start, end, score: 0.7 });
  return true;
}

/** How far a generic secret is extended over glued characters on each side. */
export const maxGlued = 128;

/**
 * A character a password may hold next to a token: token characters and the symbols
 * of a password. Not spaces, quotes, brackets, `,` or `;`; going backwards, not `=` or
 * `:` either (`password=…`, `secret: …` end there).
 */
export function isGluedSecretChar(c: number, backwards: boolean): boolean {
  if (backwards && (c === 61 || c === 58)) return false;
  if ((charClass[c]! & TOKEN) !== 0) return true;
  // ! # $ % & * ? @ ^ | \ :
  return c === 33 || c === 35 || c === 36 || c === 37 || c === 38 || c === 42 || c === 63 || c === 64 || c === 94 || c === 124 || c === 92 || c === 58;
}

function contextBefore(text: string, start: number): string {
  return text.slice(Math.max(0, start - contextWindow), start);
}

/** Compact `DE89370400440532013000` or grouped `DE89 3704 0044 0532 0130 00`, in either case (`de89 …`). */
function iban(text: string, start: number, out: Detection[]): boolean {
  const expected = ibanLength(text.charCodeAt(start), text.charCodeAt(start + 1));
  if (expected === 0) return false;
  const c2 = text.charCodeAt(start + 2);
  const c3 = text.charCodeAt(start + 3);
  if (!(c2 >= 48 && c2 <= 57 && c3 >= 48 && c3 <= 57)) return false;
  // The compact form's characters go into a reused array, not a string built per character.
  let count = 0;
  let k = start;
  let lastEnd = start;
  while (k < text.length && count < expected) {
    const c = text.charCodeAt(k);
    if ((c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122)) {
      ibanChars[count++] = c >= 97 ? c - 32 : c;
      k++;
      lastEnd = k;
    } else if (c === 32 && count % 4 === 0 && k + 1 < text.length && (charClass[text.charCodeAt(k + 1)]! & ALNUM)) {
      k++;
    } else break;
  }
  if (count !== expected) return false;
  if (lastEnd < text.length && isWordChar(text.charCodeAt(lastEnd))) return false;
  if (!mod97Codes(ibanChars, count)) return false;
  out.push({ type: 'IBAN', start, end: lastEnd, score: 0.95 });
  return true;
}

/** The compact IBAN being checked (at most 34 characters). */
const ibanChars = new Uint8Array(34);

function allIn(text: string, start: number, end: number, mask: number): boolean {
  for (let k = start; k < end; k++) if ((charClass[text.charCodeAt(k)]! & mask) === 0) return false;
  return true;
}

function isTrailingPunct(c: number): boolean {
  return c === 46 || c === 126 || c === 45;
}

/** `.` `!` `?` `:` ending a sentence or clause after a secret. */
function isSentenceEnd(c: number): boolean {
  return c === 46 || c === 33 || c === 63 || c === 58;
}
