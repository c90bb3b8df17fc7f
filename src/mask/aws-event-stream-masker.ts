// Masks an AWS event stream (`application/vnd.amazon.eventstream`: Bedrock's
// InvokeModelWithResponseStream and ConverseStream) frame by frame. The framing is
// binary — per message: total length, headers length, prelude CRC32, headers, payload,
// message CRC32 — so, passed as bytes, the model's text went out unmasked.
// - `chunk` events (InvokeModelWithResponseStream) carry the model's own stream event,
//   base64 in `bytes`: each goes through an SseMasker (Anthropic's events on Bedrock
//   stream and hold as on Anthropic's API) and every event it releases becomes a frame.
// - ConverseStream: `contentBlockDelta` text (`delta.text`, `delta.reasoningContent.text`)
//   streams through a masker per block; a tool call's `delta.toolUse.input` pieces are
//   held; both are released, masked, in one more delta frame before `contentBlockStop`.
//   Clients join a message's text blocks (citations split the text into several), so a
//   text (or reasoning) block's stream goes on into the next block of its kind: at its
//   `contentBlockStop` the stream is carried over and the stop frame held while the
//   stream holds text. If the next frame is a delta of the same kind for another block,
//   the stop goes out and the held text continues in that block; if anything else comes,
//   the held text goes out, masked, in one more delta of the stopped block, then its stop.
// - Every other event's JSON payload is masked whole.
// A frame whose CRCs do not match, or that is longer than `maxFrameBytes`, fails the
// stream (the caller turns that into an error, never raw data).

import { crc32 } from 'node:zlib';
import type { MaskPlan } from './plan.js';
import type { EntityCounts } from './operators.js';
import { isRecord, type Json } from './json-value.js';
import { SseMasker } from './sse-masker.js';
import { StreamState } from './stream-state.js';

export interface EventStreamMaskerOptions {
  readonly plan: MaskPlan;
  readonly counts: EntityCounts;
  readonly maxFrameBytes?: number;
  readonly onText?: (text: string) => void;
}

export class EventStreamMasker {
  readonly #state: StreamState;
  readonly #maxFrameBytes: number;
  readonly #chunks: SseMasker;
  readonly #input = new Map<unknown, string>();
  /** A stopped text or reasoning block whose stream goes on (see above); its stop frame while held. */
  #carried: { readonly field: 'text' | 'reasoning'; readonly index: unknown; readonly stop: Buffer | undefined } | undefined;
  #pending: Buffer = Buffer.alloc(0);

  constructor(options: EventStreamMaskerOptions) {
    this.#state = new StreamState(options);
    this.#maxFrameBytes = options.maxFrameBytes ?? 1024 * 1024;
    this.#chunks = new SseMasker({ plan: options.plan, counts: options.counts, onText: options.onText });
  }

