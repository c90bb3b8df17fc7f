// Logprobs name an answer's tokens one by one (`jane`, `.roe`, `@example` …): each is no
// entity alone, so masked whole they would give a masked value away. These helpers
// join a choice's held logprobs, and empty them where a value was masked.

import { isRecord, type Json } from './json-value.js';

/** A choice's held logprobs as one: arrays (`content`, `tokens` …) joined, other fields the last seen. */
export function mergeLogprobs(held: readonly Json[]): Json {
  const merged: Json = {};
  for (const part of held) {
    for (const [k, v] of Object.entries(part)) {
      const before = merged[k];
      merged[k] = Array.isArray(v) && Array.isArray(before) ? [...before, ...v] : v;
    }
  }
  return merged;
}

/**
 * `value` with every `logprobs` emptied (an array becomes [], anything else null): the
 * tokens in them spell the answer's text in pieces that are no entity alone.
 */
export function withoutLogprobs(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutLogprobs);
  if (!isRecord(value)) return value;
  const out: Json = {};
  for (const [k, v] of Object.entries(value)) out[k] = k === 'logprobs' ? (Array.isArray(v) ? [] : v === undefined ? v : null) : withoutLogprobs(v);
  return out;
}
