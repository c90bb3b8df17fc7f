// Operators that replace a finding in text:
// - redact:  `[EMAIL]`
// - partial: every letter and digit but the last N becomes `*`; separators stay
//            (`***-**-6789`, `**** **** **** 1111`)
// - hash:    `[EMAIL:3f9a1c2b7d4e]`, HMAC-SHA256 under the profile's key over the type
//            and value: stable for one key, so analysts can correlate without the value
// - drop:    removes the JSON field holding the value; in text it redacts.

import { createHmac } from 'node:crypto';
import type { Finding } from './plan.js';

export type EntityCounts = Record<string, number>;

export function replacement(value: string, finding: Finding): string {
  switch (finding.operator) {
    case 'partial':
      return partial(value, finding.keepLast);
    case 'hash': {
      const mac = createHmac('sha256', finding.hashKey ?? '').update(`${finding.type}\u0000${value}`).digest('hex');
      return `[${finding.type}:${mac.slice(0, 12)}]`;
    }
    default:
      return `[${finding.type}]`;
  }
}

function partial(value: string, keepLast: number): string {
  let kept = 0;
  const chars = [...value];
  for (let i = chars.length - 1; i >= 0; i--) {
    const ch = chars[i]!;
    if (!/[\p{L}\p{N}]/u.test(ch)) continue;
    if (kept < keepLast) kept++;
    else chars[i] = '*';
  }
  return chars.join('');
}

/** Applies findings (sorted, non-overlapping) to `text`; counts what it replaced. */
export function applyFindings(text: string, findings: readonly Finding[], counts: EntityCounts): string {
  if (findings.length === 0) return text;
  const parts: string[] = [];
  let at = 0;
  for (const f of findings) {
    parts.push(text.slice(at, f.start), replacement(text.slice(f.start, f.end), f));
    at = f.end;
    counts[f.type] = (counts[f.type] ?? 0) + 1;
  }
  parts.push(text.slice(at));
  return parts.join('');
}

export function addCounts(into: EntityCounts, from: EntityCounts): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}
