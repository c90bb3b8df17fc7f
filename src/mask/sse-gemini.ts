// Google Gemini (`streamGenerateContent?alt=sse`) chunks: each candidate's text parts
// (and its thought parts apart) stream through a masker per candidate; held text goes
// out in the chunk that carries the candidate's `finishReason`, as one more text part.
// Other parts (`functionCall` …) are masked whole.

import type { SseDialect } from './sse-dialect.js';
import type { StreamState } from './stream-state.js';
import { isRecord, type Json } from './json-value.js';

export class GeminiDialect implements SseDialect {
  readonly #state: StreamState;

  constructor(state: StreamState) {
    this.#state = state;
  }

  handles(event: Json): boolean {
    return Array.isArray(event['candidates']);
  }

  mask(event: Json): unknown[] {
    const state = this.#state;
    const candidates = (event['candidates'] as unknown[]).map((c, position) => {
      if (!isRecord(c)) return state.maskValue(c);
      const index = typeof c['index'] === 'number' ? c['index'] : position;
      const finished = typeof c['finishReason'] === 'string';
      const out = state.rest(c, ['content']);
      const content = c['content'];
      if (!isRecord(content) && !finished) return out;
      const parts: unknown[] = [];
      const rawParts = isRecord(content) && Array.isArray(content['parts']) ? content['parts'] : [];
      for (const part of rawParts) {
        if (!isRecord(part) || typeof part['text'] !== 'string') {
          parts.push(state.maskValue(part));
          continue;
        }
        const thought = part['thought'] === true;
        // A thought reaches the client too (only the recorded answer text leaves it out).
        state.guard(part['text']);
        parts.push({ ...state.rest(part, ['text']), text: state.push(`gemini${thought ? '-thought' : ''}:${index}`, part['text']) });
      }
      if (finished) {
        for (const thought of [true, false]) {
          const tail = state.end(`gemini${thought ? '-thought' : ''}:${index}`);
          if (tail !== '') parts.push(thought ? { text: tail, thought: true } : { text: tail });
        }
      }
      out['content'] = { ...(isRecord(content) ? state.rest(content, ['parts']) : { role: 'model' }), parts };
      return out;
    });
    return [{ ...state.rest(event, ['candidates']), candidates }];
  }
}
