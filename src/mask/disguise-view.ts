// A value can be written so that a person reads it and a detector does not: zero-width
// or other invisible characters inside it (`ann\u200b@example.com`), full-width or other
// compatibility forms (`ａｎｎ＠ｅｘａｍｐｌｅ．ｃｏｍ`, `１２３-４５-６７８９`, math letters),
// HTML character references (`ann&#64;example.com`, `&commat;`), percent-encoding
// (`%2B1%20415%20555%202671`), backslash escapes as source code and JSON write them
// (`ann\u0040example.com`, `\x40`), a non-ASCII dash or an ideographic full stop. The plan
// also runs detection over a *view* of such a text —
// invisible characters and combining marks removed, those forms written in ASCII — and
// maps what it finds back to the text's own offsets; findings over the text itself are
// kept too, so the view never loses one. Texts with none of these characters (a cheap
// native test) take no other path.

/** Could the text hold a disguised value? One linear, native scan. */
// Common typography (em dash, curly quotes, bullet, ellipsis: U+2014-2023, U+2025-2027) is
// left out: it disguises nothing, and answers are full of it.
const disguise = /[\u00a0\u00ad\u0300-\u036f\u034f\u061c\u180b-\u180f\u2000-\u2013\u2024\u2028-\u2bff\u3000-\u303f\ufe00-\ufe6f\ufeff\uff00-\uffef\ud835]|&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z]{2,8});|&[#a-zA-Z0-9]{0,8}$|%[2-7][0-9a-fA-F]|%[2-7]?$|\\(?:u[0-9a-fA-F]{4}|x[2-7][0-9a-fA-F]|(?:u[0-9a-fA-F]{0,3}|x[2-7]?)?$)/;

/**
 * Decimal digits of other scripts (Arabic-Indic `٤١١١`, Persian `۴۱۱۱`, Devanagari
 * `५३६`, Thai `๔๔` …: Unicode's Nd in the BMP outside ASCII and the full-width forms),
 * which NFKC leaves as they are: a card or phone number written in them is the same
 * number. Each script's 0-9 is one run from its zero (a test checks this table against
 * the runtime's Unicode tables).
 */
export const digitZeros: readonly number[] = [
  0x0660, 0x06f0, 0x07c0, 0x0966, 0x09e6, 0x0a66, 0x0ae6, 0x0b66, 0x0be6, 0x0c66, 0x0ce6, 0x0d66, 0x0de6, 0x0e50, 0x0ed0, 0x0f20, 0x1040, 0x1090, 0x17e0, 0x1810, 0x1946, 0x19d0, 0x1a80, 0x1a90, 0x1b50, 0x1bb0, 0x1c40, 0x1c50, 0xa620, 0xa8d0, 0xa900, 0xa9d0, 0xa9f0, 0xaa50, 0xabf0,
];
// Each such digit's value + 1, by code point (0: not one); all lie below U+ABFA.
const otherDigitValues = new Uint8Array(0xabfa);
for (const zero of digitZeros) for (let d = 0; d < 10; d++) otherDigitValues[zero + d] = d + 1;
// Runs of characters in their range, checked by table: a regular expression class of the
// 35 ranges scanned about five times slower than the rest of the view's test (bench:mask's
// masked copy fell from 229 to 133 MB/s with it).
const otherDigitRange = /[\u0660-\uabf9]+/g;

/** Does the text hold a decimal digit of another script? */
function hasOtherDigit(text: string): boolean {
  otherDigitRange.lastIndex = 0;
  while (otherDigitRange.exec(text) !== null) {
    const end = otherDigitRange.lastIndex;
    for (let i = end - 1; i >= 0 && text.charCodeAt(i) >= 0x660 && text.charCodeAt(i) < 0xabfa; i--) {
      if (otherDigitValues[text.charCodeAt(i)] !== 0) return true;
    }
  }
  return false;
}

/** The value of a decimal digit of another script, if `cp` is one. */
function otherDigit(cp: number): string | undefined {
  const value = cp < otherDigitValues.length ? otherDigitValues[cp]! : 0;
  return value === 0 ? undefined : String(value - 1);
}

/** Removed from the view: invisible format characters, variation selectors, combining marks. */
function isInvisible(c: number): boolean {
  return (
    c === 0x00ad || c === 0x034f || c === 0x061c || c === 0xfeff ||
    (c >= 0x0300 && c <= 0x036f) || (c >= 0x180b && c <= 0x180f) ||
    (c >= 0x200b && c <= 0x200f) || (c >= 0x202a && c <= 0x202e) || (c >= 0x2060 && c <= 0x206f) ||
    (c >= 0xfe00 && c <= 0xfe0f)
  );
}

/** Named character references a value may be written with, and what they stand for. */
const namedReferences: Readonly<Record<string, string>> = {
  commat: '@', period: '.', plus: '+', lpar: '(', rpar: ')', hyphen: '-', dash: '-', minus: '-', colon: ':',
  lowbar: '_', num: '#', amp: '&', nbsp: ' ', sol: '/', percnt: '%', excl: '!', dollar: '$', equals: '=',
};

export interface DisguiseView {
  readonly text: string;
  /** For each UTF-16 unit of the view: the offset in the original where what it stands for starts, and ends. */
  readonly starts: Int32Array;
  readonly ends: Int32Array;
}

/**
 * The view of `text`, or undefined when it has nothing disguised. With `openTail`, an
 * unterminated character reference at the very end (`ann&#6`: the rest may come in the
 * next piece of a stream) stands for one letter, so the word before it is held back.
 */
export function disguiseView(text: string, openTail = false): DisguiseView | undefined {
  if (!disguise.test(text) && !hasOtherDigit(text)) return undefined;
  let view = '';
  const starts: number[] = [];
  const ends: number[] = [];
  const put = (s: string, start: number, end: number) => {
    view += s;
    for (let k = 0; k < s.length; k++) {
      starts.push(start);
      ends.push(end);
    }
  };
  let changed = false;
  for (let i = 0; i < text.length; ) {
    const c = text.charCodeAt(i);
    if (c === 0x25) {
      // Percent-encoding, as in a URL's query (`phone=%2B1%20415%20555%202671`): printable ASCII only.
      const hex = /^%[2-7][0-9a-fA-F]/.test(text.slice(i, i + 3)) ? parseInt(text.slice(i + 1, i + 3), 16) : undefined;
      if (hex !== undefined && hex >= 0x20 && hex < 0x7f) {
        put(String.fromCharCode(hex), i, i + 3);
        i += 3;
        changed = true;
      } else if (openTail && /^%[2-7]?$/.test(text.slice(i))) {
        // `%4` at the end of a piece may be the start of `%40`: a letter, so the word before is held.
        put('a', i, text.length);
        i = text.length;
        changed = true;
      } else {
        put('%', i, i + 1);
        i++;
      }
      continue;
    }
    if (c === 0x5c) {
      const escape = backslashEscape(text, i, openTail);
      if (escape) {
        put(escape.value, i, escape.end);
        i = escape.end;
        changed = true;
      } else {
        put('\\', i, i + 1);
        i++;
      }
      continue;
    }
    if (c < 0x80 && c !== 0x26) {
      put(text[i]!, i, i + 1);
      i++;
      continue;
    }
    if (c === 0x26) {
      const ref = characterReference(text, i, openTail);
      if (ref) {
        put(ref.value, i, ref.end);
        i = ref.end;
        changed = true;
      } else {
        put('&', i, i + 1);
        i++;
      }
      continue;
    }
    const cp = text.codePointAt(i)!;
    const width = cp > 0xffff ? 2 : 1;
    if (isInvisible(cp)) {
      i += width;
      changed = true;
      continue;
    }
    const ascii = asciiForm(cp);
    if (ascii !== undefined) {
      put(ascii, i, i + width);
      changed = true;
    } else put(text.slice(i, i + width), i, i + width);
    i += width;
  }
  return changed ? { text: view, starts: Int32Array.from(starts), ends: Int32Array.from(ends) } : undefined;
}

/** The ASCII a character is a compatibility form of (full-width, math letters, dashes, dots), if any. */
function asciiForm(cp: number): string | undefined {
  if (cp === 0x3002 || cp === 0xff61) return '.'; // ideographic and half-width full stops
  if (cp >= 0x660 && cp < 0xac00) {
    const digit = otherDigit(cp);
    if (digit !== undefined) return digit;
  }
  if ((cp >= 0x2010 && cp <= 0x2013) || cp === 0x2212 || cp === 0xfe63 || cp === 0xff0d) return '-';
  if (cp < 0xa0 || (cp > 0xa0 && cp < 0x2000) || (cp >= 0x2014 && cp <= 0x2027 && cp !== 0x2024) || (cp >= 0x3040 && cp < 0xfe10)) return undefined;
  const nfkc = String.fromCodePoint(cp).normalize('NFKC');
  return nfkc.length > 0 && nfkc.length <= 4 && /^[\x20-\x7e]+$/.test(nfkc) ? nfkc : undefined;
}

/** A character reference at `i` (on `&`): what it stands for and where it ends; undefined if it is none. */
function characterReference(text: string, i: number, openTail: boolean): { value: string; end: number } | undefined {
  const m = /^&(?:#([0-9]{1,7})|#[xX]([0-9a-fA-F]{1,6})|([a-zA-Z]{2,8}));/.exec(text.slice(i, i + 12));
  if (m) {
    let value: string | undefined;
    if (m[3] !== undefined) value = namedReferences[m[3].toLowerCase()];
    else {
      const cp = m[1] !== undefined ? Number(m[1]) : parseInt(m[2]!, 16);
      if (cp > 0 && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff)) value = asciiForm(cp) ?? String.fromCodePoint(cp);
    }
    return value === undefined ? undefined : { value, end: i + m[0].length };
  }
  if (openTail && /^&[#a-zA-Z0-9]{0,8}$/.test(text.slice(i))) return { value: 'a', end: text.length };
  return undefined;
}

/**
 * A backslash escape at `i` (on `\`): `\uXXXX` (any character but a surrogate half or a
 * control) or `\xXX` (printable ASCII), as a model writes a value in source code or in
 * JSON shown as text. With `openTail`, an unfinished one at the very end (`\u00`) stands
 * for one letter, so the word before it is held.
 */
function backslashEscape(text: string, i: number, openTail: boolean): { value: string; end: number } | undefined {
  const m = /^\\(?:u([0-9a-fA-F]{4})|x([2-7][0-9a-fA-F]))/.exec(text.slice(i, i + 6));
  if (m) {
    const cp = parseInt(m[1] ?? m[2]!, 16);
    if (cp < 0x20 || cp === 0x7f || (cp >= 0xd800 && cp <= 0xdfff)) return undefined;
    return { value: asciiForm(cp) ?? String.fromCharCode(cp), end: i + m[0].length };
  }
  if (openTail && /^\\(?:u[0-9a-fA-F]{0,3}|x[2-7]?)?$/.test(text.slice(i))) return { value: 'a', end: text.length };
  return undefined;
}

/** The view offset of the first unit standing for text at or after `offset`. */
export function viewOffset(view: DisguiseView, offset: number): number {
  let lo = 0;
  let hi = view.starts.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (view.starts[mid]! < offset) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
