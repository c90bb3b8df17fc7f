// Masks a newline-delimited JSON answer (`application/x-ndjson`, Ollama's native
// streaming: `/api/chat`, `/api/generate`) line by line, as lines arrive:
// - the streamed text of an Ollama line (`message.content`, `message.thinking` of a chat
//   line; `response`, `thinking` of a generate line) goes through one StreamTextMasker
//   per field, so a value split across lines at any offset is masked whole; what is held
//   is released in the line that says `"done": true` (or, if the answer ends without
//   one, in one more line shaped like the last);
// - every other string of such a line, and every line of another JSON shape, is masked
//   whole (a JSON string cannot span lines, so a line is a complete document);
// - a line that is not JSON is masked as text;
// - with `streamsOtherShapes` (a stream by its type, `application/stream+json`, as
//   Cohere's v1 chat streams `{"event_type":"text-generation","text":…}`), a line of
//   another shape streams its text as an SSE event of no known API does (sse-generic.ts:
//   a string under `text`, `content` … per path, across lines); what a path holds goes
//   out, masked, in one more line shaped like the last that carried it, just before a
//   final line (`"is_finished": true` or `"done": true`) or at the end. Not for
//   x-ndjson: a JSON Lines file of records is no stream, and text must not move between
//   its records.
// A line longer than `maxLineBytes` fails the stream (the caller turns that into an
// error, never raw data).

import type { MaskPlan } from './plan.js';
import { totalCount, type EntityCounts } from './operators.js';
import { isRecord, type Json } from './json-value.js';
import { StreamState } from './stream-state.js';
import { GenericJsonDialect } from './sse-generic.js';

export interface NdjsonMaskerOptions {
  readonly plan: MaskPlan;
  readonly counts: EntityCounts;
  readonly maxLineBytes?: number;
  /** Called with each piece of raw answer text as it is read (for response guards). */
  readonly onText?: (text: string) => void;
  /** Lines of other shapes stream their text across lines (an `application/stream+json` answer). */
  readonly streamsOtherShapes?: boolean | undefined;
}

/** Streamed text fields of an Ollama line: `[object holding it (undefined: the line), field]`. */
const streamedFields: readonly (readonly [string | undefined, string])[] = [
  ['message', 'content'],
  ['message', 'thinking'],
  [undefined, 'response'],
  [undefined, 'thinking'],
];

export class NdjsonMasker {
  readonly #state: StreamState;
  readonly #maxLineBytes: number;
  readonly #decoder = new TextDecoder();
  #pending = '';
  /** The last streamed line as written (its text fields emptied), for a tail line this masker adds. */
  #lastLine: Json | undefined;
  readonly #generic: GenericJsonDialect | undefined;

  constructor(options: NdjsonMaskerOptions) {
    this.#state = new StreamState(options);
    this.#maxLineBytes = options.maxLineBytes ?? 1024 * 1024;
    this.#generic = options.streamsOtherShapes ? new GenericJsonDialect(this.#state) : undefined;
  }

