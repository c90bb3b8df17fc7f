// JSON events of shapes no dialect knows, in a stream that has sent no event of a known
// API (a TGI `token.text`, a llama.cpp `content`, a Vercel AI SDK `delta`, a Cloudflare
// `response`, a Dify `answer`, and on Bedrock's InvokeModelWithResponseStream a Meta
// Llama `generation` or an Amazon Titan `outputText` …):
// - a string under one of `streamedKeys`, at any depth, is a piece of a text that
//   streams across events: its path (keys and array positions, `token.text`) names one
//   stream masker, so a value split across two events at any offset is masked whole.
//   What a path holds back goes out at the start of its next value or, at `[DONE]` or
//   the end of the stream, in one more event shaped like the last that carried it;
// - a path whose value repeats the one before and adds to it (a running snapshot of
//   the text, at least 8 characters long) is a snapshot from then on: each value goes
//   out masked up to where the hold-back allows (a value it ends with may still grow in
//   the next snapshot), and the last one, whole and masked, at `[DONE]` or the end;
// - every other string (ids, types …) is masked whole in each event.
// An event with no such string is not this dialect's: it is masked in its own text.

import type { SseDialect } from './sse-dialect.js';
import type { StreamState } from './stream-state.js';
import { isRecord, type Json } from './json-value.js';

/** Member names whose string values are streamed text in the APIs above. */
export const streamedKeys: ReadonlySet<string> = new Set(['text', 'content', 'delta', 'token', 'response', 'answer', 'output', 'completion', 'reasoning', 'thinking', 'data', 'generation', 'outputText']);

/** A snapshot's earlier value is at least this long: shorter, a delta that happens to begin with the last one would be taken for one. */
const minSnapshot = 8;

type Path = readonly (string | number)[];

/**
 * Events of the known APIs that no dialect masks (they carry no streamed text): a stream
 * that sends one is of that API, and its other events are not guessed at.
 */
function isKnownApiEvent(event: Json): boolean {
  const type = event['type'];
  if (typeof type === 'string' && (type.startsWith('response.') || knownTypes.has(type))) return true;
  const object = event['object'];
  return object === 'chat.completion.chunk' || object === 'text_completion' || 'usageMetadata' in event;
}
const knownTypes: ReadonlySet<string> = new Set(['message_start', 'message_delta', 'message_stop', 'ping', 'message-start', 'content-start', 'citation-start', 'citation-end']);

export class GenericJsonDialect implements SseDialect {
  readonly #state: StreamState;
  /** The stream is of a known API: no event is guessed at any more. */
  #known = false;
  /** Each path's last value as it came, to tell a running snapshot. */
  readonly #last = new Map<string, string>();
  /** Snapshot paths, each with its last value when the hold-back kept some of it. */
  readonly #snapshots = new Map<string, string | undefined>();
  /** Per path, the last event that carried it, masked, its streamed strings emptied: the shape of an event this dialect adds. */
  readonly #templates = new Map<string, { readonly event: Json; readonly path: Path }>();

  constructor(state: StreamState) {
    this.#state = state;
  }

  /** An event of a known API was seen (another dialect masked it). */
  knownApi(): void {
    this.#known = true;
  }

  handles(event: Json): boolean {
    if (!this.#known && isKnownApiEvent(event)) this.#known = true;
    return !this.#known && streamedStrings(event).length > 0;
  }

  mask(event: Json): unknown[] {
    const state = this.#state;
    const leaves = streamedStrings(event);
    // Everything else masked whole, from the event's root (so profile field paths apply).
    const out = state.maskValue(withoutStrings(event, leaves)) as Json;
    const emptied = structuredClone(out);
    for (const { path, value } of leaves) {
      const key = JSON.stringify(path);
      this.#templates.set(key, { event: emptied, path });
      setAt(out, path, this.#piece(key, value));
    }
    return [out];
  }

  /** At `[DONE]` or the end: what each path still holds, in one more event shaped like the last that carried it. */
  releaseBefore(event: Json | undefined): unknown[] {
    if (event !== undefined) return [];
    const out: unknown[] = [];
    for (const [key, template] of this.#templates) {
      const snapshot = this.#snapshots.get(key);
      const tail = snapshot !== undefined ? this.#state.maskText(snapshot) : this.#state.end(`generic:${key}`);
      if (tail === '') continue;
      const released = structuredClone(template.event);
      setAt(released, template.path, tail);
      out.push(released);
    }
    this.#templates.clear();
    return out;
  }

  #piece(key: string, value: string): string {
    const state = this.#state;
    const last = this.#last.get(key);
    this.#last.set(key, value);
    if (!this.#snapshots.has(key) && last !== undefined && last.length >= minSnapshot && value.length > last.length && value.startsWith(last)) {
      // A running snapshot: this value holds what was held, and more.
      this.#snapshots.set(key, undefined);
      state.drop(`generic:${key}`);
    }
    if (this.#snapshots.has(key)) {
      const { released, held } = state.releasable(value);
      this.#snapshots.set(key, held ? value : undefined);
      return released;
    }
    state.guard(value);
    return state.push(`generic:${key}`, value);
  }
}

/** The strings under streamed keys in `value`, with their paths (at most 64 levels deep). */
function streamedStrings(value: unknown, path: (string | number)[] = [], out: { path: Path; value: string }[] = []): { path: Path; value: string }[] {
  if (path.length > 64) return out;
  if (Array.isArray(value)) value.forEach((v, i) => streamedStrings(v, [...path, i], out));
  else if (isRecord(value)) {
    for (const [k, v] of Object.entries(value)) {
      if (typeof v === 'string' && streamedKeys.has(k)) out.push({ path: [...path, k], value: v });
      else streamedStrings(v, [...path, k], out);
    }
  }
  return out;
}

/** A copy of `event` with the strings at `leaves` emptied. */
function withoutStrings(event: Json, leaves: readonly { path: Path }[]): Json {
  const copy = structuredClone(event);
  for (const { path } of leaves) setAt(copy, path, '');
  return copy;
}

/** Sets the value at `path` when its container is still there (a masked value may have been dropped). */
function setAt(root: unknown, path: Path, value: string): void {
  let at: unknown = root;
  for (const step of path.slice(0, -1)) {
    if (Array.isArray(at) && typeof step === 'number') at = at[step];
    else if (isRecord(at) && typeof step === 'string') at = at[step];
    else return;
  }
  const last = path[path.length - 1]!;
  if (Array.isArray(at) && typeof last === 'number') at[last] = value;
  else if (isRecord(at) && typeof last === 'string') at[last] = value;
}
