// Numeric entities: phone numbers, payment cards, US SSNs and IPv4 addresses.
// One pass finds "runs" of digit groups joined by single separators (`-`, `.`, one
// space, parentheses, a leading `+`); each window of consecutive groups is then
// checked against each format's layout and checksum. A window must not start or end
// inside a `-`/`.` chain (so a part of a longer dotted version or ISBN never matches),
// and the run must sit on word boundaries.
//
// Formats: NANP `(415) 555-2671`, `415-555-2671`, `415.555.2671`, `415 555 2671`,
// `+1 415 555 2671`, `1-415-555-2671`; international `+44 20 7946 0958`,
// `+4915112345678`, `0044 20 7946 0958` (E.164: 8-15 digits after `+`/`00`). Bare
// digit strings are phones only with `+`: order numbers look the same.
// Cards: 13-19 digits, contiguous or in 4-4-4-4(-3) / 4-6-5 / 4-6-4 groups with one
// separator kind, issuer prefix and Luhn. SSN: 3-2-4 with `-` or space, SSA ranges.

import type { Detection } from './types.js';
import { cardIssuer, luhn, validSsn } from './validators.js';
import { isDigit, isWordChar } from './char-class.js';

interface Group {
  readonly start: number;
  readonly end: number;
  /** Separator text before this group (`''` for the first). */
  readonly sep: string;
  readonly paren: boolean;
}

const maxGroups = 12;

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
  const groups: Group[] = [];
  let j = from;
  const plus = text.charCodeAt(j) === 43;
  if (plus) j++;
  let sep = '';
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
    groups.push({ start, end: paren ? j - 1 : j, sep, paren });
    if (groups.length >= maxGroups) break;
    // Separator: one of `-` `.` or a single space, optionally with spaces around a dash.
    const s0 = j;
    const c = text.charCodeAt(j);
    if (c === 45 || c === 46) j++;
    else if (c === 32) {
      j++;
      if (text.charCodeAt(j) === 45 && text.charCodeAt(j + 1) === 32) j += 2;
    } else break;
    const next = text.charCodeAt(j);
    if (!(isDigit(next) || (next === 40 && isDigit(text.charCodeAt(j + 1))))) {
      j = s0;
      break;
    }
    sep = text.slice(s0, j);
  }
  if (groups.length === 0) return from + 1;
  const last = groups[groups.length - 1]!;
  const runEnd = last.paren ? last.end + 1 : last.end;
  const tailGlued = runEnd < n && isWordChar(text.charCodeAt(runEnd));

  let g = 0;
  while (g < groups.length) {
    let found: Detection | undefined;
    for (let h = Math.min(groups.length - 1, g + 7); h >= g; h--) {
      if (h === groups.length - 1 && tailGlued) continue;
      const after = h + 1 < groups.length ? groups[h + 1]!.sep : '';
      if (after === '-' || after === '.') continue;
      const before = groups[g]!.sep;
      if (g > 0 && (before === '-' || before === '.')) continue;
      found = classify(text, groups, g, h, plus && g === 0 ? from : undefined);
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

function classify(text: string, groups: readonly Group[], g: number, h: number, plusAt: number | undefined): Detection | undefined {
  const count = h - g + 1;
  if (plusAt === undefined) {
    // Cheap exits first: most numbers in text are short (years, counts, prices).
    let total = 0;
    for (let k = g; k <= h; k++) total += groups[k]!.end - groups[k]!.start;
    if (count === 1 ? total < 13 : count !== 4 && total < 9) return undefined;
  }
  let digits = '';
  const lens: number[] = [];
  const seps = new Set<string>();
  let parens = 0;
  for (let k = g; k <= h; k++) {
    const grp = groups[k]!;
    digits += text.slice(grp.start, grp.end);
    lens.push(grp.end - grp.start);
    if (k > g) seps.add(grp.sep.trim() === '' ? ' ' : grp.sep.trim());
    if (grp.paren) parens++;
  }
  const first = groups[g]!;
  const lastGroup = groups[h]!;
  const start = plusAt ?? (first.paren ? first.start - 1 : first.start);
  const end = lastGroup.paren ? lastGroup.end + 1 : lastGroup.end;
  const oneSep = seps.size <= 1 ? [...seps][0] : undefined;

  if (plusAt !== undefined) {
    // E.164 (ITU-T E.164 §6): country code + subscriber number, at most 15 digits.
    if (digits.length < 8 || digits.length > 15 || parens > 1) return undefined;
    if (digits[0] === '1' && !(digits.length === 11 && nanp(digits.slice(1)))) return undefined;
    if (digits[0] === '0') return undefined;
    return { type: 'PHONE', start, end, score: 0.85 };
  }

  if (parens === 0 && count === 4 && oneSep === '.' && lens.every((l) => l <= 3)) {
    const parts = [];
    for (let k = g; k <= h; k++) parts.push(text.slice(groups[k]!.start, groups[k]!.end));
    if (parts.every((p) => Number(p) <= 255 && !(p.length > 1 && p[0] === '0'))) return { type: 'IP_ADDRESS', start, end, score: 0.8 };
    return undefined;
  }

  if (parens === 0 && count === 3 && lens[0] === 3 && lens[1] === 2 && lens[2] === 4 && (oneSep === '-' || oneSep === ' ')) {
    if (validSsn(Number(digits.slice(0, 3)), Number(digits.slice(3, 5)), Number(digits.slice(5)))) return { type: 'US_SSN', start, end, score: oneSep === '-' ? 0.85 : 0.6 };
    return undefined;
  }

  if (parens === 0 && digits.length >= 13 && digits.length <= 19 && (count === 1 || oneSep === ' ' || oneSep === '-') && cardLayout(lens)) {
    if (cardIssuer(digits) && luhn(digits)) return { type: 'CREDIT_CARD', start, end, score: count === 1 ? 0.8 : 0.9 };
    return undefined;
  }

  // `00` international prefix, as written in much of Europe.
  if (g === 0 && parens === 0 && lens[0] === 4 && digits.startsWith('00') && count >= 3 && digits.length >= 10 && digits.length <= 17 && digits[2] !== '0') {
    return { type: 'PHONE', start, end, score: 0.7 };
  }

  // NANP: [1] NXX NXX XXXX, grouped as 3-3-4 (area optionally in parentheses).
  let body = digits;
  let layout = lens;
  if (count === 4 && lens[0] === 1 && digits[0] === '1') {
    body = digits.slice(1);
    layout = lens.slice(1);
  }
  if (layout.length === 3 && layout[0] === 3 && layout[1] === 3 && layout[2] === 4 && nanp(body)) {
    const areaParen = groups[h - 2]!.paren;
    if (parens > (areaParen ? 1 : 0)) return undefined;
    if (!areaParen && seps.size > 1) return undefined;
    return { type: 'PHONE', start, end, score: 0.8 };
  }
  return undefined;
}

/** NANP number plan: area and exchange codes start with 2-9; N11 area codes are services. */
function nanp(ten: string): boolean {
  if (ten.length !== 10) return false;
  const a = ten.charCodeAt(0) - 48;
  const e = ten.charCodeAt(3) - 48;
  if (a < 2 || e < 2) return false;
  if (ten[1] === '1' && ten[2] === '1') return false;
  return true;
}

function cardLayout(lens: readonly number[]): boolean {
  if (lens.length === 1) return true;
  const key = lens.join('-');
  return key === '4-4-4-4' || key === '4-4-4-4-3' || key === '4-6-5' || key === '4-6-4' || key === '4-4-4-1' || key === '4-4-4-3' || key === '4-4-4-2';
}
