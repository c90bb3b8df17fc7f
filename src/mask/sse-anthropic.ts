// Anthropic Messages API stream events: a content block's `text_delta` / `thinking_delta`
// text streams through a masker per block index (a block that starts with text,
// `content_block_start` with a non-empty `text` or `thinking`, starts its stream with
// it); its `input_json_delta` pieces (a tool call's input) are held. At the block's
// `content_block_stop`, what is held goes out first, masked, as one more delta of its
// kind. Other events (`message_start`, `message_delta` …) are not this dialect's: they
// are masked whole.
// Clients join a message's text blocks into one text (and its thinking blocks into
// another), and a model may split its text into several blocks (citations do): a value
// may begin in one block and end in the next. So a text block's stream goes on into the
// next block of its kind: at a block's stop its stream is carried over, and the stop
// itself is held while the stream holds text. If the next block is of the same kind,
// the stop goes out and the held text continues in the new block (it moves there);
// if anything else comes first, what is held goes out, masked, as one more delta of the
// stopped block, then its stop. `ping` events in between change nothing.

import type { SseDialect } from './sse-dialect.js';
import type { StreamState } from './stream-state.js';
import { isRecord, omit, type Json } from './json-value.js';

type TextField = 'text' | 'thinking';

/** A text or thinking block that stopped while its stream goes on into the next block of its kind. */
interface Carried {
  readonly field: TextField;
  readonly index: unknown;
  /** The block's stop event, held while the stream holds text (undefined: it went out). */
  readonly stop: Json | undefined;
}

const streamKey = (field: TextField, index: unknown) => `anthropic-${field}:${index}`;

/** The streamed field of a block that starts (`content_block.type` text or thinking). */
function blockField(block: unknown): TextField | undefined {
  if (!isRecord(block)) return undefined;
  return block['type'] === 'text' ? 'text' : block['type'] === 'thinking' ? 'thinking' : undefined;
}

export class AnthropicDialect implements SseDialect {
  readonly #state: StreamState;
  #carried: Carried | undefined;

  constructor(state: StreamState) {
    this.#state = state;
  }

  handles(event: Json): boolean {
    const type = event['type'];
    return type === 'content_block_start' || type === 'content_block_delta' || type === 'content_block_stop' || (type === 'ping' && this.#carried !== undefined);
  }

  mask(event: Json): unknown[] {
    const carried = this.#carried;
    if (carried) {
      if (event['type'] === 'ping') return [this.#state.rest(event, [])];
      const to = streamKey(carried.field, event['index']);
      if (event['type'] === 'content_block_start' && blockField(event['content_block']) === carried.field && event['index'] !== carried.index && !this.#state.has(to)) {
        // The next block of the same kind: the stream goes on in it.
        this.#carried = undefined;
        this.#state.move(streamKey(carried.field, carried.index), to);
        return [...(carried.stop ? [carried.stop] : []), this.#start(event)];
      }
      return [...this.releaseBefore(), ...this.mask(event)];
    }
    if (event['type'] === 'content_block_start') return [this.#start(event)];
    // A delta that is no object closes the block's streams like a stop.
    if (event['type'] === 'content_block_delta' && isRecord(event['delta'])) return [this.#delta(event, event['delta'])];
    return this.#stop(event);
  }

  #start(event: Json): Json {
    const state = this.#state;
    const index = event['index'];
    const block = event['content_block'];
    const field = blockField(block);
    if (!isRecord(block) || field === undefined) return state.rest(event, []);
    const piece = block[field];
    if (typeof piece !== 'string' || piece === '') return state.rest(event, []);
    // Thinking too: it reaches the client (only the recorded answer text leaves it out).
    state.guard(piece);
    const start = { ...(state.maskValue(omit(block, [field])) as Json), [field]: state.push(streamKey(field, index), piece) };
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
    state.guard(piece);
    return { ...rest, delta: { ...others, [field]: state.push(streamKey(field, index), piece) } };
  }

  #stop(event: Json): unknown[] {
    const state = this.#state;
    const index = event['index'];
    const out: unknown[] = [];
    const held = state.take(`anthropic:${index}`);
    for (const field of ['text', 'thinking'] as const) {
      const key = streamKey(field, index);
      if (this.#carried === undefined && held === undefined && state.has(key)) {
        // Its stream may go on in the next block of this kind (see the top of this file).
        this.#carried = { field, index, stop: state.heldLength(key) > 0 ? state.rest(event, []) : undefined };
        continue;
      }
      const tail = state.end(key);
      if (tail !== '') out.push({ type: 'content_block_delta', index, delta: { type: `${field}_delta`, [field]: tail } });
    }
    if (held !== undefined && held !== '') out.push({ type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: state.maskArguments(held) } });
    if (this.#carried?.stop === undefined) out.push(state.rest(event, []));
    return out;
  }

  /** The carried stream's held text, masked, as one more delta of its block, then the block's stop if it was held. */
  releaseBefore(): unknown[] {
    const carried = this.#carried;
    if (!carried) return [];
    this.#carried = undefined;
    const tail = this.#state.end(streamKey(carried.field, carried.index));
    const out: unknown[] = [];
    if (tail !== '') out.push({ type: 'content_block_delta', index: carried.index, delta: { type: `${carried.field}_delta`, [carried.field]: tail } });
    if (carried.stop) out.push(carried.stop);
    return out;
  }
}