  /** Raw upstream bytes in; masked, complete frames out. */
  push(chunk: Uint8Array): Buffer {
    this.#pending = this.#pending.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.#pending, chunk]);
    const out: Buffer[] = [];
    while (this.#pending.length >= 12) {
      const total = this.#pending.readUInt32BE(0);
      if (total < 16 || total > this.#maxFrameBytes) throw new Error(`an event stream frame of ${total} bytes (limit ${this.#maxFrameBytes})`);
      if (this.#pending.length < total) break;
      out.push(...this.#frame(this.#pending.subarray(0, total)));
      this.#pending = this.#pending.subarray(total);
    }
    return Buffer.concat(out);
  }

  /** End of the upstream body: a cut frame fails; what is held is released in frames of its own. */
  end(): Buffer {
    if (this.#pending.length > 0) throw new Error('the event stream ends inside a frame');
    const out: Buffer[] = this.#releaseCarried();
    const tail = this.#chunks.end();
    for (const data of dataOf(tail)) out.push(encodeFrame(eventHeaders('chunk'), Buffer.from(JSON.stringify({ bytes: Buffer.from(data).toString('base64') }))));
    // Blocks that never sent their contentBlockStop.
    const blocks = new Set<unknown>(this.#input.keys());
    for (const key of this.#state.textKeys()) blocks.add(Number(key.slice(key.indexOf(':') + 1)));
    for (const index of blocks) {
      const release = this.#release(index);
      if (release) out.push(encodeFrame(eventHeaders('contentBlockDelta'), Buffer.from(JSON.stringify(release))));
    }
    return Buffer.concat(out);
  }

  #frame(frame: Buffer): Buffer[] {
    const state = this.#state;
    const headersLength = frame.readUInt32BE(4);
    if (frame.readUInt32BE(8) !== crc32(frame.subarray(0, 8)) || frame.readUInt32BE(frame.length - 4) !== crc32(frame.subarray(0, frame.length - 4))) {
      throw new Error('an event stream frame fails its CRC check');
    }
    if (12 + headersLength > frame.length - 4) throw new Error('an event stream frame with headers past its end');
    const headerBytes = frame.subarray(12, 12 + headersLength);
    const headers = parseHeaders(headerBytes);
    const payload = frame.subarray(12 + headersLength, frame.length - 4);
    const type = headers.get(':event-type');
    let json: unknown;
    try {
      json = JSON.parse(payload.toString('utf8'));
    } catch {
      return [...this.#releaseCarried(), encodeFrame(headerBytes, Buffer.from(state.maskText(payload.toString('utf8'))))];
    }
    if (!isRecord(json)) return [...this.#releaseCarried(), encodeFrame(headerBytes, Buffer.from(state.maskJsonText(payload.toString('utf8'))))];
    const carried = this.#carried;
    if (carried) {
      const index = json['contentBlockIndex'];
      if (type === 'contentBlockDelta' && isRecord(json['delta']) && deltaField(json['delta']) === carried.field && index !== carried.index && !state.has(`${carried.field}:${String(index)}`)) {
        // The next block of the same kind: the stream goes on in it.
        this.#carried = undefined;
        state.move(`${carried.field}:${String(carried.index)}`, `${carried.field}:${String(index)}`);
        return [...(carried.stop ? [carried.stop] : []), encodeFrame(headerBytes, Buffer.from(JSON.stringify(this.#delta(json))))];
      }
      return [...this.#releaseCarried(), ...this.#frame(frame)];
    }
    if (type === 'chunk' && typeof json['bytes'] === 'string') {
      // The model's own event, base64: masked as the stream event it is.
      const inner = Buffer.from(json['bytes'], 'base64').toString('utf8').replace(/\r?\n/g, ' ');
      const rest = state.rest(json, ['bytes']);
      return dataOf(this.#chunks.push(Buffer.from(`data: ${inner}\n\n`))).map((data) => encodeFrame(headerBytes, Buffer.from(JSON.stringify({ ...rest, bytes: Buffer.from(data).toString('base64') }))));
    }
    if (type === 'contentBlockDelta' && isRecord(json['delta'])) return [encodeFrame(headerBytes, Buffer.from(JSON.stringify(this.#delta(json))))];
    if (type === 'contentBlockStop') {
      const index = json['contentBlockIndex'];
      const stop = encodeFrame(headerBytes, Buffer.from(state.maskJsonText(payload.toString('utf8'))));
      const field = this.#input.has(index) ? undefined : (['text', 'reasoning'] as const).find((f) => state.has(`${f}:${String(index)}`));
      const release = this.#release(index, field);
      const out = release ? [encodeFrame(eventHeaders('contentBlockDelta'), Buffer.from(JSON.stringify(release)))] : [];
      if (field === undefined) return [...out, stop];
      // Its stream may go on in the next block of its kind.
      const held = state.heldLength(`${field}:${String(index)}`) > 0;
      this.#carried = { field, index, stop: held ? stop : undefined };
      return held ? out : [...out, stop];
    }
    return [encodeFrame(headerBytes, Buffer.from(state.maskJsonText(payload.toString('utf8'))))];
  }

  /** A ConverseStream delta: its text through the block's masker, its tool input held. */
  #delta(event: Json): Json {
    const state = this.#state;
    const index = event['contentBlockIndex'];
    const delta = event['delta'] as Json;
    const out: Json = state.rest(event, ['delta']);
    const d: Json = state.rest(delta, ['text', 'reasoningContent', 'toolUse']);
    if (typeof delta['text'] === 'string') {
      state.guard(delta['text']);
      d['text'] = state.push(`text:${String(index)}`, delta['text']);
    }
    const reasoning = delta['reasoningContent'];
    if (isRecord(reasoning)) {
      const r = state.rest(reasoning, ['text']);
      if (typeof reasoning['text'] === 'string') {
        // Reasoning reaches the client too (only the recorded answer text leaves it out).
        state.guard(reasoning['text']);
        r['text'] = state.push(`reasoning:${String(index)}`, reasoning['text']);
      }
      d['reasoningContent'] = r;
    }
    const tool = delta['toolUse'];
    if (isRecord(tool)) {
      const input = typeof tool['input'] === 'string' ? tool['input'] : '';
      state.guard(input);
      this.#input.set(index, (this.#input.get(index) ?? '') + input);
      d['toolUse'] = { ...state.rest(tool, ['input']), input: '' };
    }
    out['delta'] = d;
    return out;
  }

  /** The carried stream's held text, masked, in one more delta frame of its block, then the block's stop frame if it was held. */
  #releaseCarried(): Buffer[] {
    const carried = this.#carried;
    if (!carried) return [];
    this.#carried = undefined;
    const tail = this.#state.end(`${carried.field}:${String(carried.index)}`);
    const out: Buffer[] = [];
    if (tail !== '') out.push(encodeFrame(eventHeaders('contentBlockDelta'), Buffer.from(JSON.stringify({ contentBlockIndex: carried.index, delta: carried.field === 'text' ? { text: tail } : { reasoningContent: { text: tail } } }))));
    if (carried.stop) out.push(carried.stop);
    return out;
  }

  /** What block `index` still holds (but its `carry` stream), as one more delta event; undefined when nothing is held. */
  #release(index: unknown, carry?: 'text' | 'reasoning'): Json | undefined {
    const delta: Json = {};
    const text = carry === 'text' ? '' : this.#state.end(`text:${String(index)}`);
    if (text !== '') delta['text'] = text;
    const reasoning = carry === 'reasoning' ? '' : this.#state.end(`reasoning:${String(index)}`);
    if (reasoning !== '') delta['reasoningContent'] = { text: reasoning };
    const input = this.#input.get(index);
    this.#input.delete(index);
    if (input !== undefined && input !== '') delta['toolUse'] = { input: this.#state.maskArguments(input) };
    return Object.keys(delta).length === 0 ? undefined : { contentBlockIndex: index, delta };
  }

}

/** Which text a ConverseStream delta carries: `text`, or `reasoningContent.text`. */
function deltaField(delta: Json): 'text' | 'reasoning' | undefined {
  if (typeof delta['text'] === 'string') return 'text';
  return isRecord(delta['reasoningContent']) && typeof delta['reasoningContent']['text'] === 'string' ? 'reasoning' : undefined;
}

/** The `data:` of each event in SSE text an SseMasker wrote (one line each: it writes JSON). */
function dataOf(sse: string): string[] {
  const out: string[] = [];
  for (const block of sse.split('\n\n')) {
    const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
    if (data !== '') out.push(data);
  }
  return out;
}

/** An event stream message: prelude (lengths and their CRC), headers, payload, message CRC. */
export function encodeFrame(headers: Uint8Array, payload: Uint8Array): Buffer {
  const total = 16 + headers.length + payload.length;
  const frame = Buffer.alloc(total);
  frame.writeUInt32BE(total, 0);
  frame.writeUInt32BE(headers.length, 4);
  frame.writeUInt32BE(crc32(frame.subarray(0, 8)), 8);
  frame.set(headers, 12);
  frame.set(payload, 12 + headers.length);
  frame.writeUInt32BE(crc32(frame.subarray(0, total - 4)), total - 4);
  return frame;
}

/** String headers (type 7) of an event message. */
export function encodeHeaders(headers: Readonly<Record<string, string>>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of Object.entries(headers)) {
    const n = Buffer.from(name);
    const v = Buffer.from(value);
    const head = Buffer.alloc(1 + n.length + 3);
    head.writeUInt8(n.length, 0);
    n.copy(head, 1);
    head.writeUInt8(7, 1 + n.length);
    head.writeUInt16BE(v.length, 2 + n.length);
    parts.push(head, v);
  }
  return Buffer.concat(parts);
}

function eventHeaders(type: string): Buffer {
  return encodeHeaders({ ':event-type': type, ':content-type': 'application/json', ':message-type': 'event' });
}

/** The string headers of a message (other types are stepped over). */
function parseHeaders(bytes: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  const fixed: Record<number, number> = { 0: 0, 1: 0, 2: 1, 3: 2, 4: 4, 5: 8, 8: 8, 9: 16 };
  for (let at = 0; at < bytes.length; ) {
    const nameLength = bytes.readUInt8(at);
    const name = bytes.subarray(at + 1, at + 1 + nameLength).toString('utf8');
    at += 1 + nameLength;
    const type = bytes.readUInt8(at);
    at += 1;
    if (type === 6 || type === 7) {
      const length = bytes.readUInt16BE(at);
      if (type === 7) out.set(name, bytes.subarray(at + 2, at + 2 + length).toString('utf8'));
      at += 2 + length;
    } else if (type in fixed) at += fixed[type]!;
    else throw new Error(`an event stream header of unknown type ${type}`);
  }
  return out;
}

