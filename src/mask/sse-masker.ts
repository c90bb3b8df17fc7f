// Masks an SSE answer event by event (WHATWG HTML §9.2 event stream). Each JSON event
// goes to the dialect whose streaming event it is, which streams its text through a
// bounded hold-back and holds tool-call arguments until complete:
// - OpenAI chat/completions chunks (`choices`): sse-openai-chat.ts;
// - OpenAI responses API text and argument deltas: sse-openai-responses.ts;
// - Anthropic Messages content blocks: sse-anthropic.ts;
// - Google Gemini chunks (`candidates`): sse-gemini.ts;
// - Cohere v2 chat events: sse-cohere.ts;
// - in a stream of no known API, strings under keys that carry streamed text in other
//   APIs (`text`, `content`, `delta`, `token` …): sse-generic.ts.
// Data that is not JSON is masked as one running text across events (same hold-back);
// other JSON events have their strings masked whole.
// Every event written is a complete, well-formed event; an event that grows past
// `maxEventBytes` fails the stream (the caller turns that into an error, not raw data).

import type { MaskPlan } from './plan.js';
import type { EntityCounts } from './operators.js';
import { isRecord, type Json } from './json-value.js';
import { withoutLogprobs } from './logprobs.js';
import { dataLines, parseEvent, SseEventReader } from './sse-framing.js';
import type { SseDialect } from './sse-dialect.js';
import { StreamState } from './stream-state.js';
import { OpenaiChatDialect } from './sse-openai-chat.js';
import { OpenaiResponsesDialect } from './sse-openai-responses.js';
import { AnthropicDialect } from './sse-anthropic.js';
import { CohereDialect } from './sse-cohere.js';
import { GeminiDialect } from './sse-gemini.js';
import { GenericJsonDialect } from './sse-generic.js';

export interface SseMaskerOptions {
  readonly plan: MaskPlan;
  readonly counts: EntityCounts;
  readonly maxEventBytes?: number;
  /** Called with each piece of raw answer text as it is read (for response guards). */
  readonly onText?: (text: string) => void;
}

/** The running text of a plain-text stream. */
const rawKey = 'raw';

export class SseMasker {
  readonly #state: StreamState;
  readonly #reader: SseEventReader;
  readonly #chat: OpenaiChatDialect;
  /** In the order they are asked: the first that handles an event masks it. */
  readonly #dialects: readonly SseDialect[];
  /** Asked last, and only while the stream has sent no event of a known API. */
  readonly #generic: GenericJsonDialect;
  /** The stream has sent plain-text data: every later event is part of that text. */
  #plain = false;
  /** The upstream names its events (`event:` lines): so are the events released out of turn. */
  #namesEvents = false;

  constructor(options: SseMaskerOptions) {
    this.#state = new StreamState(options);
    this.#reader = new SseEventReader(options.maxEventBytes ?? 1024 * 1024);
    this.#chat = new OpenaiChatDialect(this.#state);
    this.#generic = new GenericJsonDialect(this.#state);
    this.#dialects = [new OpenaiResponsesDialect(this.#state), new AnthropicDialect(this.#state), new CohereDialect(this.#state), new GeminiDialect(this.#state), this.#chat, this.#generic];
  }