  /** Raw upstream bytes in; masked, complete lines out. */
  push(chunk: Uint8Array): string {
    this.#pending += this.#decoder.decode(chunk, { stream: true });
    let out = '';
    for (;;) {
      const end = this.#pending.indexOf('\n');
      if (end < 0) break;
      if (end > this.#maxLineBytes) throw new Error(`an NDJSON line exceeds ${this.#maxLineBytes} bytes`);
      out += this.#line(this.#pending.slice(0, end)) + '\n';
      this.#pending = this.#pending.slice(end + 1);
    }
    if (this.#pending.length > this.#maxLineBytes) throw new Error(`an NDJSON line exceeds ${this.#maxLineBytes} bytes`);
    return out;
  }

  /** End of the upstream body: the last (unterminated) line, then anything held. */
  end(): string {
    this.#pending += this.#decoder.decode();
    let out = this.#pending === '' ? '' : this.#line(this.#pending);
    this.#pending = '';
    const held = this.#genericTail();
    if (held !== '') out += `${out === '' ? '' : '\n'}${held}`;
    if (this.#state.textKeys().length > 0) {
      // Ended without `"done": true`: what is held goes out in one more line like the last.
      const before = totalCount(this.#state.counts);
      const tail = this.#streamed(this.#lastLine ?? {}, true);
      if (tail !== undefined && (totalCount(this.#state.counts) > before || streamedFields.some(([h, f]) => streamedValue(tail, h, f)))) out += `${out === '' ? '' : '\n'}${JSON.stringify(tail)}\n`;
    }
    return out;
  }

  #line(raw: string): string {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '') return line;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      this.#state.guard(line);
      return this.#state.maskText(line);
    }
    const streamed = isRecord(json) ? this.#streamed(json, json['done'] === true) : undefined;
    if (streamed !== undefined) return JSON.stringify(streamed);
    const generic = this.#generic;
    if (generic && isRecord(json)) {
      // A final line repeats the text whole (Cohere's `response.text`): masked whole, after what the paths held.
      if (json['is_finished'] === true || json['done'] === true) return this.#genericTail() + this.#state.maskJsonText(line);
      if (generic.handles(json)) return generic.mask(json).map((e) => JSON.stringify(e)).join('\n');
    }
    return this.#state.maskJsonText(line);
  }

  /** What the generic paths hold, masked, as lines (each ending in a newline). */
  #genericTail(): string {
    return (this.#generic?.releaseBefore(undefined) ?? []).map((e) => `${JSON.stringify(e)}\n`).join('');
  }

  /**
   * The line with its streamed text fields through their maskers (ended when `done`) and
   * every other value masked whole; undefined when it has no streamed field (and none is held).
   */
  #streamed(line: Json, done: boolean): Json | undefined {
    const state = this.#state;
    let any = false;
    const out = { ...line };
    for (const [holder, field] of streamedFields) {
      const key = `${holder ?? ''}.${field}`;
      const value = streamedValue(line, holder, field);
      if (typeof value !== 'string' && !(done && state.has(key))) continue;
      any = true;
      const piece = typeof value === 'string' ? value : '';
      // Thinking too: it reaches the client (only the recorded answer text leaves it out).
      if (piece !== '') state.guard(piece);
      const released = state.stream(key, piece, done);
      if (holder === undefined) out[field] = released;
      else out[holder] = { ...(isRecord(out[holder]) ? (out[holder] as Json) : {}), [field]: released };
    }
    if (!any) return undefined;
    // Every other value of the line is masked whole.
    for (const [k, v] of Object.entries(line)) {
      if (streamedFields.some(([holder, field]) => holder === undefined && field === k && typeof v === 'string')) continue;
      if (isRecord(v) && k === 'message') {
        const rest = state.maskValue(omitStrings(v, ['content', 'thinking'])) as Json;
        out[k] = { ...rest, ...pick(out[k] as Json, ['content', 'thinking']) };
      } else out[k] = state.maskValue(v);
    }
    this.#lastLine = { ...out, done: false };
    for (const [holder, field] of streamedFields) {
      const owner = holder === undefined ? this.#lastLine : this.#lastLine[holder];
      if (isRecord(owner) && typeof owner[field] === 'string') {
        if (holder === undefined) this.#lastLine[field] = '';
        else this.#lastLine[holder] = { ...owner, [field]: '' };
      }
    }
    return out;
  }
}

/** The string at `holder.field` (or the line's own `field`), if there is one. */
function streamedValue(line: Json, holder: string | undefined, field: string): string | undefined {
  const owner = holder === undefined ? line : line[holder];
  const value = isRecord(owner) ? owner[field] : undefined;
  return typeof value === 'string' ? value : undefined;
}

function omitStrings(value: Json, keys: readonly string[]): Json {
  const out: Json = {};
  for (const [k, v] of Object.entries(value)) if (!(keys.includes(k) && typeof v === 'string')) out[k] = v;
  return out;
}

function pick(value: Json, keys: readonly string[]): Json {
  const out: Json = {};
  for (const k of keys) if (typeof value[k] === 'string') out[k] = value[k];
  return out;
}
