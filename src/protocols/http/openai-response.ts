// Reads an OpenAI-compatible answer as it passes: the assistant text (reassembled from
// SSE deltas when streamed; with several choices (`n: 2`) or output parts, each part's
// text on its own, joined by a newline as a JSON answer's are; refusals, and tool calls
// as `name(arguments)` after the text, as summarizeJsonAnswer reads them from a JSON
// answer) and the token usage. Bounded: at most `maxTextBytes` of
// text is kept and one SSE event may be at most `maxEventBytes`; a larger event is
// skipped up to the next blank line (the answer itself passes through untouched).

import { toolCallOf, toolCallText, usageOf, type AnswerSummary } from '../../exchange/answer-summary.js';
import type { TokenUsage } from '../../exchange/index.js';
import { isRecord } from './openai-request.js';

export { summarizeJsonAnswer, type AnswerSummary } from '../../exchange/answer-summary.js';

export class SseAnswerReader {
  readonly #maxTextBytes: number;
  readonly #maxEventBytes: number;
  readonly #decoder = new TextDecoder();
  #pending = '';
  /** The text of the first choice (or responses output part) seen: usually the only one. */
  #text = '';
  #textKey = -1;
  /** The text of every other choice or part, by key, in order of first appearance. */
  #others: Map<number, string> | undefined;
  /** Tool calls by key (chat: choice and call index; responses: output index), in order of first appearance. */
  #calls: Map<number, { name: string; args: string }> | undefined;
  #textBytes = 0;
  #usage: TokenUsage | undefined;
  /** Inside an oversized event: discard until the next blank line. */
  #skipping = false;
  /** A CR has been seen in the stream, so events may end with \r\n\r\n. */
  #crSeen = false;
  #skipTail = '';

  constructor(options: { maxTextBytes: number; maxEventBytes?: number }) {
    this.#maxTextBytes = options.maxTextBytes;
    this.#maxEventBytes = options.maxEventBytes ?? 1024 * 1024;
  }

