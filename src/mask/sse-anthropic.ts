// Anthropic Messages API stream events: a content block's `text_delta` / `thinking_delta`
// text streams through a masker per block index (a block that starts with text,
// `content_block_start` with a non-empty `text` or `thinking`, starts its stream with
// it); its `input_json_delta` pieces (a tool call's input) are held. At the block's
// `content_block_stop`, what is held goes out first, masked, as one more delta of its
// kind. Other events (`message_start`, `message_delta` …) are not this dialect's: they
// are masked whole.

import type { SseDialect } from './sse-dialect.js';
import type { StreamState } from './stream-state.js';
import { isRecord, omit, type Json } from './json-value.js';

export class AnthropicDialect implements SseDialect {
  readonly #state: StreamState;

  constructor(state: StreamState) {
    this.#state = state;
  }

  handles(event: Json): boolean {
    const type = event['type'];
    return type === 'content_block_start' || type === 'content_block_delta' || type === 'content_block_stop';
  }

  mask(event: Json): unknown[] {
    if (event['type'] === 'content_block_start') return [this.#start(event)];
    // A delta that is no object closes the block's streams like a stop.
    if (event['type'] === 'content_block_delta' && isRecord(event['delta'])) return [this.#delta(event, event['delta'])];
    return this.#stop(event);
  }

  #start(event: Json): Json {
    const state = this.#state;
    const index = event['index'];
    const block = event['content_block'];
    if (!isRecord(block)) return state.rest(event, []);
    const field = block['type'] === 'text' ? 'text' : block['type'] === 'thinking' ? 'thinking' : undefined;
    const piece = field === undefined ? undefined : block[field];
    if (field === undefined || typeof piece !== 'string' || piece === '') return state.rest(event, []);
    if (field === 'text') state.guard(piece);
    const start = { ...(state.maskValue(omit(block, [field])) as Json), [field]: state.push(`anthropic-${field}:${index}`, piece) };
    return { ...state.rest(event, ['content_block']), content_block: start };
  }

  #delta(event: Json, delta: Json): Json {
    const state = this.#state;
    const index = event['index'];
    const kind = delta['type'];
    const field = kind === 'text_delta' ? 'text' : kind === 'thinking_delta' ? 'thinking' : kind === 'input_json_delta' ? 'partial_json' : undefined;
    const piece = field === undefined ? undefined : delta[field];
    if (field === undefined || typeof piece !== 'string') return state.rest(event, []);
    const rest = state.rest(event, ['delta']);
    const others = state.maskValue(omit(delta, [field])) as Json;
    if (field === 'partial_json') {
      state.guard(piece);
      state.hold(`anthropic:${index}`, piece);
      return { ...rest, delta: { ...others, partial_json: '' } };
    }
    if (field === 'text') state.guard(piece);
    return { ...rest, delta: { ...others, [field]: state.push(`anthropic-${field}:${index}`, piece) } };
  }

  #stop(event: Json): unknown[] {
    const state = this.#state;
    const index = event['index'];
    const out: unknown[] = [];
    for (const field of ['text', 'thinking'] as const) {
      const tail = state.end(`anthropic-${field}:${index}`);
      if (tail !== '') out.push({ type: 'content_block_delta', index, delta: { type: `${field}_delta`, [field]: tail } });
    }
    const held = state.take(`anthropic:${index}`);
    if (held !== undefined && held !== '') out.push({ type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: state.maskArguments(held) } });
    out.push(state.rest(event, []));
    return out;
  }
}
