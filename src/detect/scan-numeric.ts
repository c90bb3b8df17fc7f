// Numeric entities: phone numbers, payment cards, US SSNs and IPv4 addresses.
// One pass finds "runs" of digit groups joined by single separators (`-`, `.`, one
// space, parentheses, a leading `+`); each window of consecutive groups is then
// checked against each format's layout and checksum. A window must not start or end
// inside a `-`/`.` chain (so a part of a longer dotted version or ISBN never matches),
// and the run must sit on word boundaries (a `+` number may be glued on either side to
// text written without spaces: `电话+86 138 0013 8000`, `+81 3-1234-5678です`).
//
// Formats: NANP `(415) 555-2671`, `(415)555-2671`, `415-555-2671`, `415.555.2671`, `415 555 2671`,
// `+1 415 555 2671`, `+1(415)555-2671`, `1-415-555-2671`; international `+44 20 7946 0958`,
// `+44 (0)20 7946 0958`, `+44(0)20 7946 0958`,
// `+4915112345678`, `0044 20 7946 0958` (E.164: 8-15 digits after `+`/`00`). Bare
// digit strings are phones only with `+`: order numbers look the same.
// Cards: 13-19 digits, contiguous or in 4-4-4-4(-3) / 4-6-5 / 4-6-4 groups with one
// separator kind, issuer prefix and Luhn. SSN: 3-2-4 with `-` or space, SSA ranges.

import type { Detection } from './types.js';
import { validSsn } from './validators.js';
import { isDigit, isGluedScript, isWordChar } from './char-class.js';

// The groups of the run being scanned, in fixed arrays reused by every run (the scan
// is synchronous and not re-entrant), so a run allocates nothing until it matches.
const maxGroups = 12;
const gStart = new Int32Array(maxGroups);
const gEnd = new Int32Array(maxGroups);
/** Separator before each group: one of the SEP_ kinds. */
const gSep = new Uint8Array(maxGroups);
const gParen = new Uint8Array(maxGroups);
const SEP_NONE = 0;
const SEP_DASH = 1;
const SEP_DOT = 2;
const SEP_SPACE = 3;
/** ` - `: counts as a dash for the formats, but does not chain like a bare `-`. */
const SEP_SPACED_DASH = 4;
// Separator kinds as a set of bits (` - ` and `-` are the same kind there).
const B_DASH = 1;
const B_DOT = 2;
const B_SPACE = 4;
const sepBit = Uint8Array.of(0, B_DASH, B_DOT, B_SPACE, B_DASH);
/** The digits of the window being classified (every format has at most 19). */
const dig = new Uint8Array(19);

export function scanNumeric(text: string, out: Detection[]): void {
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    const startsRun = isDigit(c) || ((c === 43 || c === 40) && i + 1 < n && isDigit(text.charCodeAt(i + 1)));
    if (!startsRun) {
      i++;
      continue;
    }
    if (c === 43 && i > 0 && isGluedScript(text.charCodeAt(i - 1))) {
      // `电话+86 138 0013 8000`: a `+` number glued to text written without spaces.
      i = scanRun(text, i, out);
      continue;
    }
    if (i > 0 && isWordChar(text.charCodeAt(i - 1))) {
      // Digits glued to a word (`abc123`, `v1.2`): skip the whole word.
      i++;
      while (i < n && isWordChar(text.charCodeAt(i))) i++;
      continue;
    }
    i = scanRun(text, i, out);
  }
}

