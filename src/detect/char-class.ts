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

/**
 * Non-ASCII UTF-16 code units by whether they are a letter or digit (`\p{L}|\p{N}` on
 * the unit alone): 0 not yet asked, 1 no, 2 yes. Filled on first use of each unit, so a
 * text with non-Latin characters asks the Unicode regex once per distinct unit, not
 * once per character with a string made for it.
 */
const nonAsciiWord = new Uint8Array(65536);

/** A letter or digit from any script counts as a word character for boundaries. */
export function isWordChar(c: number): boolean {
  if (c < 128) return (charClass[c]! & WORD) !== 0;
  const known = nonAsciiWord[c]!;
  if (known !== 0) return known === 2;
  const word = /\p{L}|\p{N}/u.test(String.fromCharCode(c));
  nonAsciiWord[c] = word ? 2 : 1;
  return word;
}

/**
 * A character of a script written without spaces between words (Chinese, Japanese, Thai;
 * Korean particles): glued to an ASCII entity (`请联系jane@example.com`, `电话+86 138 0013 8000`)
 * without being part of it.
 */
export function isGluedScript(c: number): boolean {
  return (c >= 0x3040 && c <= 0x30ff) || (c >= 0x3400 && c <= 0x4dbf) || (c >= 0x4e00 && c <= 0x9fff) || (c >= 0xac00 && c <= 0xd7af) || (c >= 0x0e00 && c <= 0x0e7f) || (c >= 0xf900 && c <= 0xfaff);
}

export function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13 || c === 12 || c === 11 || c === 0xa0;
}
