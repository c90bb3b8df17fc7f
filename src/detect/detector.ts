// A detector: the built-in scanners plus a profile's custom entities (user regexes run
// on re2, linear time), deny lists (literal terms, case-insensitive, on word
// boundaries) and allow lists (exact values never reported). Overlapping findings are
// resolved to one per span: the longer wins, then the higher score.
//
// `holdBack(text)` is what the streaming masker needs: the offset from which the end
// of `text` could still become (part of) an entity once more text arrives.

import RE2 from 're2';
import type { Detection } from './types.js';
import { scanDigitTokens } from './scan-digits.js';
import { scanEmails, scanIpv6, scanPem } from './scan-misc.js';
import { luhn, mod97 } from './validators.js';
import { charClass, isSpace, isWordChar, TOKEN } from './char-class.js';

export interface CustomEntity {
  readonly name: string;
  readonly pattern: string;
  readonly validator?: 'luhn' | 'mod97' | undefined;
  /** When given, a match counts only with one of these words shortly before it. */
  readonly context?: readonly string[] | undefined;
  readonly score?: number | undefined;
  /** Longest match expected; the streaming hold-back keeps this much (default 64). */
  readonly maxLength?: number | undefined;
}

export interface DenyList {
  readonly name: string;
  readonly terms: readonly string[];
}

export interface DetectorOptions {
  readonly customEntities?: readonly CustomEntity[] | undefined;
  readonly denyLists?: readonly DenyList[] | undefined;
  readonly allowList?: readonly string[] | undefined;
  /** Findings below this score are dropped (default 0.5). */
  readonly minScore?: number | undefined;
}

export interface Detector {
  detect(text: string): Detection[];
  /** Offset from which the end of `text` must be held back while streaming. */
  holdBack(text: string): number;
}

const contextChars = 48;
/** An unbroken token longer than this is released: a key longer than 8 KiB is not a key. */
const maxTokenHold = 8 * 1024;
/** An unterminated PEM block is held up to this size, then masked whole. */
const maxPemHold = 16 * 1024;
/** Digit/letter groups separated by single spaces (phones, cards, IBANs): held up to this. */
const maxGroupHold = 48;

interface CompiledCustom {
  readonly name: string;
  readonly re: RE2;
  readonly validator: ((value: string) => boolean) | undefined;
  readonly context: RE2 | undefined;
  readonly score: number;
}

export function createDetector(options: DetectorOptions = {}): Detector {
  const minScore = options.minScore ?? 0.5;
  const allow = new Set((options.allowList ?? []).map((v) => v.toLowerCase()));
  const custom: CompiledCustom[] = (options.customEntities ?? []).map((c) => ({
    name: c.name,
    re: new RE2(c.pattern, 'gu'),
    validator: c.validator === 'luhn' ? (v: string) => luhn(v.replace(/\D/g, '')) : c.validator === 'mod97' ? (v: string) => mod97(v.replace(/[^A-Za-z0-9]/g, '').toUpperCase()) : undefined,
    context: c.context && c.context.length > 0 ? new RE2(c.context.map(escapeRe2).join('|'), 'iu') : undefined,
    score: c.score ?? 0.8,
  }));
  const deny = (options.denyLists ?? []).filter((d) => d.terms.length > 0).map((d) => ({ name: d.name, re: new RE2(`(?:^|\\b)(?:${d.terms.map(escapeRe2).join('|')})(?:\\b|$)`, 'giu') }));
  let extraHold = 0;
  for (const c of options.customEntities ?? []) extraHold = Math.max(extraHold, (c.maxLength ?? 64) - 1);
  for (const d of options.denyLists ?? []) for (const t of d.terms) extraHold = Math.max(extraHold, t.length - 1);

  return {
    detect(text) {
      const found: Detection[] = [];
      scanBuiltins(text, found);
      for (const c of custom) {
        c.re.lastIndex = 0;
        for (let m = c.re.exec(text); m; m = c.re.exec(text)) {
          if (m[0] === '') {
            c.re.lastIndex++;
            continue;
          }
          const start = m.index;
          if (c.validator && !c.validator(m[0])) continue;
          if (c.context && !c.context.test(text.slice(Math.max(0, start - contextChars), start))) continue;
          found.push({ type: c.name, start, end: start + m[0].length, score: c.score });
        }
      }
      for (const d of deny) {
        d.re.lastIndex = 0;
        for (let m = d.re.exec(text); m; m = d.re.exec(text)) {
          if (m[0] === '') {
            d.re.lastIndex++;
            continue;
          }
          found.push({ type: d.name, start: m.index, end: m.index + m[0].length, score: 1 });
        }
      }
      const kept = found.filter((d) => d.score >= minScore && (allow.size === 0 || !allow.has(text.slice(d.start, d.end).toLowerCase())));
      return resolveOverlaps(kept);
    },
    holdBack(text) {
      return Math.min(builtinHoldBack(text), extraHold > 0 ? Math.max(0, text.length - extraHold) : text.length);
    },
  };
}

