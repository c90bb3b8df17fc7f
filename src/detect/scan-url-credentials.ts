// The password of a URL's user information (`postgres://app:S3cr3t@db:5432/x`,
// `redis://:hunter2@cache`): from `@` back over the password to `:`, the user name to
// `://`, and a scheme. Connection strings are the commonest way a password reaches a
// model's answer (code, logs, `.env` files); only the password is reported, as a
// SECRET, so the user and host stay readable. The walk is bounded, so the scan stays
// linear. hold-back.ts (`urlPasswordHold`) holds a password still in progress.

import { charClass, isWordChar, LOWER, UPPER, DIGIT } from './char-class.js';
import type { Detection } from './types.js';

/** Longest password or user name looked at (both are bounded walks). */
export const maxUserinfoPart = 128;

/** A character a URL's user name or password may hold here: not a space, `/`, `@`, `:`, a quote, `<` `>` or `\`. */
export function isUserinfoChar(c: number): boolean {
  return c > 32 && c !== 127 && c !== 47 && c !== 64 && c !== 58 && c !== 34 && c !== 39 && c !== 96 && c !== 60 && c !== 62 && c !== 92;
}

/**
 * Where the password ends before it (`:` position + 1) when `text[…, end)` is
 * `scheme://user:password`, the password possibly empty; -1 otherwise.
 */
export function userinfoPasswordStart(text: string, end: number): number {
  let p = end;
  while (p > 0 && end - p < maxUserinfoPart && isUserinfoChar(text.charCodeAt(p - 1))) p--;
  if (p === 0 || text.charCodeAt(p - 1) !== 58) return -1;
  let u = p - 1;
  while (u > 0 && p - 1 - u < maxUserinfoPart && isUserinfoChar(text.charCodeAt(u - 1))) u--;
  // `://` before the user name, a scheme before that (a letter, then letters, digits, `+ . -`).
  if (u < 4 || text.charCodeAt(u - 1) !== 47 || text.charCodeAt(u - 2) !== 47 || text.charCodeAt(u - 3) !== 58) return -1;
  let s = u - 3;
  while (s > 0 && u - 3 - s < 32 && isSchemeChar(text.charCodeAt(s - 1))) s--;
  if (s === u - 3 || (charClass[text.charCodeAt(s)]! & (UPPER | LOWER)) === 0) return -1;
  if (s > 0 && isWordChar(text.charCodeAt(s - 1))) return -1;
  return p;
}

/** At an `@`: reports the URL password before it; returns whether there was one. */
export function urlPasswordAt(text: string, at: number, out: Detection[]): boolean {
  const p = userinfoPasswordStart(text, at);
  if (p < 0 || p === at) return false;
  out.push({ type: 'SECRET', start: p, end: at, score: 0.9 });
  return true;
}

function isSchemeChar(c: number): boolean {
  return (charClass[c]! & (UPPER | LOWER | DIGIT)) !== 0 || c === 43 || c === 46 || c === 45;
}