/** Scans one run starting at `from` (a digit, or `+`/`(` before one); returns where it ends. */
export function scanRun(text: string, from: number, out: Detection[]): number {
  const n = text.length;
  let count = 0;
  let j = from;
  const plus = text.charCodeAt(j) === 43;
  if (plus) j++;
  let sep = SEP_NONE;
  for (;;) {
    let paren = false;
    const sepStart = j;
    if (text.charCodeAt(j) === 40) {
      paren = true;
      j++;
    }
    const start = j;
    while (j < n && isDigit(text.charCodeAt(j))) j++;
    if (j === start || (paren && text.charCodeAt(j) !== 41)) {
      j = sepStart;
      break;
    }
    if (paren) j++;
    gStart[count] = start;
    gEnd[count] = paren ? j - 1 : j;
    gSep[count] = sep;
    gParen[count] = paren ? 1 : 0;
    count++;
    if (count >= maxGroups) break;
    // Separator: one of `-` `.` or a single space, optionally with spaces around a dash.
    const s0 = j;
    const c = text.charCodeAt(j);
    let kind: number;
    if (paren && isDigit(c)) {
      // `(415)555-2671`, `+44 (0)20 7946 0958`: a group in parentheses needs no separator after it.
      kind = SEP_NONE;
    } else if (c === 40 && plus && count === 1 && isDigit(text.charCodeAt(j + 1))) {
      // `+1(415)555-2671`, `+44(0)20 7946 0958`: a group in parentheses right after the country code.
      kind = SEP_NONE;
    } else if (c === 45 || c === 46) {
      j++;
      kind = c === 45 ? SEP_DASH : SEP_DOT;
    } else if (c === 32) {
      j++;
      kind = SEP_SPACE;
      if (text.charCodeAt(j) === 45 && text.charCodeAt(j + 1) === 32) {
        j += 2;
        kind = SEP_SPACED_DASH;
      }
    } else break;
    const next = text.charCodeAt(j);
    if (!(isDigit(next) || (next === 40 && isDigit(text.charCodeAt(j + 1))))) {
      j = s0;
      break;
    }
    sep = kind;
  }
  if (count === 0) return from + 1;
  const last = count - 1;
  const runEnd = gParen[last] ? gEnd[last]! + 1 : gEnd[last]!;
  const tailGlued = runEnd < n && isWordChar(text.charCodeAt(runEnd));
  // A `+` number may end glued to text written without spaces (`+81 3-1234-5678です`).
  const plusGlued = plus && tailGlued && isGluedScript(text.charCodeAt(runEnd));

  let g = 0;
  while (g < count) {
    let found: Detection | undefined;
    for (let h = Math.min(last, g + 7); h >= g; h--) {
      if (h === last && tailGlued && !(g === 0 && plusGlued)) continue;
      // A window must not end or start inside a `-`/`.` chain.
      if (h < last && (gSep[h + 1] === SEP_DASH || gSep[h + 1] === SEP_DOT)) continue;
      if (g > 0 && (gSep[g] === SEP_DASH || gSep[g] === SEP_DOT)) continue;
      found = classify(text, g, h, plus && g === 0 ? from : undefined);
      if (found) {
        out.push(found);
        g = h + 1;
        break;
      }
    }
    if (!found) g++;
  }
  return runEnd > from ? runEnd : from + 1;
}

function classify(text: string, g: number, h: number, plusAt: number | undefined): Detection | undefined {
  const count = h - g + 1;
  let total = 0;
  for (let k = g; k <= h; k++) total += gEnd[k]! - gStart[k]!;
  // Every format below has at most 19 digits.
  if (total > 19) return undefined;
  if (plusAt === undefined) {
    // Cheap exits first: most numbers in text are short (years, counts, prices).
    if (count === 1 ? total < 13 : count !== 4 && total < 9) return undefined;
  }
  let seps = 0;
  let parens = 0;
  let d = 0;
  for (let k = g; k <= h; k++) {
    if (k > g) seps |= sepBit[gSep[k]!]!;
    if (gParen[k]) parens++;
    for (let p = gStart[k]!; p < gEnd[k]!; p++) dig[d++] = text.charCodeAt(p) - 48;
  }
  /** The one separator kind used, or 0 when none or several. */
  const oneSep = (seps & (seps - 1)) === 0 ? seps : 0;
  const severalSeps = (seps & (seps - 1)) !== 0;
  const start = plusAt ?? (gParen[g] ? gStart[g]! - 1 : gStart[g]!);
  const end = gParen[h] ? gEnd[h]! + 1 : gEnd[h]!;

  if (plusAt !== undefined) {
    // E.164 (ITU-T E.164 §6): country code + subscriber number, at most 15 digits.
    if (total < 8 || total > 15 || parens > 1) return undefined;
    if (dig[0] === 1 && !(total === 11 && nanp(1, total))) return undefined;
    if (dig[0] === 0) return undefined;
    return { type: 'PHONE', start, end, score: 0.85 };
  }

  if (parens === 0 && count === 4 && oneSep === B_DOT && len(g) <= 3 && len(g + 1) <= 3 && len(g + 2) <= 3 && len(h) <= 3) {
    for (let k = g, at = 0; k <= h; k++) {
      const l = len(k);
      let value = 0;
      for (let p = 0; p < l; p++) value = value * 10 + dig[at + p]!;
      if (value > 255 || (l > 1 && dig[at] === 0)) return undefined;
      at += l;
    }
    return { type: 'IP_ADDRESS', start, end, score: 0.8 };
  }

  if (parens === 0 && count === 3 && len(g) === 3 && len(g + 1) === 2 && len(h) === 4 && (oneSep === B_DASH || oneSep === B_SPACE)) {
    const area = dig[0]! * 100 + dig[1]! * 10 + dig[2]!;
    const group = dig[3]! * 10 + dig[4]!;
    const serial = dig[5]! * 1000 + dig[6]! * 100 + dig[7]! * 10 + dig[8]!;
    if (validSsn(area, group, serial)) return { type: 'US_SSN', start, end, score: oneSep === B_DASH ? 0.85 : 0.6 };
    return undefined;
  }

  if (parens === 0 && total >= 13 && total <= 19 && (count === 1 || oneSep === B_SPACE || oneSep === B_DASH) && cardLayout(g, h)) {
    if (cardIssuerOf(total) && luhnOf(total)) return { type: 'CREDIT_CARD', start, end, score: count === 1 ? 0.8 : 0.9 };
    return undefined;
  }

  // `00` international prefix, as written in much of Europe.
  if (g === 0 && parens === 0 && len(g) === 4 && dig[0] === 0 && dig[1] === 0 && count >= 3 && total >= 10 && total <= 17 && dig[2] !== 0) {
    return { type: 'PHONE', start, end, score: 0.7 };
  }

  // NANP: [1] NXX NXX XXXX, grouped as 3-3-4 (area optionally in parentheses).
  let first = g;
  let skip = 0;
  if (count === 4 && len(g) === 1 && dig[0] === 1) {
    first = g + 1;
    skip = 1;
  }
  if (h - first === 2 && len(first) === 3 && len(first + 1) === 3 && len(h) === 4 && nanp(skip, total)) {
    const areaParen = gParen[h - 2] === 1;
    if (parens > (areaParen ? 1 : 0)) return undefined;
    if (!areaParen && severalSeps) return undefined;
    return { type: 'PHONE', start, end, score: 0.8 };
  }
  return undefined;
}