  /** Raw upstream bytes in; masked, complete events out. */
  push(chunk: Uint8Array): string {
    let out = '';
    for (const block of this.#reader.push(chunk)) out += this.#event(block, '\n\n');
    return out;
  }

  /** End of the upstream body: the last (unterminated) event, then anything held. */
  end(): string {
    const state = this.#state;
    const last = this.#reader.end();
    let out = last === undefined ? '' : this.#event(last, '\n\n');
    out += this.#releaseHeld(undefined, undefined);
    const rawTail = state.end(rawKey);
    if (rawTail !== '') out += `${dataLines(rawTail)}\n\n`;
    let rest = '';
    for (const key of state.textKeys()) rest += state.end(key);
    for (const key of state.heldKeys()) rest += state.maskArguments(state.take(key)!);
    // An answer cut before its finish event: release what was held as a plain data line.
    if (rest !== '') out += `data: ${JSON.stringify({ object: 'gatehouse.masked_tail', text: rest })}\n\n`;
    return out;
  }

  #event(block: string, terminator: string): string {
    const state = this.#state;
    const event = parseEvent(block);
    // Every field but `data:` (`event:`, `id:`, …) is masked whole: its value is the
    // upstream's bytes too. Comments' text is dropped.
    const head = event.fields.map((line) => state.maskText(line)).filter((line) => line !== '').map((line) => `${line}\n`).join('');
    if (event.fields.some((line) => line.startsWith('event:'))) this.#namesEvents = true;
    const data = event.data;
    if (data === undefined) {
      if (head !== '') return `${head}${terminator}`;
      // A comment alone is the upstream's keep-alive (`: ping` while a model thinks): an
      // empty comment keeps the client's connection (and its proxies) alive without
      // passing on the upstream's words.
      return event.comment ? `:${terminator}` : '';
    }
    if (data === '[DONE]') {
      const released = this.#releaseHeld(undefined, undefined);
      // A plain-text stream's held tail goes out (masked) before the end marker.
      const tail = state.end(rawKey);
      // So do chat choices that never sent a finish event: after [DONE] no client reads.
      const held = this.#chat.heldAtDone();
      return `${released}${tail === '' ? '' : `${dataLines(tail)}\n\n`}${held === undefined ? '' : `data: ${JSON.stringify(held)}\n\n`}${head}data: [DONE]${terminator}`;
    }
    const json = this.#plain ? undefined : parseJsonEvent(data);
    if (json === undefined) {
      // Plain-text data (a non-OpenAI stream): one running text across events, with the
      // same hold-back; an event with nothing releasable yet is not sent.
      this.#plain = true;
      const before = this.#releaseHeld(undefined, undefined);
      state.guard(data);
      const released = state.push(rawKey, data);
      return before + (released === '' ? '' : `${head}${dataLines(released)}${terminator}`);
    }
    const dialect = isRecord(json) ? this.#dialects.find((d) => d.handles(json)) : undefined;
    if (dialect !== undefined && dialect !== this.#generic) this.#generic.knownApi();
    // What other dialects hold back goes out first, in its turn.
    const before = this.#releaseHeld(dialect, isRecord(json) ? json : undefined);
    if (dialect === undefined) {
      // No text streams through an event of another shape: masked in its own text, as a
      // JSON body (numbers as the upstream wrote them).
      let masked = state.maskJsonText(data);
      // `response.completed` repeats the answer's logprobs (see sse-openai-chat.ts).
      if (state.masked() && masked.includes('"logprobs"')) masked = JSON.stringify(withoutLogprobs(JSON.parse(masked)));
      return `${before}${head}${dataLines(masked)}${terminator}`;
    }
    const events = dialect.mask(json as Json);
    // An event this masker adds (a released tail before a `done`) names its own type.
    return before + events.map((e) => `${isRecord(e) && typeof e['type'] === 'string' ? head.replace(/^event:.*$/m, `event: ${e['type']}`) : head}data: ${JSON.stringify(e)}${terminator}`).join('');
  }

  /** The events dialects other than `handling` hold back, written before `event` (undefined: no JSON event). */
  #releaseHeld(handling: SseDialect | undefined, event: Json | undefined): string {
    let out = '';
    for (const dialect of this.#dialects) {
      if (dialect === handling || !dialect.releaseBefore) continue;
      for (const e of dialect.releaseBefore(event)) {
        const name = this.#namesEvents && isRecord(e) && typeof e['type'] === 'string' ? `event: ${e['type']}\n` : '';
        out += `${name}data: ${JSON.stringify(e)}\n\n`;
      }
    }
    return out;
  }
}

/**
 * The event's data as JSON when it is an object or array; undefined otherwise. A piece
 * of plain text such as `5` or `true` parses as JSON too, and masking it on its own
 * would release the digits of a number split across events, ahead of the text held
 * before them. Once a stream has sent plain text, all of its data is one running text.
 */
function parseJsonEvent(data: string): object | undefined {
  try {
    const json: unknown = JSON.parse(data);
    return typeof json === 'object' && json !== null ? json : undefined;
  } catch {
    return undefined;
  }
}
