// A chat delta's `content` (or `reasoning`, `reasoning_content`, `refusal`) sent as a
// list of parts, as Mistral's reasoning models stream it: `[{type:'thinking',
// thinking:[{type:'text',text}]}]`, then `[{type:'text',text}]`. Masked event by event,
// a value split across two events went out in two unmasked halves. The text of each
// kind of part (thinking, text) per choice and field is one stream through a
// StreamTextMasker, like a string delta: each part goes out with what can be released
// now; what is held goes out as one more part of its kind when the kind changes, when a
// part of another shape or a string delta comes, or when the choice finishes.

import type { StreamState } from './stream-state.js';
import { isRecord, type Json } from './json-value.js';
import { partTexts } from '../exchange/index.js';

type PartKind = 'text' | 'thinking';
const kinds: readonly PartKind[] = ['text', 'thinking'];

/** Stream key of `field`'s `kind` parts of choice `index` (`chat.<field>#<kind>:<index>`). */
export function partsKey(field: string, kind: PartKind, index: unknown): string {
  return `chat.${field}#${kind}:${String(index)}`;
}

/** A part carrying `text` of `kind`, with `like`'s other members (masked whole). */
export function partOf(state: StreamState | undefined, kind: PartKind, text: string, like?: Json): Json {
  const rest = like && state ? state.rest(like, kind === 'text' ? ['type', 'text'] : ['type', 'thinking']) : {};
  return kind === 'text' ? { type: 'text', ...rest, text } : { type: 'thinking', ...rest, thinking: [{ type: 'text', text }] };
}

/** A part's streamed text and kind, or undefined for a part of another shape (masked whole). */
function streamedText(part: unknown): { kind: PartKind; text: string } | undefined {
  if (!isRecord(part)) return undefined;
  if (part['type'] === 'text' && typeof part['text'] === 'string') return { kind: 'text', text: part['text'] };
  const inner = part['thinking'];
  if (part['type'] !== 'thinking' || !Array.isArray(inner)) return undefined;
  let text = '';
  for (const p of inner) {
    if (!isRecord(p) || p['type'] !== 'text' || typeof p['text'] !== 'string') return undefined;
    text += p['text'];
  }
  return { kind: 'thinking', text };
}

/** Ends `field`'s parts streams of choice `index`: what they held, as parts (none when nothing was). */
export function releaseParts(state: StreamState, field: string, index: unknown): Json[] {
  const out: Json[] = [];
  for (const kind of kinds) {
    const tail = state.end(partsKey(field, kind, index));
    if (tail !== '') out.push(partOf(undefined, kind, tail));
  }
  return out;
}

/** Whether `field`'s parts streams of choice `index` are open. */
export function partsOpen(state: StreamState, field: string, index: unknown): boolean {
  return kinds.some((kind) => state.has(partsKey(field, kind, index)));
}

/**
 * `field`'s list of parts in this event, masked: its text parts stream (see above);
 * `stringKey`'s held text (a string delta before) goes on in the text parts' stream.
 */
export function streamParts(state: StreamState, field: string, index: unknown, parts: readonly unknown[], stringKey: string, finished: boolean): Json[] {
  const out: Json[] = [];
  // A string delta's held text goes on as the text parts' stream (or out first, if that is open).
  const textKey = partsKey(field, 'text', index);
  if (!state.has(textKey)) state.move(stringKey, textKey);
  const before = state.end(stringKey);
  if (before !== '') out.push(partOf(undefined, 'text', before));
  for (const part of parts) {
    const streamed = streamedText(part);
    if (!streamed) {
      // Its text reaches the client too: the guard reads it.
      for (const t of partTexts(part)) state.guard(t);
      out.push(...releaseParts(state, field, index), state.maskValue(part) as Json);
      continue;
    }
    if (streamed.text !== '') state.guard(streamed.text);
    const other = partsKey(field, streamed.kind === 'text' ? 'thinking' : 'text', index);
    const tail = state.end(other);
    if (tail !== '') out.push(partOf(undefined, streamed.kind === 'text' ? 'thinking' : 'text', tail));
    out.push(partOf(state, streamed.kind, state.push(partsKey(field, streamed.kind, index), streamed.text), part as Json));
  }
  if (finished) out.push(...releaseParts(state, field, index));
  return out;
}
