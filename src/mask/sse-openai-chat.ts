// OpenAI chat.completion.chunk and completions events (`choices[]`):
// - `delta.content` / `.refusal`, completions `text`, reasoning text of
//   OpenAI-compatible servers (`reasoning_content` from vLLM / DeepSeek, `reasoning`
//   from Ollama / OpenRouter) and an audio answer's `delta.audio.transcript` stream
//   through a masker per choice; what is held is released in the choice's finish event;
//   such a field sent as a list of parts (Mistral) streams per kind of part
//   (chat-delta-parts.ts);
// - `delta.tool_calls[].function.arguments` are held until the choice finishes, then
//   sent whole, masked as JSON, in that finish event;
// - logprobs are held until the choice finishes, then released only if nothing was
//   masked in the answer;
// - at `[DONE]`, what choices without a finish event still hold goes out in one more
//   chunk shaped like the stream's last one (`heldAtDone`).

import type { SseDialect } from './sse-dialect.js';
import type { StreamState } from './stream-state.js';
import { isRecord, omit, type Json } from './json-value.js';
import { mergeLogprobs } from './logprobs.js';
import { partTexts } from '../exchange/index.js';
import { partsKey, partsOpen, partOf, releaseParts, streamParts } from './chat-delta-parts.js';

/** Chat delta fields whose text streams through a StreamTextMasker per choice. */
const streamedDeltaFields = ['content', 'refusal', 'reasoning_content', 'reasoning'] as const;

/** Text stream keys: `chat.<field>:<choice>` (`t` for completions text); held arguments: `chat.tool:<choice>:<call>`. */
const prefix = 'chat.';

export class OpenaiChatDialect implements SseDialect {
  readonly #state: StreamState;
  /** Logprobs are held only when the plan masks something (a response guard alone does not). */
  readonly #holdsLogprobs: boolean;
  /** Each choice's logprobs, held until the choice finishes. */
  readonly #heldLogprobs = new Map<unknown, Json[]>();
  /** The last chunk's fields but its choices (id, model …), for a chunk this masker adds. */
  #lastChunk: Json = {};
  /** Whether a delta field came as a list of parts (only then do string deltas look for held parts). */
  #sawParts = false;

  constructor(state: StreamState) {
    this.#state = state;
    this.#holdsLogprobs = state.plan.profiles.length > 0;
  }

  handles(event: Json): boolean {
    return Array.isArray(event['choices']);
  }

