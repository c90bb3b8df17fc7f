// The numeric and token scanners driven by one pass over the text: every entity they
// find contains a digit (phones, cards, SSNs, IPv4, IBANs, keys, JWTs, secrets), so
// the pass jumps from digit to digit, and for each one not yet covered
// - checks the token around it (scan-tokens.ts) once, and
// - starts a numeric run there (scan-numeric.ts) when the digit (or a `+`/`(` just
//   before it) is not glued to a word.
// Text without digits costs one native character-class scan. Still a single forward
// pass: each token is expanded once and each run is scanned once.

import type { Detection } from './types.js';
import { charClass, isWordChar, TOKEN } from './char-class.js';
import { scanRun } from './scan-numeric.js';
import { token } from './scan-tokens.js';

/** A single-character-class search: the engine's native scan, no backtracking possible. */
const nextDigit = /[0-9]/g;

/**
 * Scans `text` for digit-driven entities, starting runs and tokens only at digits in
 * `[from, to)` (the scans may look past both ends). The detector passes the stretches
 * between PEM blocks: a finding inside a key block would lose to the block anyway.
 */
export function scanDigitTokens(text: string, out: Detection[], from = 0, to = text.length): void {
  const n = text.length;
  let tokenEnd = from;
  let numericEnd = from;
  let i = from;
  for (;;) {
    // `test` rather than `exec`: no match array is allocated per digit.
    nextDigit.lastIndex = i;
    if (!nextDigit.test(text)) return;
    i = nextDigit.lastIndex - 1;
    if (i >= to) return;
    if (i >= tokenEnd) tokenEnd = tokenAround(text, i, tokenEnd, out);
    if (i >= numericEnd) {
      const prev = i > 0 ? text.charCodeAt(i - 1) : 32;
      const prev2 = i > 1 ? text.charCodeAt(i - 2) : 32;
      if ((prev === 43 || prev === 40) && !isWordChar(prev2)) numericEnd = scanRun(text, i - 1, out);
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
  if (!glued && e - s >= 4) token(text, s, e, out);
  return e;
}
