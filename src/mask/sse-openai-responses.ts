// OpenAI responses API stream events:
// - text deltas (`response.output_text`, `.refusal`, `.reasoning_text`,
//   `.reasoning_summary_text`) stream per (output, content or summary) index, and a
//   custom tool call's input (`response.custom_tool_call_input`) per output; what is held
//   goes out as one more delta just before the matching `.done`;
// - function-call and MCP-call argument deltas are held until
//   `response.function_call_arguments.done` / `.mcp_call_arguments.done`, then sent
//   whole, masked as JSON, in one delta before it;
// - a delta's token logprobs are emptied (they would give away what its text holds back);
//   a `.done` keeps its logprobs only when nothing was masked in the answer.
// The SDK's `output_text` joins an answer's `output_text` parts (of one message item and
// of the next), so a value may begin in one part and end in the next. As in
// sse-anthropic.ts, a part's stream goes on into the next `output_text` part: at the
// part's `output_text.done` the stream is carried over, and while it holds text the
// done and the events between the parts (`content_part.done`/`.added`,
// `output_item.done`/`.added`) are held. When the next part's first delta comes, they go
// out and the held text moves into the new part; if anything else comes first, the held
// text goes out, masked, as one more delta of the stopped part, then the held events.
// Each part's text as the client got it (its deltas, joined) is kept, and the events that
// repeat it (`output_text.done`, `content_part.done`, `output_item.done`,
// `response.completed`) carry that text, so they agree with the deltas.

import type { SseDialect } from './sse-dialect.js';
import type { StreamState } from './stream-state.js';
import { isRecord, type Json } from './json-value.js';
import { withoutLogprobs } from './logprobs.js';

/**
 * Responses-API events carrying streamed text, by type: the family (`response.<family>.delta`
 * and `.done`), the field that numbers the part within its output item, and which of the
 * two it is. A response guard reads every one of them: reasoning text reaches the client
 * too (it is left out of the recorded answer text only).
 */
interface TextStream {
  readonly family: string;
  /** Undefined: one stream per output item (a custom tool call's input). */
  readonly index: 'content_index' | 'summary_index' | undefined;
  readonly done: boolean;
}
const textStreams: ReadonlyMap<string, TextStream> = new Map(
  (
    [
      ['output_text', 'content_index'],
      ['refusal', 'content_index'],
      ['reasoning_text', 'content_index'],
      ['reasoning_summary_text', 'summary_index'],
      // A custom tool's input is free text, not JSON: it streams like answer text.
      ['custom_tool_call_input', undefined],
    ] as const
  ).flatMap(([family, index]): Array<[string, TextStream]> => [
    [`response.${family}.delta`, { family, index, done: false }],
    [`response.${family}.done`, { family, index, done: true }],
  ]),
);

/**
 * Responses-API events carrying tool-call arguments (JSON), by type: held until the
 * `.done` of their output item, then sent whole, masked as JSON, in one delta before it
 * (a value split across deltas cannot be masked piece by piece).
 */
const argumentStreams: ReadonlyMap<string, { readonly family: string; readonly done: boolean }> = new Map(
  ['function_call_arguments', 'mcp_call_arguments'].flatMap((family): Array<[string, { family: string; done: boolean }]> => [
    [`response.${family}.delta`, { family, done: false }],
    [`response.${family}.done`, { family, done: true }],
  ]),
);

/** Events that may come between one `output_text` part's done and the next part's first delta. */
const betweenParts = new Set(['response.content_part.done', 'response.content_part.added', 'response.output_item.done', 'response.output_item.added']);
/** Events whose payload repeats the answer's parts (`response.output`). */
const finalResponses = new Set(['response.completed', 'response.incomplete', 'response.failed']);
/** Events held between two parts at most: past this, what is held goes out in the stopped part. */
const maxHeldEvents = 16;

/** An `output_text` part that is done while its stream goes on into the next part. */
interface Carried {
  readonly part: string;
  /** The done and the events after it, raw, held while the stream holds text (empty: they went out). */
  readonly events: Json[];
}