  mask(event: Json): unknown[] {
    const choices = event['choices'] as unknown[];
    const masked = { ...this.#state.rest(event, ['choices']), choices: choices.map((c) => (isRecord(c) ? this.#choice(c) : c)) };
    this.#lastChunk = omit(masked, ['choices', 'usage']);
    return [masked];
  }

  /**
   * At [DONE]: the text (and tool-call arguments) still held for choices that sent no
   * finish event, in one chat chunk shaped like the stream's last one (`finish_reason`
   * stays null), or undefined when nothing is held.
   */
  heldAtDone(): Json | undefined {
    const state = this.#state;
    const choices = new Map<number, { index: number; delta: Json; finish_reason: null; text?: string }>();
    const choice = (index: string) => {
      const n = Number(index);
      let c = choices.get(n);
      if (!c) choices.set(n, (c = { index: n, delta: {}, finish_reason: null }));
      return c;
    };
    for (const key of state.textKeys()) {
      if (!key.startsWith(prefix)) continue;
      const [kind, index] = key.slice(prefix.length).split(':') as [string, string];
      const tail = state.end(key);
      if (tail === '') continue;
      if (kind === 't') choice(index).text = tail;
      else if (kind.includes('#')) {
        // A list-of-parts stream: its tail goes out as one more part of its kind.
        const [field, partKind] = kind.split('#') as [string, 'text' | 'thinking'];
        const delta = choice(index).delta;
        delta[field] = [...(Array.isArray(delta[field]) ? delta[field] : []), partOf(undefined, partKind, tail)];
      } else if (kind === 'audio') choice(index).delta['audio'] = { transcript: tail };
      else choice(index).delta[kind] = tail;
    }
    for (const key of state.heldKeys()) {
      if (!key.startsWith(`${prefix}tool:`)) continue;
      const [, index, call] = key.slice(prefix.length).split(':') as [string, string, string];
      const held = state.take(key)!;
      const c = choice(index);
      const calls = (c.delta['tool_calls'] as Json[] | undefined) ?? [];
      calls.push({ index: Number(call), function: { arguments: state.maskArguments(held) } });
      c.delta['tool_calls'] = calls;
    }
    if (choices.size === 0) return undefined;
    return { ...this.#lastChunk, object: 'chat.completion.chunk', choices: [...choices.values()] };
  }

  #choice(choice: Json): Json {
    const state = this.#state;
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
    const out: Json = { ...state.rest(choice, hasLogprobs ? ['delta', 'text', 'logprobs'] : ['delta', 'text']) };
    const textKey = `${prefix}t:${index}`;
    if (typeof choice['text'] === 'string' || (finished && state.has(textKey))) {
      const text = typeof choice['text'] === 'string' ? choice['text'] : '';
      if (text !== '') state.guard(text);
      out['text'] = state.stream(textKey, text, finished);
    }
    const delta = choice['delta'];
    if (isRecord(delta) || finished) out['delta'] = this.#delta(index, isRecord(delta) ? delta : undefined, finished);
    if (finished && this.#holdsLogprobs) {
      const held = this.#heldLogprobs.get(index);
      this.#heldLogprobs.delete(index);
      if (held !== undefined || hasLogprobs) out['logprobs'] = held === undefined || state.masked() ? null : mergeLogprobs(held);
    } else if (hasLogprobs) out['logprobs'] = null;
    return out;
  }

  #delta(index: unknown, delta: Json | undefined, finished: boolean): Json {
    const state = this.#state;
    const d: Json = delta ? (state.rest(delta, ['content', 'refusal', 'tool_calls', 'audio'])) : {};
    // An audio answer's transcript streams like content; its other fields are masked whole.
    const audio = delta?.['audio'];
    const audioKey = `${prefix}audio:${index}`;
    if (isRecord(audio) && (typeof audio['transcript'] === 'string' || finished)) {
      const transcript = typeof audio['transcript'] === 'string' ? audio['transcript'] : '';
      if (transcript !== '') state.guard(transcript);
      d['audio'] = { ...state.rest(audio, ['transcript']), transcript: state.stream(audioKey, transcript, finished) };
    } else if (audio !== undefined) d['audio'] = state.maskValue(audio);
    if (finished && state.has(audioKey)) {
      // The choice ends with a transcript still held: it goes out in the finish event.
      const tail = state.stream(audioKey, '', true);
      if (tail !== '') d['audio'] = { ...(isRecord(d['audio']) ? d['audio'] : {}), transcript: tail };
    }
    for (const field of streamedDeltaFields) {
      const key = `${prefix}${field}:${index}`;
      const value = delta?.[field];
      if (Array.isArray(value)) {
        // A list of parts (Mistral's reasoning models): each kind's text streams too.
        this.#sawParts = true;
        d[field] = streamParts(state, field, index, value, key, finished);
      } else if (typeof value === 'string' || (finished && state.has(key))) {
        // Reasoning too: it reaches the client (only the recorded answer text leaves it out).
        if (typeof value === 'string' && value !== '') state.guard(value);
        // Answer text held from text parts before goes on as this string stream.
        if (this.#sawParts && !state.has(key)) state.move(partsKey(field, 'text', index), key);
        const text = state.stream(key, typeof value === 'string' ? value : '', finished);
        // Thinking held from parts before goes first: this event's field becomes a list.
        const held = this.#sawParts && partsOpen(state, field, index) ? releaseParts(state, field, index) : [];
        d[field] = held.length > 0 ? [...held, partOf(undefined, 'text', text)] : text;
      } else if (finished && this.#sawParts && partsOpen(state, field, index)) {
        d[field] = releaseParts(state, field, index);
      } else if (delta && field in delta) {
        // Neither a string nor a list (null …): masked whole in this event (it once went out
        // as it came). Any text in it reaches the client: the guard reads it.
        for (const text of partTexts(delta[field])) state.guard(text);
        d[field] = state.maskValue(delta[field]);
      }
    }
    const calls = delta && Array.isArray(delta['tool_calls']) ? delta['tool_calls'] : [];
    const outCalls: Json[] = [];
    for (const call of calls) {
      if (!isRecord(call)) continue;
      const fn = isRecord(call['function']) ? call['function'] : undefined;
      const args = fn && typeof fn['arguments'] === 'string' ? fn['arguments'] : '';
      if (args !== '') state.guard(args);
      state.hold(`${prefix}tool:${index}:${call['index']}`, args);
      outCalls.push({ ...call, function: { ...(fn ?? {}), arguments: '' } });
    }
    if (finished) {
      for (const key of state.heldKeys()) {
        if (!key.startsWith(`${prefix}tool:${index}:`)) continue;
        const held = state.take(key)!;
        outCalls.push({ index: Number(key.slice(key.lastIndexOf(':') + 1)), function: { arguments: state.maskArguments(held) } });
      }
    }
    if (outCalls.length > 0) d['tool_calls'] = outCalls;
    return d;
  }
}
