// Masks an OpenAI-style SSE answer event by event (WHATWG HTML §9.2 event stream):
// - chat.completion.chunk: `choices[].delta.content` / `.refusal` and completion
//   `choices[].text` go through a StreamTextMasker per choice, so text is released
//   with a bounded hold-back; what is held is released (masked) in the choice's
//   finish event. `delta.tool_calls[].function.arguments` are held until the choice
//   finishes, then sent whole, masked as JSON, in that finish event.
// - chat deltas of reasoning models behind OpenAI-compatible servers (`reasoning_content`
//   from vLLM / DeepSeek, `reasoning` from Ollama / OpenRouter), and an audio answer's
//   `delta.audio.transcript`, stream like `content`.
// - responses API: the text deltas (`response.output_text`, `.refusal`, `.reasoning_text`,
//   `.reasoning_summary_text`) per (output, content or summary) index, and custom tool
//   call input (`response.custom_tool_call_input`) per output, released in the matching
//   `.done`; function-call and MCP-call argument deltas held until
//   `response.function_call_arguments.done` / `.mcp_call_arguments.done`. Other events
//   (and every other string in any event) are masked whole.
// - Anthropic Messages API: `content_block_delta` text (`text_delta`, `thinking_delta`)
//   per block index, released in its `content_block_stop`; `input_json_delta` held until
//   then and sent whole, masked as JSON, in one delta before the stop.
// - Gemini chunks (`candidates[].content.parts[].text`) per candidate, released in the
//   chunk with the candidate's `finishReason`.
// - Cohere v2 chat: `content-delta` text per index (released at `content-end`), the
//   tool plan, and `tool-call-delta` arguments held until `tool-call-end`.
// - data that is not JSON is masked as one running text across events (same
//   hold-back); events of other JSON shapes have their strings masked whole.
// Every event written is a complete, well-formed event; an event that grows past
// `maxEventBytes` fails the stream (the caller turns that into an error, not raw data).

import type { MaskPlan } from './plan.js';
import { applyFindings, totalCount, type EntityCounts } from './operators.js';
import { maskJsonText, maskJsonValue } from './json-masker.js';
import { StreamTextMasker } from './stream-masker.js';

type Json = Record<string, unknown>;

export interface SseMaskerOptions {
  readonly plan: MaskPlan;
  readonly counts: EntityCounts;
  readonly maxEventBytes?: number;
  /** Called with each piece of raw answer text as it is read (for response guards). */
  readonly onText?: (text: string) => void;
}

export class SseMasker {
  readonly #plan: MaskPlan;
  readonly #counts: EntityCounts;
  readonly #maxEventBytes: number;
  readonly #onText: ((text: string) => void) | undefined;
  readonly #decoder = new TextDecoder();
  readonly #text = new Map<string, StreamTextMasker>();
  readonly #args = new Map<string, string>();
  #pending = '';
  /** The last piece of upstream text ended in `\r`. */
  #afterCr = false;
  /** The stream has sent plain-text data: every later event is part of that text. */
  #plain = false;
  /** Each chat/completions choice's logprobs, held until the choice finishes (`#choice`). */
  readonly #heldLogprobs = new Map<unknown, Json[]>();
  /** Logprobs are held only when the plan masks something (a response guard alone does not). */
  readonly #holdsLogprobs: boolean;
  /** The counts' total when the stream began: anything more was masked in this answer. */
  readonly #countsAtStart: number;
  /** The last chat chunk's fields but its choices (id, model …), for a chunk this masker adds. */
  #lastChunk: Json = {};

  constructor(options: SseMaskerOptions) {
    this.#plan = options.plan;
    this.#counts = options.counts;
    this.#maxEventBytes = options.maxEventBytes ?? 1024 * 1024;
    this.#onText = options.onText;
    this.#countsAtStart = totalCount(options.counts);
    this.#holdsLogprobs = options.plan.profiles.length > 0;
  }