function scanBuiltins(text: string, out: Detection[]): void {
  // PEM blocks first: the digit-driven scan skips their insides (base64 lines full of
  // digits), where any finding would lose to the enclosing block anyway.
  const first = out.length;
  scanPem(text, out);
  const blocks = out.length;
  let from = 0;
  for (let b = first; b < blocks; b++) {
    scanDigitTokens(text, out, from, out[b]!.start);
    from = out[b]!.end;
  }
  scanDigitTokens(text, out, from);
  scanEmails(text, out);
  scanIpv6(text, out);
}

/** One finding per span: sorted by start, the longer (then higher-scored) wins an overlap. */
export function resolveOverlaps(found: Detection[]): Detection[] {
  if (found.length <= 1) return found;
  found.sort((a, b) => a.start - b.start || b.end - b.start - (a.end - a.start) || b.score - a.score);
  const out: Detection[] = [];
  for (const d of found) {
    const last = out[out.length - 1];
    if (last && d.start < last.end) {
      if (d.end - d.start > last.end - last.start) out[out.length - 1] = d;
      continue;
    }
    out.push(d);
  }
  return out;
}

/**
 * Where the text could still grow into an entity:
 * - the trailing run of characters that occur inside entities (letters, digits and
 *   `_-./+=~@:%'()`: an email, key, JWT or address in progress);
 * - before it, short digit/upper-case groups joined by single spaces (`+1 415 555`,
 *   `4111 1111`, `DE89 3704`), including a trailing single space after such a group;
 * - an open `-----BEGIN … PRIVATE KEY-----` block without its END line yet.
 */
export function builtinHoldBack(text: string): number {
  const n = text.length;
  let p = n;
  while (p > 0 && n - p < maxTokenHold && isEntityChar(text.charCodeAt(p - 1))) p--;
  // Groups: walk back over `<space><group>` while each group is short and group-like.
  let q = p;
  for (;;) {
    if (q === 0 || text.charCodeAt(q - 1) !== 32) break;
    let s = q - 1;
    if (s > 0 && isSpace(text.charCodeAt(s - 1))) break;
    const groupEnd = s;
    while (s > 0 && groupEnd - s < 8 && isGroupChar(text.charCodeAt(s - 1))) s--;
    if (s === groupEnd || (s > 0 && !isSpace(text.charCodeAt(s - 1)))) break;
    if (n - s > maxGroupHold + (n - p)) break;
    q = s;
  }
  p = q;
  // A PEM block is complete only once its END line's closing dashes have arrived.
  const begin = text.lastIndexOf('-----BEGIN ');
  if (begin >= 0 && begin < p && n - begin < maxPemHold) {
    const end = text.indexOf('-----END ', begin);
    if (end < 0 || text.indexOf('-----', end + 9) < 0) p = begin;
  }
  return p;
}

/** Characters that occur inside some built-in entity; any other character ends them all. */
function isEntityChar(c: number): boolean {
  return (charClass[c]! & TOKEN) !== 0 || c === 64 || c === 58 || c === 37 || c === 39 || c === 40 || c === 41 || (c > 127 && isWordChar(c));
}

function isGroupChar(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || c === 40 || c === 41 || c === 43 || c === 45 || c === 46;
}

function escapeRe2(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
}
