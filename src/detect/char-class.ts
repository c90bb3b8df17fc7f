// Character classes for the hand-written scanners (a lookup table: every scanner in
// this folder is a single forward pass, so detection is linear in the text length).

export const DIGIT = 1;
export const UPPER = 2;
export const LOWER = 4;
/** `_` and `-`: inside words, keys and tokens. */
export const JOINER = 8;
/** `.`, `/`, `+`, `=`, `~`: inside tokens (base64, paths), not inside words. */
export const TOKEN_PUNCT = 16;

export const ALNUM = DIGIT | UPPER | LOWER;
export const WORD = ALNUM | JOINER;
export const TOKEN = WORD | TOKEN_PUNCT;

export const charClass = new Uint8Array(65536);
for (let c = 48; c <= 57; c++) charClass[c] = DIGIT;
for (let c = 65; c <= 90; c++) charClass[c] = UPPER;
for (let c = 97; c <= 122; c++) charClass[c] = LOWER;
charClass[95] = JOINER; // _
charClass[45] = JOINER; // -
for (const ch of './+=~') charClass[ch.charCodeAt(0)] = TOKEN_PUNCT;

export function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** A letter or digit from any script counts as a word character for boundaries. */
export function isWordChar(c: number): boolean {
  return (charClass[c]! & WORD) !== 0 || (c > 127 && /\p{L}|\p{N}/u.test(String.fromCharCode(c)));
}

export function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13 || c === 12 || c === 11 || c === 0xa0;
}
