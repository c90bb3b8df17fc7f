// Masks a text that arrives in pieces (one SSE delta at a time) with a bounded
// hold-back: a piece is released only up to the point from which no detector could
// still match once more text arrives (see Detector.holdBack), and never in the middle
// of a finding. So a value split across pieces at any offset is masked whole, and
// ordinary words are released as soon as the next delimiter arrives.
//
// What detection needs to the left of the held text is kept as context (the word or
// token the held text continues, and 48 characters before it for context words such
// as "secret: …"); it is never released twice.

import { contextStart } from '../detect/index.js';
import type { MaskPlan } from './plan.js';
import { applyFindings, type EntityCounts } from './operators.js';

export class StreamTextMasker {
  readonly #plan: MaskPlan;
  readonly #counts: EntityCounts;
  #held = '';
  #context = '';
  #ended = false;

  constructor(plan: MaskPlan, counts: EntityCounts) {
    this.#plan = plan;
    this.#counts = counts;
  }

  /** Takes the next piece; returns the masked text that can be released now (maybe ''). */
  push(piece: string): string {
    if (this.#ended) throw new Error('stream masker: push after end');
    if (piece === '') return '';
    const buffer = this.#held + piece;
    // The hold-back sees the released context too: whether a token may still become
    // a secret depends on a context word before it.
    const view = this.#context + buffer;
    const release = Math.max(0, this.#plan.holdBack(view, this.#context.length) - this.#context.length);
    if (release === 0) {
      // Nothing can go yet: no need to look for findings.
      this.#held = buffer;
      return '';
    }
    return this.#release(view, buffer, release);
  }

  /** Releases everything still held, masked. */
  end(): string {
    if (this.#ended) return '';
    this.#ended = true;
    const buffer = this.#held;
    this.#held = '';
    return buffer === '' ? '' : this.#release(this.#context + buffer, buffer, buffer.length);
  }

  get heldLength(): number {
    return this.#held.length;
  }

  /** Releases `buffer` up to `release` (or less, never inside a finding); `view` is context + buffer. */
  #release(view: string, buffer: string, release: number): string {
    const offset = this.#context.length;
    const findings = this.#plan.find(view);
    const local = [];
    let cut = release;
    for (const f of findings) {
      const start = f.start - offset;
      const end = f.end - offset;
      if (end <= 0) continue;
      // A finding that starts in released context and reaches into the buffer.
      const s = Math.max(0, start);
      if (s < cut && end > cut) cut = s;
      local.push({ ...f, start: s, end });
    }
    const out = applyFindings(buffer.slice(0, cut), local.filter((f) => f.end <= cut), this.#counts);
    const released = this.#context + buffer.slice(0, cut);
    this.#context = released.slice(contextStart(released));
    this.#held = buffer.slice(cut);
    return out;
  }
}