const partKey = (event: Json) => `${event['output_index']}:${event['content_index']}`;
const outputTextKey = (part: string) => `output_text:${part}`;

export class OpenaiResponsesDialect implements SseDialect {
  readonly #state: StreamState;
  /** Token logprobs are emptied only when the plan masks something (a response guard alone does not). */
  readonly #holdsLogprobs: boolean;
  /** Each streamed `output_text` part's text as the client got it, by `output_index:content_index`. */
  readonly #sent = new Map<string, string>();
  #carried: Carried | undefined;

  constructor(state: StreamState) {
    this.#state = state;
    this.#holdsLogprobs = state.plan.profiles.length > 0;
  }

  handles(event: Json): boolean {
    const type = event['type'];
    if (typeof type !== 'string') return false;
    if (textStreams.has(type) || argumentStreams.has(type)) return true;
    // Events that repeat streamed text are rewritten with it once a part has streamed.
    return (this.#sent.size > 0 || this.#carried !== undefined) && (betweenParts.has(type) || finalResponses.has(type));
  }

  mask(event: Json): unknown[] {
    const type = event['type'] as string;
    const carried = this.#carried;
    if (carried) {
      if (betweenParts.has(type)) {
        if (carried.events.length === 0) return [this.#repeat(event)];
        if (carried.events.length < maxHeldEvents) {
          carried.events.push(event);
          return [];
        }
      } else if ((type === 'response.output_text.delta' || type === 'response.output_text.done') && partKey(event) !== carried.part && !this.#state.has(outputTextKey(partKey(event)))) {
        // The next part: the stream goes on in it, and the events held before it go out.
        this.#carried = undefined;
        this.#state.move(outputTextKey(carried.part), outputTextKey(partKey(event)));
        return [...carried.events.map((e) => this.#repeat(e)), ...this.mask(event)];
      }
      return [...this.releaseBefore(), ...this.mask(event)];
    }
    if (type === 'response.output_text.delta' || type === 'response.output_text.done') return this.#outputText(event);
    const stream = textStreams.get(type);
    if (stream) return this.#text(event, stream);
    const args = argumentStreams.get(type);
    return args ? this.#arguments(event, args) : [this.#repeat(event)];
  }

  /** The carried part's held text, masked, as one more delta of it, then the events held after its done. */
  releaseBefore(): unknown[] {
    const carried = this.#carried;
    if (!carried) return [];
    this.#carried = undefined;
    const tail = this.#state.end(outputTextKey(carried.part));
    const out: unknown[] = [];
    if (tail !== '') {
      const done = carried.events[0]!;
      this.#sent.set(carried.part, (this.#sent.get(carried.part) ?? '') + tail);
      out.push({ type: 'response.output_text.delta', sequence_number: done['sequence_number'], item_id: done['item_id'], output_index: done['output_index'], content_index: done['content_index'], delta: tail, ...(this.#holdsLogprobs ? { logprobs: [] } : {}) });
    }
    return [...out, ...carried.events.map((e) => this.#repeat(e))];
  }

  /** An `output_text` delta or done: its stream goes on into the next part (see the top of this file). */
  #outputText(event: Json): unknown[] {
    const state = this.#state;
    const part = partKey(event);
    const key = outputTextKey(part);
    if (event['type'] === 'response.output_text.delta') {
      const delta = event['delta'];
      if (typeof delta !== 'string') return [state.rest(event, [])];
      state.guard(delta);
      const released = state.push(key, delta);
      this.#sent.set(part, (this.#sent.get(part) ?? '') + released);
      const out: Json = { ...state.rest(event, this.#holdsLogprobs ? ['delta', 'logprobs'] : ['delta']), delta: released };
      if (this.#holdsLogprobs && Array.isArray(event['logprobs'])) out['logprobs'] = [];
      return [out];
    }
    if (!state.has(key)) return [this.#repeat(event)];
    const holding = state.heldLength(key) > 0;
    this.#carried = { part, events: holding ? [event] : [] };
    return holding ? [] : [this.#repeat(event)];
  }

  /**
   * An event that repeats streamed `output_text` parts, with each such part's text as the
   * client got it and everything else masked whole (logprobs emptied once a value was masked).
   */
  #repeat(event: Json): Json {
    const state = this.#state;
    const type = event['type'];
    let out: Json;
    if (type === 'response.output_text.done' && this.#sent.has(partKey(event)) && typeof event['text'] === 'string') {
      out = { ...state.rest(event, ['text']), text: this.#sent.get(partKey(event)) };
    } else if (type === 'response.content_part.done' && isRecord(event['part'])) {
      out = { ...state.rest(event, ['part']), part: this.#part(event['part'], partKey(event)) };
    } else if (type === 'response.output_item.done' && isRecord(event['item'])) {
      out = { ...state.rest(event, ['item']), item: this.#item(event['item'], event['output_index']) };
    } else if (finalResponses.has(type as string) && isRecord(event['response']) && Array.isArray(event['response']['output'])) {
      const response = event['response'];
      out = { ...state.rest(event, ['response']), response: { ...state.rest(response, ['output']), output: (response['output'] as unknown[]).map((item, i) => this.#item(item, i)) } };
    } else out = state.rest(event, []);
    return state.masked() ? (withoutLogprobs(out) as Json) : out;
  }

  /** An output item with its streamed parts' text as sent. */
  #item(item: unknown, outputIndex: unknown): unknown {
    const state = this.#state;
    if (!isRecord(item) || !Array.isArray(item['content'])) return state.maskValue(item);
    return { ...state.rest(item, ['content']), content: item['content'].map((part, j) => this.#part(part, `${outputIndex}:${j}`)) };
  }

  /** An `output_text` part that streamed, with its text as sent; any other part masked whole. */
  #part(part: unknown, key: string): unknown {
    const state = this.#state;
    const sent = this.#sent.get(key);
    if (!isRecord(part) || part['type'] !== 'output_text' || typeof part['text'] !== 'string' || sent === undefined) return state.maskValue(part);
    return { ...state.rest(part, ['text']), text: sent };
  }

  #text(event: Json, stream: TextStream): unknown[] {
    const state = this.#state;
    const key = `${stream.family}:${event['output_index']}:${stream.index === undefined ? '' : event[stream.index]}`;
    if (!stream.done) {
      const delta = event['delta'];
      if (typeof delta !== 'string') return [state.rest(event, [])];
      state.guard(delta);
      const released = state.push(key, delta);
      const out: Json = { ...state.rest(event, this.#holdsLogprobs ? ['delta', 'logprobs'] : ['delta']), delta: released };
      if (this.#holdsLogprobs && Array.isArray(event['logprobs'])) out['logprobs'] = [];
      return [out];
    }
    const tail = state.end(key);
    const rest = state.rest(event, []);
    const done = state.masked() ? (withoutLogprobs(rest) as Json) : rest;
    if (tail === '') return [done];
    // What was held goes out as one more delta of its kind, just before the `done`.
    const released: Json = { type: `response.${stream.family}.delta`, sequence_number: event['sequence_number'], item_id: event['item_id'], output_index: event['output_index'] };
    if (stream.index !== undefined) released[stream.index] = event[stream.index];
    released['delta'] = tail;
    return [released, done];
  }

  #arguments(event: Json, args: { readonly family: string; readonly done: boolean }): unknown[] {
    const state = this.#state;
    const key = `${args.family}:${event['output_index']}`;
    if (!args.done) {
      if (typeof event['delta'] !== 'string') return [state.rest(event, [])];
      state.hold(key, event['delta']);
      state.guard(event['delta']);
      return [{ ...state.rest(event, ['delta']), delta: '' }];
    }
    const held = state.take(key) ?? '';
    const done = state.rest(event, []);
    if (held === '') return [done];
    return [{ type: `response.${args.family}.delta`, sequence_number: event['sequence_number'], item_id: event['item_id'], output_index: event['output_index'], delta: state.maskArguments(held) }, done];
  }
}