/** `cardIssuer` (validators.ts) over `dig[0…total)`: Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay. */
function cardIssuerOf(n: number): boolean {
  const p2 = dig[0]! * 10 + dig[1]!;
  const p3 = p2 * 10 + dig[2]!;
  const p4 = p3 * 10 + dig[3]!;
  if (dig[0] === 4 && (n === 13 || n === 16 || n === 19)) return true;
  if (n === 16 && ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720))) return true;
  if (n === 15 && (p2 === 34 || p2 === 37)) return true;
  if (n >= 16 && n <= 19 && (p4 === 6011 || p2 === 65 || (p3 >= 644 && p3 <= 649))) return true;
  if (n >= 16 && n <= 19 && p4 >= 3528 && p4 <= 3589) return true;
  if (n >= 14 && n <= 19 && ((p3 >= 300 && p3 <= 305) || p2 === 36 || p2 === 38 || p2 === 39)) return true;
  return n >= 16 && n <= 19 && p2 === 62;
}

/** `luhn` (validators.ts) over `dig[0…total)`. */
function luhnOf(n: number): boolean {
  let sum = 0;
  let double = false;
  for (let i = n - 1; i >= 0; i--) {
    let d = dig[i]!;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return n > 1 && sum % 10 === 0;
}

/** NANP number plan over `dig[at…total)`: area and exchange codes start with 2-9; N11 area codes are services. */
function nanp(at: number, total: number): boolean {
  if (total - at !== 10) return false;
  if (dig[at]! < 2 || dig[at + 3]! < 2) return false;
  if (dig[at + 1] === 1 && dig[at + 2] === 1) return false;
  return true;
}

/** Groups `g…h` laid out as a card number is printed. */
function cardLayout(g: number, h: number): boolean {
  if (g === h) return true;
  const count = h - g + 1;
  if (count < 3 || count > 5) return false;
  if (len(g) !== 4) return false;
  if (count === 3) return len(g + 1) === 6 && (len(g + 2) === 5 || len(g + 2) === 4);
  if (len(g + 1) !== 4 || len(g + 2) !== 4) return false;
  const l3 = len(g + 3);
  if (count === 4) return l3 === 4 || l3 === 1 || l3 === 3 || l3 === 2;
  return l3 === 4 && len(g + 4) === 3;
}

/** Digits in group `k`. */
function len(k: number): number {
  return gEnd[k]! - gStart[k]!;
}
