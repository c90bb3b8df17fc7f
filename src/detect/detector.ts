// A detector: the built-in scanners plus a profile's custom entities (user regexes run
// on re2, linear time), deny lists (literal terms, case-insensitive, on word
// boundaries) and allow lists (exact values never reported). Overlapping findings are
// resolved to one per span: the longer wins, then the higher score.
//
// `holdBack(text)` is what the streaming masker needs: the offset from which the end
// of `text` could still become (part of) an entity once more text arrives.

import RE2 from 're2';
import type { Detection } from './types.js';
import { scanAnchors, type AnchorState } from './scan-digits.js';
import { scanPem } from './scan-misc.js';
import { luhn, mod97 } from './validators.js';
import { builtinHoldBack } from './hold-back.js';

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
  /**
   * Offset from which the end of `text` must be held back while streaming. `from`: the
   * text before it is already out, so any point at or before it is as good an answer.
   */
  holdBack(text: string, from?: number): number;
}

const contextChars = 48;

/**
 * What may stand next to a deny-list term: anything but a letter, digit, mark or `_`
 * of any script (re2's `\\b` knows only ASCII letters, so `José` or `Иванов` matched
 * only at the ends of the text), or a character of a script written without spaces
 * between words (`北極星プロジェクト`).
 */
const termBoundary = '[^\\p{L}\\p{N}\\p{M}_]|[\\p{Han}\\p{Hiragana}\\p{Katakana}\\p{Thai}]';

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
  const deny = (options.denyLists ?? []).filter((d) => d.terms.length > 0).map((d) => ({ name: d.name, re: new RE2(`(^|${termBoundary})(${d.terms.map(escapeRe2).join('|')})(?:${termBoundary}|$)`, 'giu') }));
  /** The lowest score a finding can have (built-ins: 0.6). */
  const lowestScore = Math.min(0.6, ...custom.map((c) => c.score));
  let extraHold = 0;
  for (const c of options.customEntities ?? []) extraHold = Math.max(extraHold, (c.maxLength ?? 64) - 1);
  for (const d of options.denyLists ?? []) for (const t of d.terms) extraHold = Math.max(extraHold, t.length - 1);

  /** Every finding kept by score and allow list, before overlaps are resolved. */
  function collect(text: string): Detection[] {
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
        // Group 1 is the boundary before the term, group 2 the term; the boundary after
        // it is not consumed, so it can be the one before the next term.
        const start = m.index + m[1]!.length;
        const end = start + m[2]!.length;
        d.re.lastIndex = end;
        found.push({ type: d.name, start, end, score: 1 });
      }
    }
    if (allow.size === 0 && lowestScore >= minScore) return found;
    return found.filter((d) => d.score >= minScore && (allow.size === 0 || !allow.has(text.slice(d.start, d.end).toLowerCase())));
  }

  // The findings holdBack computed, for the detect call on the same text that follows
  // it in a streaming masker (one scan per piece, not two). Used once, then dropped.
  let lastText: string | undefined;
  let lastFound: Detection[] | undefined;

  return {
    detect(text) {
      let found: Detection[];
      if (lastFound !== undefined && text === lastText) found = lastFound;
      else found = collect(text);
      lastText = undefined;
      lastFound = undefined;
      return resolveOverlaps(found);
    },
    holdBack(text, from = 0) {
      const n = text.length;
      let p = Math.min(builtinHoldBack(text), extraHold > 0 ? Math.max(0, n - extraHold) : n);
      // Nothing after `from` can go (or everything can): the straddle check cannot
      // change that.
      if (p === n || p <= from) return p;
      // A finding that straddles the point is held whole (and then whatever straddles
      // its start): it may still lose an overlap to what is growing after it, or win
      // one, and the part before the point would already be out.
      const spans = collect(text);
      lastText = text;
      lastFound = spans;
      for (let moved = true; moved; ) {
        moved = false;
        for (const d of spans) {
          if (d.start < p && d.end > p) {
            p = d.start;
            moved = true;
          }
        }
      }
      return p;
    },
  };
}

function scanBuiltins(text: string, out: Detection[]): void {
  // PEM blocks first: the digit-driven scan skips their insides (base64 lines full of
  // digits), where any finding would lose to the enclosing block anyway.
  const first = out.length;
  scanPem(text, out);
  const blocks = out.length;
  // One pass over each stretch for digits, `@` (e-mail) and `:` (IPv6).
  const anchors: AnchorState = { email: 0, ipv6: 0 };
  let from = 0;
  for (let b = first; b < blocks; b++) {
    scanAnchors(text, out, from, out[b]!.start, anchors);
    from = out[b]!.end;
  }
  scanAnchors(text, out, from, text.length, anchors);
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

function escapeRe2(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
}
