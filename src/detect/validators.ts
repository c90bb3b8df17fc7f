// Checksums and range rules that turn a pattern match into a finding: Luhn (ISO/IEC
// 7812-1 Annex B), IBAN mod-97 (ISO 13616 / ISO 7064), US SSN ranges (SSA), issuer
// prefixes, and Shannon entropy for generic tokens.

/** Luhn check over a string of digits. */
export function luhn(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return digits.length > 1 && sum % 10 === 0;
}

/** ISO 13616 mod-97 over a compact IBAN (letters and digits only). */
export function mod97(iban: string): boolean {
  if (iban.length < 15 || iban.length > 34) return false;
  const rearranged = iban.slice(4) + iban.slice(0, 4);
  let rest = 0;
  for (let i = 0; i < rearranged.length; i++) {
    const c = rearranged.charCodeAt(i);
    if (c >= 48 && c <= 57) rest = (rest * 10 + (c - 48)) % 97;
    else if (c >= 65 && c <= 90) rest = (rest * 100 + (c - 55)) % 97;
    else return false;
  }
  return rest === 1;
}

/** ISO 13616 mod-97 over the first `n` character codes of `codes` (a compact IBAN, `0-9 A-Z`). */
export function mod97Codes(codes: Uint8Array, n: number): boolean {
  if (n < 15 || n > 34) return false;
  let rest = 0;
  // The first four characters (country code and check digits) move to the end.
  for (let j = 0; j < n; j++) {
    const c = codes[j + 4 < n ? j + 4 : j + 4 - n]!;
    if (c >= 48 && c <= 57) rest = (rest * 10 + (c - 48)) % 97;
    else if (c >= 65 && c <= 90) rest = (rest * 100 + (c - 55)) % 97;
    else return false;
  }
  return rest === 1;
}

/** IBAN lengths by country (SWIFT IBAN registry). */
export const ibanLengths: Readonly<Record<string, number>> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BR: 29, BY: 28, CH: 21, CR: 22, CY: 28, CZ: 24,
  DE: 22, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18, FO: 18, FR: 27, GB: 22, GE: 22, GI: 23, GL: 18, GR: 27, GT: 28,
  HR: 21, HU: 28, IE: 22, IL: 23, IQ: 23, IS: 26, IT: 27, JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32, LI: 21, LT: 20, LU: 20,
  LV: 21, MC: 27, MD: 24, ME: 22, MK: 19, MR: 27, MT: 31, MU: 30, NL: 18, NO: 15, PK: 24, PL: 28, PS: 29, PT: 25, QA: 29,
  RO: 24, RS: 22, SA: 24, SC: 31, SE: 24, SI: 19, SK: 24, SM: 27, ST: 25, SV: 28, TL: 23, TN: 24, TR: 26, UA: 29, VA: 22,
  VG: 24, XK: 20,
};

/** IBAN length by the two letters' codes as a table (0: no such country). */
const ibanLengthTable = new Uint8Array(26 * 26);
for (const [cc, length] of Object.entries(ibanLengths)) ibanLengthTable[(cc.charCodeAt(0) - 65) * 26 + cc.charCodeAt(1) - 65] = length;

/** The IBAN length of the country whose code is the characters `c0 c1` (either case), or 0. */
export function ibanLength(c0: number, c1: number): number {
  // A lower-case IBAN (`gb82 west …`, as a model writes one when asked to) is the same number.
  if (c0 >= 97 && c0 <= 122) c0 -= 32;
  if (c1 >= 97 && c1 <= 122) c1 -= 32;
  if (c0 < 65 || c0 > 90 || c1 < 65 || c1 > 90) return 0;
  return ibanLengthTable[(c0 - 65) * 26 + c1 - 65]!;
}

/** SSA rules: area 001-899 except 666, group 01-99, serial 0001-9999; advertising numbers excluded. */
export function validSsn(area: number, group: number, serial: number): boolean {
  if (area === 0 || area === 666 || area >= 900) return false;
  if (group === 0 || serial === 0) return false;
  if ((area === 78 && group === 5 && serial === 1120) || (area === 219 && group === 9 && serial === 9999)) return false;
  return true;
}

/** Issuer identification by prefix and length: Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay. */
export function cardIssuer(digits: string): string | undefined {
  const n = digits.length;
  const p2 = Number(digits.slice(0, 2));
  const p3 = Number(digits.slice(0, 3));
  const p4 = Number(digits.slice(0, 4));
  if (digits[0] === '4' && (n === 13 || n === 16 || n === 19)) return 'visa';
  if (n === 16 && ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720))) return 'mastercard';
  if (n === 15 && (p2 === 34 || p2 === 37)) return 'amex';
  if (n >= 16 && n <= 19 && (p4 === 6011 || p2 === 65 || (p3 >= 644 && p3 <= 649))) return 'discover';
  if (n >= 16 && n <= 19 && p4 >= 3528 && p4 <= 3589) return 'jcb';
  if (n >= 14 && n <= 19 && ((p3 >= 300 && p3 <= 305) || p2 === 36 || p2 === 38 || p2 === 39)) return 'diners';
  if (n >= 16 && n <= 19 && p2 === 62) return 'unionpay';
  return undefined;
}

/** Shannon entropy in bits per character of `text[start, end)`. */
export function entropy(text: string, start = 0, end = text.length): number {
  const len = end - start;
  if (len <= 0) return 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c >= 128) return entropyMap(text, start, end);
    asciiCounts[c]++;
  }
  // The second pass visits each distinct character once (its count is reset on the way).
  let bits = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    const count = asciiCounts[c]!;
    if (count === 0) continue;
    asciiCounts[c] = 0;
    const p = count / len;
    bits -= p * Math.log2(p);
  }
  return bits;
}

/** Counts for the ASCII fast path; always all zero between calls. */
const asciiCounts = new Int32Array(128);

function entropyMap(text: string, start: number, end: number): number {
  asciiCounts.fill(0);
  const counts = new Map<number, number>();
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  let bits = 0;
  for (const count of counts.values()) {
    const p = count / (end - start);
    bits -= p * Math.log2(p);
  }
  return bits;
}
