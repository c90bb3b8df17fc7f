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

import type { SseDialect } from './sse-dialect.js';
import type { StreamState } from './stream-state.js';
import type { Json } from './json-value.js';
import { withoutLogprobs } from './logprobs.js';

/**
 * Responses-API events carrying streamed text, by type: the family (`response.<family>.delta`
 * and `.done`), the field that numbers the part within its output item, whether it is
 * answer text a response guard reads (reasoning is not), and which of the two it is.
 */
interface TextStream {
  readonly family: string;
  /** Undefined: one stream per output item (a custom tool call's input). */
  readonly index: 'content_index' | 'summary_index' | undefined;
  readonly guarded: boolean;
  readonly done: boolean;
}
const textStreams: ReadonlyMap<string, TextStream> = new Map(
  (
    [
      ['output_text', 'content_index', true],
      ['refusal', 'content_index', true],
      ['reasoning_text', 'content_index', false],
      ['reasoning_summary_text', 'summary_index', false],
      // A custom tool's input is free text, not JSON: it streams like answer text.
      ['custom_tool_call_input', undefined, true],
    ] as const
  ).flatMap(([family, index, guarded]): Array<[string, TextStream]> => [
    [`response.${family}.delta`, { family, index, guarded, done: false }],
    [`response.${family}.done`, { family, index, guarded, done: true }],
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

export class OpenaiResponsesDialect implements SseDialect {
  readonly #state: StreamState;
  /** Token logprobs are emptied only when the plan masks something (a response guard alone does not). */
  readonly #holdsLogprobs: boolean;

  constructor(state: StreamState) {
    this.#state = state;
    this.#holdsLogprobs = state.plan.profiles.length > 0;
  }

  handles(event: Json): boolean {
    const type = event['type'];
    return typeof type === 'string' && (textStreams.has(type) || argumentStreams.has(type));
  }

  mask(event: Json): unknown[] {
    const type = event['type'] as string;
    const stream = textStreams.get(type);
    return stream ? this.#text(event, stream) : this.#arguments(event, argumentStreams.get(type)!);
  }

  #text(event: Json, stream: TextStream): unknown[] {
    const state = this.#state;
    const key = `${stream.family}:${event['output_index']}:${stream.index === undefined ? '' : event[stream.index]}`;
    if (!stream.done) {
      const delta = event['delta'];
      if (typeof delta !== 'string') return [state.rest(event, [])];
      if (stream.guarded) state.guard(delta);
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
