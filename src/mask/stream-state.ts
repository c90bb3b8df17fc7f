// What a streaming masker (SSE, NDJSON, AWS event stream) keeps between events: one
// StreamTextMasker per text stream (a choice's content, a content block, a candidate
// …), tool-call arguments held until their call is complete, and the plan and counts
// everything else is masked with. Streams are named by string keys each dialect
// chooses; maps keep insertion order, so what is released at the end comes out in
// the order the streams began.

import type { MaskPlan } from './plan.js';
import { applyFindings, totalCount, type EntityCounts } from './operators.js';
import { maskJsonText, maskJsonValue } from './json-masker.js';
import { omit, type Json } from './json-value.js';
import { StreamTextMasker } from './stream-masker.js';

export interface StreamStateOptions {
  readonly plan: MaskPlan;
  readonly counts: EntityCounts;
  /** Called with each piece of raw answer text as it is read (for response guards). */
  readonly onText?: ((text: string) => void) | undefined;
}

export class StreamState {
  readonly plan: MaskPlan;
  readonly counts: EntityCounts;
  readonly #onText: ((text: string) => void) | undefined;
  readonly #text = new Map<string, StreamTextMasker>();
  readonly #held = new Map<string, string>();
  /** The counts' total when the stream began: anything more was masked in this answer. */
  readonly #countsAtStart: number;

  constructor(options: StreamStateOptions) {
    this.plan = options.plan;
    this.counts = options.counts;
    this.#onText = options.onText;
    this.#countsAtStart = totalCount(options.counts);
  }

  /** Hands answer text to the response guard, if any. */
  guard(text: string): void {
    this.#onText?.(text);
  }

  /** Whether a value was masked in this answer so far. */
  masked(): boolean {
    return totalCount(this.counts) > this.#countsAtStart;
  }

  /** The next piece of text stream `key`; returns what can be released now (maybe ''). */
  push(key: string, piece: string): string {
    let masker = this.#text.get(key);
    if (!masker) this.#text.set(key, (masker = new StreamTextMasker(this.plan, this.counts)));
    return masker.push(piece);
  }

  /** Ends text stream `key`: what it still held, masked ('' when none). */
  end(key: string): string {
    const masker = this.#text.get(key);
    this.#text.delete(key);
    return masker?.end() ?? '';
  }

  /** What of `text`, taken alone, can be released now (masked), and whether some of it is held back. */
  releasable(text: string): { readonly released: string; readonly held: boolean } {
    const masker = new StreamTextMasker(this.plan, this.counts);
    const released = masker.push(text);
    return { released, held: masker.heldLength > 0 };
  }

  /** Forgets text stream `key` and what it holds (its text came again whole). */
  drop(key: string): void {
    this.#text.delete(key);
  }

  /** `push`, then `end` when `finished`. */
  stream(key: string, piece: string, finished: boolean): string {
    const out = this.push(key, piece);
    return finished ? out + this.end(key) : out;
  }

  /** How much text stream `key` holds back (0 when it is not open). */
  heldLength(key: string): number {
    return this.#text.get(key)?.heldLength ?? 0;
  }

  /** Text stream `from` goes on as `to` (what it holds and its context with it). */
  move(from: string, to: string): void {
    const masker = this.#text.get(from);
    if (!masker || from === to) return;
    this.#text.delete(from);
    this.#text.set(to, masker);
  }

  /** Whether text stream `key` is open. */
  has(key: string): boolean {
    return this.#text.has(key);
  }

  /** The open text streams' keys, in the order they began. */
  textKeys(): string[] {
    return [...this.#text.keys()];
  }

  /** Appends to what is held under `key` (tool-call arguments: JSON, masked once whole). */
  hold(key: string, piece: string): void {
    this.#held.set(key, (this.#held.get(key) ?? '') + piece);
  }

  /** Takes what is held under `key`, raw (undefined when nothing was). */
  take(key: string): string | undefined {
    const held = this.#held.get(key);
    this.#held.delete(key);
    return held;
  }

  /** The keys held, in the order they began. */
  heldKeys(): string[] {
    return [...this.#held.keys()];
  }

  /** Held JSON text masked as JSON ('' stays ''). */
  maskArguments(held: string): string {
    return held === '' ? '' : maskJsonText(held, this.plan, this.counts);
  }

  maskJsonText(text: string): string {
    return maskJsonText(text, this.plan, this.counts);
  }

  maskValue(value: unknown): unknown {
    return maskJsonValue(value, this.plan, this.counts);
  }

  maskText(text: string): string {
    const findings = this.plan.find(text);
    return findings.length === 0 ? text : applyFindings(text, findings, this.counts);
  }

  /** The event with `skip` members removed and every other string masked whole. */
  rest(event: Json, skip: readonly string[]): Json {
    return maskJsonValue(omit(event, skip), this.plan, this.counts) as Json;
  }
}