  push(chunk: Uint8Array): void {
    let text = this.#decoder.decode(chunk, streamDecode);
    // CRLF event ends need a second search; most streams never have a CR.
    if (!this.#crSeen && text.includes('\r')) this.#crSeen = true;
    if (this.#skipping) {
      // Keep the last 3 characters: a blank line may straddle two chunks.
      const joined = this.#skipTail + text;
      const end = findEventEnd(joined, 0, this.#crSeen);
      if (end < 0) {
        this.#skipTail = joined.slice(-3);
        return;
      }
      this.#skipping = false;
      this.#skipTail = '';
      text = joined.slice(end + eventEndLength(joined, end));
    }
    const pending = this.#pending === '' ? text : this.#pending + text;
    // Events end at a blank line (\n\n, or \r\n\r\n) — WHATWG HTML §9.2.6. Scanned with
    // a cursor: each event is looked at once, the rest is not copied per event.
    let start = 0;
    for (;;) {
      const end = findEventEnd(pending, start, this.#crSeen);
      if (end < 0) break;
      this.#event(pending.slice(start, end));
      start = end + eventEndLength(pending, end);
    }
    this.#pending = start === 0 ? pending : pending.slice(start);
    if (this.#pending.length > this.#maxEventBytes) {
      this.#skipping = true;
      this.#skipTail = this.#pending.slice(-3);
      this.#pending = '';
    }
  }

  /** The answer text of the events completed so far (does not consume a partial event). */
  textSoFar(): string | undefined {
    const text = this.#joined();
    return text === '' ? undefined : text;
  }

  summary(): AnswerSummary {
    if (!this.#skipping && this.#pending.trim() !== '') this.#event(this.#pending);
    this.#pending = '';
    const text = this.#joined();
    return { text: text === '' ? undefined : text, usage: this.#usage };
  }

  #joined(): string {
    if (!this.#others && !this.#calls) return this.#text;
    let text = this.#text;
    if (this.#others) for (const other of this.#others.values()) if (other !== '') text = text === '' ? other : `${text}\n${other}`;
    if (this.#calls) {
      for (const call of this.#calls.values()) {
        const line = toolCallText(call.name, call.args);
        text = text === '' ? line : `${text}\n${line}`;
      }
    }
    return text;
  }

  #event(block: string): void {
    let data = '';
    if (!block.includes('\n')) {
      // One line (the usual `data: {...}`): no split.
      if (block.startsWith('data:')) data = block.slice(block[5] === ' ' ? 6 : 5);
    } else {
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith('data:')) data += (data === '' ? '' : '\n') + line.slice(line[5] === ' ' ? 6 : 5);
      }
    }
    if (data === '' || data === '[DONE]') return;
    let json: unknown;
    try {
      json = JSON.parse(data);
    } catch {
      return;
    }
    if (!isRecord(json)) return;
    this.#appendDeltas(json);
    const usage = usageOf(json) ?? (isRecord(json['response']) ? usageOf(json['response']) : undefined);
    if (usage) this.#usage = usage;
  }

  /** Text carried by one streamed event: chat deltas, completion text, or a responses delta. */
  #appendDeltas(event: Record<string, unknown>): void {
    const type = event['type'];
    if (typeof type === 'string' && type.startsWith('response.')) {
      this.#responsesEvent(type, event);
      return;
    }
    const choices = event['choices'];
    if (!Array.isArray(choices)) return;
    for (const choice of choices) {
      if (!isRecord(choice)) continue;
      const delta = choice['delta'];
      const text = isRecord(delta) && typeof delta['content'] === 'string' ? delta['content'] : typeof choice['text'] === 'string' ? choice['text'] : undefined;
      const index = typeof choice['index'] === 'number' ? choice['index'] : 0;
      if (text) this.#append(index, text);
      // A delta with content carries nothing else worth reading: the usual chunk stops here.
      else if (isRecord(delta)) {
        const refusal = delta['refusal'];
        // Kept apart from the choice's content (a key of its own), as a JSON answer's is.
        if (typeof refusal === 'string' && refusal !== '') this.#append(index + refusalKey, refusal);
        const calls = delta['tool_calls'];
        if (Array.isArray(calls)) {
          for (const call of calls) {
            if (!isRecord(call) || !isRecord(call['function'])) continue;
            const fn = call['function'];
            this.#appendCall(index * 65536 + (typeof call['index'] === 'number' ? call['index'] : 0), fn['name'], fn['arguments']);
          }
        }
      }
    }
  }

  /**
   * A responses-API event: the text of message items (output text and refusal deltas),
   * and the tool calls of output items with their whole arguments. Each `.done` event
   * repeats what its deltas carried (as the client got it: the masker rewrites both): it
   * fills in a part or call whose deltas never came (a server that sends arguments whole,
   * as OpenAI does for some MCP calls). Reasoning items are not answer text, as in
   * summarizeJsonAnswer.
   */
  #responsesEvent(type: string, event: Record<string, unknown>): void {
    const output = typeof event['output_index'] === 'number' ? event['output_index'] : 0;
    const content = typeof event['content_index'] === 'number' ? event['content_index'] : 0;
    switch (type) {
      case 'response.output_text.delta':
      case 'response.refusal.delta':
        if (typeof event['delta'] === 'string') this.#append(output * 65536 + content, event['delta']);
        return;
      case 'response.output_text.done':
      case 'response.refusal.done': {
        const text = event[type === 'response.output_text.done' ? 'text' : 'refusal'];
        if (typeof text === 'string' && text !== '' && !this.#hasText(output * 65536 + content)) this.#append(output * 65536 + content, text);
        return;
      }
      case 'response.output_item.added':
      case 'response.output_item.done': {
        const item = event['item'];
        if (!isRecord(item) || typeof item['type'] !== 'string') return;
        const call = toolCallOf(item);
        if (call) this.#appendCall(output, call.name, call.args, true);
        return;
      }
      case 'response.function_call_arguments.delta':
      case 'response.mcp_call_arguments.delta':
      case 'response.custom_tool_call_input.delta':
      case 'response.code_interpreter_call_code.delta':
        this.#appendCall(output, undefined, event['delta']);
        return;
      case 'response.function_call_arguments.done':
      case 'response.mcp_call_arguments.done':
        this.#appendCall(output, undefined, event['arguments'], true);
        return;
      case 'response.custom_tool_call_input.done':
        this.#appendCall(output, undefined, event['input'], true);
        return;
      case 'response.code_interpreter_call_code.done':
        this.#appendCall(output, undefined, event['code'], true);
        return;
      default:
        return;
    }
  }

  /** Whether the text part `key` has text already. */
  #hasText(key: number): boolean {
    return (key === this.#textKey && this.#text !== '') || (this.#others?.get(key) ?? '') !== '';
  }

  /**
   * A tool call's name (when first seen) or a piece of its arguments, counted in the text
   * bound. `whole`: the arguments whole (a `.done` event, an output item), taken only when
   * no delta gave any.
   */
  #appendCall(key: number, name: unknown, args: unknown, whole = false): void {
    this.#calls ??= new Map();
    let call = this.#calls.get(key);
    if (!call) {
      call = { name: '', args: '' };
      this.#calls.set(key, call);
      this.#textBytes += 3; // `()` and the newline
    }
    if (typeof name === 'string' && name !== '' && call.name === '') call.name = this.#bounded(name);
    if (typeof args === 'string' && args !== '' && !(whole && call.args !== '')) call.args += this.#bounded(args);
  }

  /** `text` cut to what is left of the text bound, and counted against it. */
  #bounded(text: string): string {
    const room = this.#maxTextBytes - this.#textBytes;
    if (room <= 0) return '';
    let bytes = Buffer.byteLength(text);
    if (bytes > room) {
      // Cut at the cap; drop a character the cut split in two.
      text = Buffer.from(text).subarray(0, room).toString('utf8').replace(/\uFFFD$/, '');
      bytes = room;
    }
    this.#textBytes += bytes;
    return text;
  }

  #append(key: number, text: string): void {
    if (this.#textBytes >= this.#maxTextBytes) return;
    text = this.#bounded(text);
    if (this.#textKey === -1) this.#textKey = key;
    if (key === this.#textKey) this.#text += text;
    else {
      // Interleaved choices (`n: 2`) are kept apart, or the record would mix their words.
      this.#others ??= new Map();
      this.#others.set(key, (this.#others.get(key) ?? '') + text);
    }
  }
}

const streamDecode = { stream: true } as const;

/** Added to a choice's index to key its refusal apart from its content. */
const refusalKey = 2 ** 40;


/** Where the first event at or after `from` ends (-1: not yet): the first \n\n or \r\n\r\n. */
function findEventEnd(text: string, from: number, crSeen: boolean): number {
  const lf = text.indexOf('\n\n', from);
  if (!crSeen) return lf;
  const crlf = text.indexOf('\r\n\r\n', from);
  if (crlf >= 0 && (lf < 0 || crlf < lf)) return crlf;
  return lf;
}

/** The length of the blank line found at `end` by findEventEnd. */
function eventEndLength(text: string, end: number): number {
  return text.charCodeAt(end) === 13 ? 4 : 2;
}
