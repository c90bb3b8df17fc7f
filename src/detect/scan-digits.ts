// The numeric and token scanners driven by one pass over the text: every entity they
// find contains a digit (phones, cards, SSNs, IPv4, IBANs, keys, JWTs, secrets), so
// the pass jumps from digit to digit, and for each one not yet covered
// - checks the token around it (scan-tokens.ts) once, and
// - starts a numeric run there (scan-numeric.ts) when the digit (or a `+`/`(` just
//   before it) is not glued to a word.
// Text without digits costs one native character-class scan. Still a single forward
// pass: each token is expanded once and each run is scanned once. For the detector the
// same pass stops at `@` and `:` too, for the e-mail and IPv6 checks (scan-misc.ts).

import type { Detection } from './types.js';
import { charClass, isGluedScript, isWordChar, TOKEN } from './char-class.js';
import { scanRun } from './scan-numeric.js';
import { isGluedSecretChar, keyValuePassword, passwordRun, token } from './scan-tokens.js';
import { emailAt, encodedEmailAt, ipv6At } from './scan-misc.js';
import { urlPasswordAt } from './scan-url-credentials.js';

/** A single-character-class search: the engine's native scan, no backtracking possible. */
const nextDigit = /[0-9]/g;
/** The same, for the detector's one pass: digits, and the anchors of e-mail addresses and IPv6. */
const nextAnchor = /[0-9@:]/g;

/** Where the next `@` and `:` may start an address (see `scanAnchors`). */
export interface AnchorState {
  email: number;
  ipv6: number;
}

/**
 * Scans `text` for digit-driven entities, starting runs and tokens only at digits in
 * `[from, to)` (the scans may look past both ends). The detector passes the stretches
 * between PEM blocks: a finding inside a key block would lose to the block anyway.
 */
export function scanDigitTokens(text: string, out: Detection[], from = 0, to = text.length): void {
  scan(text, out, from, to, undefined);
}

/**
 * `scanDigitTokens`, and in the same pass e-mail addresses from each `@` and IPv6
 * addresses from each `:` in `[from, to)` (`state` carries where the next may start
 * from one stretch to the next), instead of a search of the whole text for each.
 * Neither anchor can sit inside what the digit scan skips (tokens, digit runs and
 * words hold no `@` or `:`), and one inside a PEM block would find an address inside
 * the block (the block's marker lines stop both scans), which loses to the block.
 */
export function scanAnchors(text: string, out: Detection[], from: number, to: number, state: AnchorState): void {
  scan(text, out, from, to, state);
}

function scan(text: string, out: Detection[], from: number, to: number, anchors: AnchorState | undefined): void {
  const re = anchors === undefined ? nextDigit : nextAnchor;
  const n = text.length;
  let tokenEnd = from;
  let numericEnd = from;
  let i = from;
  for (;;) {
    // `test` rather than `exec`: no match array is allocated per digit.
    re.lastIndex = i;
    if (!re.test(text)) return;
    i = re.lastIndex - 1;
    if (i >= to) return;
    if (anchors !== undefined) {
      const c = text.charCodeAt(i);
      if (c === 64) {
        // `scheme://user:password@host`: the password is the finding, not an address.
        if (urlPasswordAt(text, i, out)) anchors.email = i + 1;
        else if (i >= anchors.email) anchors.email = emailAt(text, i, out);
        i++;
        continue;
      }
      if (c === 58) {
        if (i >= anchors.ipv6) anchors.ipv6 = ipv6At(text, i, out);
        i++;
        continue;
      }
      if (c === 52 && i > 0 && text.charCodeAt(i - 1) === 37 && text.charCodeAt(i + 1) === 48) encodedEmailAt(text, i - 1, out);
    }
    if (i >= tokenEnd) tokenEnd = tokenAround(text, i, tokenEnd, out);
    if (i >= numericEnd) {
      const prev = i > 0 ? text.charCodeAt(i - 1) : 32;
      const prev2 = i > 1 ? text.charCodeAt(i - 2) : 32;
      if ((prev === 43 || prev === 40) && !isWordChar(prev2)) numericEnd = scanRun(text, i - 1, out);
      // `电话+86 138 0013 8000`: a `+` number glued to text written without spaces.
      else if (prev === 43 && isGluedScript(prev2)) numericEnd = scanRun(text, i - 1, out);
      else if (!isWordChar(prev)) numericEnd = scanRun(text, i, out);
      else {
        // Digits glued to a word (`abc123`, `v1.2`): not a number; skip the word.
        let k = i;
        while (k < n && isWordChar(text.charCodeAt(k))) k++;
        numericEnd = k;
      }
      // A run's last group may be the start of a longer token (`2671abc…`).
      if (numericEnd > tokenEnd && numericEnd - 1 >= tokenEnd && (charClass[text.charCodeAt(numericEnd - 1)]! & TOKEN) !== 0) {
        tokenEnd = tokenAround(text, numericEnd - 1, tokenEnd, out);
      }
      i = Math.max(i + 1, numericEnd);
    } else {
      // Inside both a checked token and a scanned run: nothing starts before either ends.
      i = Math.max(i + 1, Math.min(tokenEnd, numericEnd));
    }
  }
}

/** Expands the token around position `at` (not before `floor`), checks it, returns its end. */
function tokenAround(text: string, at: number, floor: number, out: Detection[]): number {
  let s = at;
  while (s > floor && (charClass[text.charCodeAt(s - 1)]! & TOKEN) !== 0) s--;
  let e = at;
  while (e < text.length && (charClass[text.charCodeAt(e)]! & TOKEN) !== 0) e++;
  if (e === at) return at + 1;
  const glued = (s > 0 && isWordChar(text.charCodeAt(s - 1))) || (e < text.length && isWordChar(text.charCodeAt(e)));
  if (glued) return e;
  // A token beside a password symbol may be a piece of a short password (`Vq8#mT2z!`).
  if ((isPasswordSymbol(text, s - 1) || isPasswordSymbol(text, e)) && passwordRun(text, s, e, out)) return e;
  if (keyValuePassword(text, s, e, out)) return e;
  if (e - s >= 4) token(text, s, e, out);
  return e;
}

/** A character a password holds that is not a token character (`#`, `!`, `@` …; not `:`). */
function isPasswordSymbol(text: string, at: number): boolean {
  if (at < 0 || at >= text.length) return false;
  const c = text.charCodeAt(at);
  return c !== 58 && (charClass[c]! & TOKEN) === 0 && isGluedSecretChar(c, false);
}
