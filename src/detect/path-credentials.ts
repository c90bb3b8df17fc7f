// Credentials in a URL path (`/users/sk-live-…`, `/token/ghp_…`, an AWS key id, a JWT
// as a segment): every segment in which the built-in detectors find a credential is
// replaced by the credential's type label (`/users/[OPENAI_KEY]`), for what is recorded,
// logged or shown to reviewers. Policy and the target still get the path as sent.
//
// The scanner reads `/` as part of a token, so segments are scanned percent-decoded and
// joined by spaces: each is a token of its own, and a context word in the segment
// before (`/token/<high-entropy>`) counts as it does in text. The query is left to the
// caller (recordablePath redacts credential parameters by name).

import { scanDigitTokens } from './scan-digits.js';
import { credentialEntityTypes, type Detection } from './types.js';

// Every credential type the built-ins know is a token with a digit (keys, tokens, JWTs,
// AWS ids), found by the token scan alone. Not the whole detector: that loads re2,
// and this module runs in the record journal's worker thread too (record-columns.ts),
// where a second load of the native addon crashes the process at exit.
const detector = {
  detect(text: string): Detection[] {
    const out: Detection[] = [];
    scanDigitTokens(text, out);
    return out;
  },
};
const credential = new Set<string>(credentialEntityTypes);
/** The shortest credential the built-ins report is 16 characters (AWS key ids: 20). */
const shortest = 16;

/** `path` with each segment holding a credential replaced by `[TYPE]`; the same string when there is none. */
export function redactPathCredentials(path: string): string {
  if (!hasLongSegment(path)) return path;
  const segments = path.split('/');
  const decoded = segments.map(decodeSegment);
  const text = decoded.join(' ');
  let starts: number[] | undefined;
  let out: string[] | undefined;
  for (const found of detector.detect(text)) {
    if (!credential.has(found.type)) continue;
    if (!starts) {
      starts = [];
      let at = 0;
      for (const segment of decoded) {
        starts.push(at);
        at += segment.length + 1;
      }
    }
    out ??= segments.slice();
    // Every segment the finding touches (a finding never spans the joining space, but a
    // `key=value` split may start it mid-segment).
    for (let i = 0; i < starts.length; i++) {
      const from = starts[i]!;
      const to = from + decoded[i]!.length;
      if (found.start < to && found.end > from) out[i] = `[${found.type}]`;
    }
  }
  return out ? out.join('/') : path;
}

/** `[TYPE]` when `value` (one query value, percent-encoded) holds a credential. */
export function credentialLabel(value: string): string | undefined {
  if (value.length < shortest) return undefined;
  for (const found of detector.detect(decodeSegment(value))) if (credential.has(found.type)) return `[${found.type}]`;
  return undefined;
}

/**
 * `text` with every credential the token scan finds replaced by `[TYPE]`: free text a
 * person typed (a review's justification, a reviewer's comment) on its way into the
 * audit chain, which sinks copy out. The same string when there is none.
 */
export function redactTextCredentials(text: string): string {
  if (text.length < shortest) return text;
  let out = '';
  let at = 0;
  for (const found of detector.detect(text)) {
    if (!credential.has(found.type) || found.start < at) continue;
    out += `${text.slice(at, found.start)}[${found.type}]`;
    at = found.end;
  }
  return at === 0 ? text : out + text.slice(at);
}

/** A run of at least `shortest` characters between slashes: most paths have none and skip the scan. */
function hasLongSegment(path: string): boolean {
  let run = 0;
  for (let i = 0; i < path.length; i++) {
    if (path.charCodeAt(i) === 47) run = 0;
    else if (++run >= shortest) return true;
  }
  return false;
}

function decodeSegment(segment: string): string {
  if (!segment.includes('%')) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