  /** Whether a value was masked in this answer so far. */
  #masked(): boolean {
    return totalCount(this.#counts) > this.#countsAtStart;
  }

  /** Raw upstream bytes in; masked, complete events out. */
  push(chunk: Uint8Array): string {
    this.#pending += this.#lines(this.#decoder.decode(chunk, { stream: true }));
    let out = '';
    for (;;) {
      const end = eventEnd(this.#pending);
      if (end === undefined) break;
      if (end.index > this.#maxEventBytes) throw new Error(`an SSE event exceeds ${this.#maxEventBytes} bytes`);
      out += this.#event(this.#pending.slice(0, end.index), this.#pending.slice(end.index, end.index + end.length));
      this.#pending = this.#pending.slice(end.index + end.length);
    }
    if (this.#pending.length > this.#maxEventBytes) throw new Error(`an SSE event exceeds ${this.#maxEventBytes} bytes`);
    return out;
  }

  /** End of the upstream body: the last (unterminated) event, then anything held. */
  end(): string {
    this.#pending += this.#lines(this.#decoder.decode());
    let out = this.#pending.trim() === '' ? '' : this.#event(this.#pending, '\n\n');
    this.#pending = '';
    let rest = '';
    const raw = this.#text.get('raw');
    this.#text.delete('raw');
    const rawTail = raw?.end() ?? '';
    if (rawTail !== '') out += `${dataLines(rawTail)}\n\n`;
    for (const masker of this.#text.values()) rest += masker.end();
    for (const args of this.#args.values()) rest += args === '' ? '' : maskJsonText(args, this.#plan, this.#counts);
    this.#text.clear();
    this.#args.clear();
    // An answer cut before its finish event: release what was held as a plain data line.
    if (rest !== '') out += `data: ${JSON.stringify({ object: 'gatehouse.masked_tail', text: rest })}\n\n`;
    return out;
  }

  /**
   * At [DONE]: the text (and tool-call arguments) still held for chat choices that sent no
   * finish event, released in one chat chunk shaped like the stream's last one
   * (`finish_reason` stays null), or undefined when nothing is held.
   */
  #heldChoices(): Json | undefined {
    const choices = new Map<number, { index: number; delta: Json; finish_reason: null; text?: string }>();
    const choice = (index: string) => {
      const n = Number(index);
      let c = choices.get(n);
      if (!c) choices.set(n, (c = { index: n, delta: {}, finish_reason: null }));
      return c;
    };
    for (const [key, masker] of this.#text) {
      const [kind, index, rest] = key.split(':');
      // a responses-API stream, an Anthropic block or Gemini candidate, or plain text
      if (rest !== undefined || index === undefined || kind!.startsWith('anthropic') || kind!.startsWith('gemini') || kind!.startsWith('cohere')) continue;
      const tail = masker.end();
      this.#text.delete(key);
      if (tail === '') continue;
      if (kind === 't') choice(index).text = tail;
      else if (kind === 'audio') choice(index).delta['audio'] = { transcript: tail };
      else choice(index).delta[kind!] = tail;
    }
    for (const [key, held] of this.#args) {
      const [kind, index, call] = key.split(':');
      if (kind !== 'tool' || index === undefined) continue;
      this.#args.delete(key);
      const c = choice(index);
      const calls = (c.delta['tool_calls'] as Json[] | undefined) ?? [];
      calls.push({ index: Number(call), function: { arguments: held === '' ? '' : maskJsonText(held, this.#plan, this.#counts) } });
      c.delta['tool_calls'] = calls;
    }
    if (choices.size === 0) return undefined;
    return { ...this.#lastChunk, object: 'chat.completion.chunk', choices: [...choices.values()] };
  }

  /**
   * `text` with every line ending as `\n`: SSE lines end in CRLF, LF or a lone CR. A
   * stream that ended its lines in CR alone was never cut into events, so a value split
   * across two of them went out in pieces that were each masked alone.
   */
  #lines(text: string): string {
    // A CR that ended the last piece already counted as a line end: an LF after it is part of it.
    if (text === '') return text;
    if (this.#afterCr && text.startsWith('\n')) text = text.slice(1);
    this.#afterCr = text.endsWith('\r');
    return text.includes('\r') ? text.replace(/\r\n?/g, '\n') : text;
  }

  #event(block: string, terminator: string): string {
    const lines = block.split(/\r?\n/);
    const other: string[] = [];
    let data: string | undefined;
    for (const line of lines) {
      if (line.startsWith('data:')) data = (data === undefined ? '' : `${data}\n`) + line.slice(line[5] === ' ' ? 6 : 5);
      // Comments' text is dropped (a comment alone becomes an empty one, below); every other field (`event:`, `id:`, …) is masked whole: its
      // value is the upstream's bytes too, and was passed as it came.
      else other.push(line.startsWith(':') ? '' : this.#maskField(line));
    }
    const head = other.filter((l) => l !== '').map((l) => `${l}\n`).join('');
    if (data === undefined) {
      if (head !== '') return `${head}${terminator}`;
      // A comment alone is the upstream's keep-alive (`: ping` while a model thinks): an
      // empty comment keeps the client's connection (and its proxies) alive without
      // passing on the upstream's words.
      return lines.some((l) => l.startsWith(':')) ? `:${terminator}` : '';
    }
    if (data === '[DONE]') {
      // A plain-text stream's held tail goes out (masked) before the end marker.
      const raw = this.#text.get('raw');
      this.#text.delete('raw');
      const tail = raw?.end() ?? '';
      // So do chat choices that never sent a finish event: after [DONE] no client reads.
      const held = this.#heldChoices();
      return `${tail === '' ? '' : `${dataLines(tail)}\n\n`}${held === undefined ? '' : `data: ${JSON.stringify(held)}\n\n`}${head}data: [DONE]${terminator}`;
    }
    let json: unknown;
    // Only an object or array is an event of a JSON stream: a piece of plain text such
    // as `5` or `true` parses as JSON too, and masking it on its own would release the
    // digits of a number split across events, ahead of the text held before them. Once
    // a stream has sent plain text, all of its data is one running text, in order.
    let isJson = false;
    if (!this.#plain) {
      try {
        json = JSON.parse(data);
        isJson = typeof json === 'object' && json !== null;
      } catch {
        isJson = false;
      }
    }
    if (!isJson) {
      // Plain-text data (a non-OpenAI stream): one running text across events, with the
      // same hold-back; an event with nothing releasable yet is not sent.
      this.#plain = true;
      this.#onText?.(data);
      const released = this.#masker('raw').push(data);
      return released === '' ? '' : `${head}${dataLines(released)}${terminator}`;
    }
    // An event that is not a chat or responses stream event has no text streaming through
    // it: masked in its own text, as a JSON body (numbers as the upstream wrote them).
    if (!isRecord(json) || !isOpenaiStreamEvent(json)) {
      let masked = maskJsonText(data, this.#plan, this.#counts);
      // `response.completed` repeats the answer's logprobs (see #choice).
      if (this.#masked() && masked.includes('"logprobs"')) masked = JSON.stringify(withoutLogprobs(JSON.parse(masked)));
      return `${head}${dataLines(masked)}${terminator}`;
    }
    const events = this.#maskEvent(json);
    // An event this masker adds (a released tail before a `done`) names its own type.
    return events.map((e) => `${isRecord(e) && typeof e['type'] === 'string' ? head.replace(/^event:.*$/m, `event: ${e['type']}`) : head}data: ${JSON.stringify(e)}${terminator}`).join('');
  }

  #maskField(line: string): string {
    const findings = this.#plan.find(line);
    return findings.length === 0 ? line : applyFindings(line, findings, this.#counts);
  }

  /** One upstream event → one or more masked events. */
  #maskEvent(event: Json): unknown[] {
    const type = event['type'];
    const stream = typeof type === 'string' ? responsesTextStreams.get(type) : undefined;
    if (stream) {
      const key = `${stream.family}:${event['output_index']}:${stream.index === undefined ? '' : event[stream.index]}`;
      if (!stream.done) {
        const delta = event['delta'];
        if (typeof delta !== 'string') return [this.#rest(event, [])];
        if (stream.guarded) this.#onText?.(delta);
        const released = this.#masker(key).push(delta);
        const out: Json = { ...this.#rest(event, this.#holdsLogprobs ? ['delta', 'logprobs'] : ['delta']), delta: released };
        // A delta's token logprobs would give away what its text holds back (see #choice).
        if (this.#holdsLogprobs && Array.isArray(event['logprobs'])) out['logprobs'] = [];
        return [out];
      }
      const tail = this.#text.get(key)?.end() ?? '';
      this.#text.delete(key);
      const done = this.#logprobsUnlessMasked(this.#rest(event, []));
      if (tail === '') return [done];
      // What was held goes out as one more delta of its kind, just before the `done`.
      const released: Json = { type: `response.${stream.family}.delta`, sequence_number: event['sequence_number'], item_id: event['item_id'], output_index: event['output_index'] };
      if (stream.index !== undefined) released[stream.index] = event[stream.index];
      released['delta'] = tail;
      return [released, done];
    }
    const args = typeof type === 'string' ? responsesArgumentStreams.get(type) : undefined;
    if (args) {
      const key = `${args.family}:${event['output_index']}`;
      if (!args.done) {
        if (typeof event['delta'] !== 'string') return [this.#rest(event, [])];
        this.#args.set(key, (this.#args.get(key) ?? '') + event['delta']);
        this.#onText?.(event['delta']);
        return [{ ...this.#rest(event, ['delta']), delta: '' }];
      }
      const held = this.#args.get(key) ?? '';
      this.#args.delete(key);
      const done = this.#rest(event, []);
      if (held === '') return [done];
      return [{ type: `response.${args.family}.delta`, sequence_number: event['sequence_number'], item_id: event['item_id'], output_index: event['output_index'], delta: maskJsonText(held, this.#plan, this.#counts) }, done];
    }
    if (type === 'content_block_start' || type === 'content_block_delta' || type === 'content_block_stop') return this.#anthropicBlock(event);
    if (typeof type === 'string' && cohereEvents.has(type)) return this.#cohere(event, type);
    if (Array.isArray(event['candidates'])) return [this.#geminiChunk(event)];
    const choices = event['choices'];
    if (!Array.isArray(choices)) return [this.#logprobsUnlessMasked(this.#rest(event, []))];
    const masked = { ...this.#rest(event, ['choices']), choices: choices.map((c) => (isRecord(c) ? this.#choice(c) : c)) };
    this.#lastChunk = omit(masked, ['choices', 'usage']);
    return [masked];
  }

  /**
   * Anthropic Messages API: a content block's `text_delta` / `thinking_delta` text streams
   * through a masker per block; its `input_json_delta` pieces (a tool call's input) are
   * held. At the block's `content_block_stop`, what is held goes out first, masked, as
   * one more delta of its kind.
   */
  #anthropicBlock(event: Json): unknown[] {
    const index = event['index'];
    const delta = event['delta'];
    const block = event['content_block'];
    if (event['type'] === 'content_block_start') {
      // A block may start with text already (`text` or `thinking`): the first piece of its stream.
      if (!isRecord(block)) return [this.#rest(event, [])];
      const field = block['type'] === 'text' ? 'text' : block['type'] === 'thinking' ? 'thinking' : undefined;
      const piece = field === undefined ? undefined : block[field];
      if (field === undefined || typeof piece !== 'string' || piece === '') return [this.#rest(event, [])];
      if (field === 'text') this.#onText?.(piece);
      const start = { ...(maskJsonValue(omit(block, [field]), this.#plan, this.#counts) as Json), [field]: this.#masker(`anthropic-${field}:${index}`).push(piece) };
      return [{ ...this.#rest(event, ['content_block']), content_block: start }];
    }
    if (event['type'] === 'content_block_delta' && isRecord(delta)) {
      const kind = delta['type'];
      const field = kind === 'text_delta' ? 'text' : kind === 'thinking_delta' ? 'thinking' : kind === 'input_json_delta' ? 'partial_json' : undefined;
      const piece = field === undefined ? undefined : delta[field];
      if (field !== undefined && typeof piece === 'string') {
        const rest = this.#rest(event, ['delta']);
        const others = maskJsonValue(omit(delta, [field]), this.#plan, this.#counts) as Json;
        if (field === 'partial_json') {
          this.#onText?.(piece);
          const key = `anthropic:${index}`;
          this.#args.set(key, (this.#args.get(key) ?? '') + piece);
          return [{ ...rest, delta: { ...others, partial_json: '' } }];
        }
        if (field === 'text') this.#onText?.(piece);
        return [{ ...rest, delta: { ...others, [field]: this.#masker(`anthropic-${field}:${index}`).push(piece) } }];
      }
      return [this.#rest(event, [])];
    }
    const out: unknown[] = [];
    for (const field of ['text', 'thinking'] as const) {
      const key = `anthropic-${field}:${index}`;
      const tail = this.#text.get(key)?.end() ?? '';
      this.#text.delete(key);
      if (tail !== '') out.push({ type: 'content_block_delta', index, delta: { type: `${field}_delta`, [field]: tail } });
    }
    const held = this.#args.get(`anthropic:${index}`);
    this.#args.delete(`anthropic:${index}`);
    if (held !== undefined && held !== '') out.push({ type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: maskJsonText(held, this.#plan, this.#counts) } });
    out.push(this.#rest(event, []));
    return out;
  }

  /**
   * Cohere v2 chat: `content-delta` text (`delta.message.content.text`) per `index`,
   * released in its `content-end`; `tool-plan-delta` text (`delta.message.tool_plan`)
   * released at `tool-call-start` or `message-end`; `tool-call-delta` arguments
   * (`delta.message.tool_calls.function.arguments`) held until `tool-call-end`. What is
   * held goes out, masked, as one more delta of its kind just before the closing event.
   */
  #cohere(event: Json, type: string): unknown[] {
    const index = event['index'];
    const message = isRecord(event['delta']) && isRecord(event['delta']['message']) ? event['delta']['message'] : undefined;
    if (type === 'content-delta' && message && isRecord(message['content']) && typeof message['content']['text'] === 'string') {
      const text = message['content']['text'];
      this.#onText?.(text);
      const content = { ...(maskJsonValue(omit(message['content'], ['text']), this.#plan, this.#counts) as Json), text: this.#masker(`cohere-text:${index}`).push(text) };
      return [{ ...this.#rest(event, ['delta']), delta: { message: { ...(maskJsonValue(omit(message, ['content']), this.#plan, this.#counts) as Json), content } } }];
    }
    if (type === 'tool-plan-delta' && message && typeof message['tool_plan'] === 'string') {
      this.#onText?.(message['tool_plan']);
      return [{ ...this.#rest(event, ['delta']), delta: { message: { ...(maskJsonValue(omit(message, ['tool_plan']), this.#plan, this.#counts) as Json), tool_plan: this.#masker('cohere-plan').push(message['tool_plan']) } } }];
    }
    const calls = message?.['tool_calls'];
    const fn = isRecord(calls) && isRecord(calls['function']) ? calls['function'] : undefined;
    if (type === 'tool-call-delta' && isRecord(calls) && fn && typeof fn['arguments'] === 'string') {
      this.#onText?.(fn['arguments']);
      const key = `cohere-args:${index}`;
      this.#args.set(key, (this.#args.get(key) ?? '') + fn['arguments']);
      return [{ ...this.#rest(event, ['delta']), delta: { message: { tool_calls: { ...(maskJsonValue(omit(calls, ['function']), this.#plan, this.#counts) as Json), function: { ...(maskJsonValue(omit(fn, ['arguments']), this.#plan, this.#counts) as Json), arguments: '' } } } } }];
    }
    const out: unknown[] = [];
    if (type === 'content-end') {
      const tail = this.#text.get(`cohere-text:${index}`)?.end() ?? '';
      this.#text.delete(`cohere-text:${index}`);
      if (tail !== '') out.push({ type: 'content-delta', index, delta: { message: { content: { text: tail } } } });
    }
    if (type === 'tool-call-start' || type === 'message-end') {
      const plan = this.#text.get('cohere-plan')?.end() ?? '';
      this.#text.delete('cohere-plan');
      if (plan !== '') out.push({ type: 'tool-plan-delta', delta: { message: { tool_plan: plan } } });
    }
    if (type === 'tool-call-end') {
      const held = this.#args.get(`cohere-args:${index}`);
      this.#args.delete(`cohere-args:${index}`);
      if (held !== undefined && held !== '') out.push({ type: 'tool-call-delta', index, delta: { message: { tool_calls: { function: { arguments: maskJsonText(held, this.#plan, this.#counts) } } } } });
    }
    out.push(this.#rest(event, []));
    return out;
  }

  /**
   * Google Gemini (`streamGenerateContent?alt=sse`): each candidate's text parts (and its
   * thought parts apart) stream through a masker per candidate; held text goes out in
   * the chunk that carries the candidate's `finishReason`, as one more text part.
   */
  #geminiChunk(event: Json): Json {
    const candidates = (event['candidates'] as unknown[]).map((c, position) => {
      if (!isRecord(c)) return maskJsonValue(c, this.#plan, this.#counts);
      const index = typeof c['index'] === 'number' ? c['index'] : position;
      const finished = typeof c['finishReason'] === 'string';
      const out = this.#rest(c, ['content']);
      const content = c['content'];
      if (!isRecord(content) && !finished) return out;
      const parts: unknown[] = [];
      const rawParts = isRecord(content) && Array.isArray(content['parts']) ? content['parts'] : [];
      for (const part of rawParts) {
        if (!isRecord(part) || typeof part['text'] !== 'string') {
          parts.push(maskJsonValue(part, this.#plan, this.#counts));
          continue;
        }
        const thought = part['thought'] === true;
        if (!thought) this.#onText?.(part['text']);
        parts.push({ ...this.#rest(part, ['text']), text: this.#masker(`gemini${thought ? '-thought' : ''}:${index}`).push(part['text']) });
      }
      if (finished) {
        for (const thought of [true, false]) {
          const key = `gemini${thought ? '-thought' : ''}:${index}`;
          const tail = this.#text.get(key)?.end() ?? '';
          this.#text.delete(key);
          if (tail !== '') parts.push(thought ? { text: tail, thought: true } : { text: tail });
        }
      }
      out['content'] = { ...(isRecord(content) ? this.#rest(content, ['parts']) : { role: 'model' }), parts };
      return out;
    });
    return { ...this.#rest(event, ['candidates']), candidates };
  }

  #choice(choice: Json): Json {
    const index = choice['index'];
    const finished = choice['finish_reason'] !== null && choice['finish_reason'] !== undefined;
    // Logprobs name the answer's tokens one by one (`jane`, `.roe`, `@example` …): each is
    // no entity alone, so masked whole they gave the value away. Held until the choice
    // finishes, then released only if nothing was masked in the answer.
    const hasLogprobs = this.#holdsLogprobs && 'logprobs' in choice;
    if (hasLogprobs && isRecord(choice['logprobs'])) {
      const held = this.#heldLogprobs.get(index) ?? [];
      held.push(choice['logprobs']);
      this.#heldLogprobs.set(index, held);
    }
    const out: Json = { ...(maskJsonValue(omit(choice, hasLogprobs ? ['delta', 'text', 'logprobs'] : ['delta', 'text']), this.#plan, this.#counts) as Json) };
    if (typeof choice['text'] === 'string' || (finished && this.#text.has(`t:${index}`))) {
      const text = typeof choice['text'] === 'string' ? choice['text'] : '';
      if (text !== '') this.#onText?.(text);
      out['text'] = this.#streamText(`t:${index}`, text, finished);
    }
    const delta = choice['delta'];
    if (isRecord(delta) || finished) {
      const d: Json = isRecord(delta) ? (maskJsonValue(omit(delta, ['content', 'refusal', 'tool_calls', 'audio']), this.#plan, this.#counts) as Json) : {};
      // An audio answer's transcript streams like content; its other fields are masked whole.
      const audio = isRecord(delta) ? delta['audio'] : undefined;
      const audioKey = `audio:${index}`;
      if (isRecord(audio) && (typeof audio['transcript'] === 'string' || finished)) {
        const transcript = typeof audio['transcript'] === 'string' ? audio['transcript'] : '';
        if (transcript !== '') this.#onText?.(transcript);
        d['audio'] = { ...(maskJsonValue(omit(audio, ['transcript']), this.#plan, this.#counts) as Json), transcript: this.#streamText(audioKey, transcript, finished) };
      } else if (audio !== undefined) d['audio'] = maskJsonValue(audio, this.#plan, this.#counts);
      if (finished && this.#text.has(audioKey)) {
        // The choice ends with a transcript still held: it goes out in the finish event.
        const tail = this.#streamText(audioKey, '', true);
        if (tail !== '') d['audio'] = { ...(isRecord(d['audio']) ? d['audio'] : {}), transcript: tail };
      }
      for (const field of streamedDeltaFields) {
        const key = `${field}:${index}`;
        const value = isRecord(delta) ? delta[field] : undefined;
        if (typeof value === 'string' || (finished && this.#text.has(key))) {
          if (typeof value === 'string' && value !== '' && (field === 'content' || field === 'refusal')) this.#onText?.(value);
          d[field] = this.#streamText(key, typeof value === 'string' ? value : '', finished);
        } else if (isRecord(delta) && field in delta) d[field] = delta[field];
      }
      const calls = isRecord(delta) && Array.isArray(delta['tool_calls']) ? delta['tool_calls'] : [];
      const outCalls: Json[] = [];
      for (const call of calls) {
        if (!isRecord(call)) continue;
        const key = `tool:${index}:${call['index']}`;
        const fn = isRecord(call['function']) ? call['function'] : undefined;
        const args = fn && typeof fn['arguments'] === 'string' ? fn['arguments'] : '';
        if (args !== '') this.#onText?.(args);
        this.#args.set(key, (this.#args.get(key) ?? '') + args);
        outCalls.push({ ...call, function: { ...(fn ?? {}), arguments: '' } });
      }
      if (finished) {
        for (const [key, held] of this.#args) {
          if (!key.startsWith(`tool:${index}:`)) continue;
          this.#args.delete(key);
          const callIndex = Number(key.slice(key.lastIndexOf(':') + 1));
          outCalls.push({ index: callIndex, function: { arguments: held === '' ? '' : maskJsonText(held, this.#plan, this.#counts) } });
        }
      }
      if (outCalls.length > 0) d['tool_calls'] = outCalls;
      out['delta'] = d;
    }
    if (finished && this.#holdsLogprobs) {
      const held = this.#heldLogprobs.get(index);
      this.#heldLogprobs.delete(index);
      if (held !== undefined || hasLogprobs) out['logprobs'] = held === undefined || this.#masked() ? null : mergeLogprobs(held);
    } else if (hasLogprobs) out['logprobs'] = null;
    return out;
  }

  #streamText(key: string, text: string, finished: boolean): string {
    const masker = this.#masker(key);
    let out = masker.push(text);
    if (finished) {
      out += masker.end();
      this.#text.delete(key);
    }
    return out;
  }

  #masker(key: string): StreamTextMasker {
    let masker = this.#text.get(key);
    if (!masker) {
      masker = new StreamTextMasker(this.#plan, this.#counts);
      this.#text.set(key, masker);
    }
    return masker;
  }

  /** `event`, its logprobs (`response.completed` …) emptied if a value was masked in this answer. */
  #logprobsUnlessMasked(event: Json): Json {
    return this.#masked() ? (withoutLogprobs(event) as Json) : event;
  }

  /** The event with `skip` fields removed and every other string masked whole. */
  #rest(event: Json, skip: readonly string[]): Json {
    return maskJsonValue(omit(event, skip), this.#plan, this.#counts) as Json;
  }
}

/** Cohere v2 chat stream events whose text or arguments stream, or that close one. */
const cohereEvents: ReadonlySet<string> = new Set(['content-delta', 'content-end', 'tool-plan-delta', 'tool-call-start', 'tool-call-delta', 'tool-call-end', 'message-end']);

/** Chat delta fields whose text streams through a StreamTextMasker per choice. */
const streamedDeltaFields = ['content', 'refusal', 'reasoning_content', 'reasoning'] as const;

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
const responsesTextStreams: ReadonlyMap<string, TextStream> = new Map(
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
const responsesArgumentStreams: ReadonlyMap<string, { readonly family: string; readonly done: boolean }> = new Map(
  ['function_call_arguments', 'mcp_call_arguments'].flatMap((family): Array<[string, { family: string; done: boolean }]> => [
    [`response.${family}.delta`, { family, done: false }],
    [`response.${family}.done`, { family, done: true }],
  ]),
);

/** `data:` lines carrying `text` (a newline inside it becomes a new data line). */
/** A chat completions chunk (`choices`), a responses event whose text or arguments stream, an Anthropic content block's delta or stop, or a Gemini chunk (`candidates`). */
function isOpenaiStreamEvent(event: Json): boolean {
  const type = event['type'];
  return Array.isArray(event['choices']) || Array.isArray(event['candidates']) || (typeof type === 'string' && (responsesTextStreams.has(type) || responsesArgumentStreams.has(type) || type === 'content_block_start' || type === 'content_block_delta' || type === 'content_block_stop' || cohereEvents.has(type)));
}

/** A choice's held logprobs as one: arrays (`content`, `tokens` …) joined, other fields the last seen. */
function mergeLogprobs(held: readonly Json[]): Json {
  const merged: Json = {};
  for (const part of held) {
    for (const [k, v] of Object.entries(part)) {
      const before = merged[k];
      merged[k] = Array.isArray(v) && Array.isArray(before) ? [...before, ...v] : v;
    }
  }
  return merged;
}

/**
 * `value` with every `logprobs` emptied (an array becomes [], anything else null): the
 * tokens in them spell the answer's text in pieces that are no entity alone.
 */
export function withoutLogprobs(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutLogprobs);
  if (!isRecord(value)) return value;
  const out: Json = {};
  for (const [k, v] of Object.entries(value)) out[k] = k === 'logprobs' ? (Array.isArray(v) ? [] : v === undefined ? v : null) : withoutLogprobs(v);
  return out;
}

function dataLines(text: string): string {
  return text.split('\n').map((line) => `data: ${line}`).join('\n');
}

export function omit(value: Json, keys: readonly string[]): Json {
  if (keys.length === 0) return value;
  const out: Json = {};
  for (const [k, v] of Object.entries(value)) if (!keys.includes(k)) out[k] = v;
  return out;
}

export function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Where the first event of `text` ends (line ends are `\n` by then: `#lines`). */
function eventEnd(text: string): { index: number; length: number } | undefined {
  const lf = text.indexOf('\n\n');
  return lf < 0 ? undefined : { index: lf, length: 2 };
}
