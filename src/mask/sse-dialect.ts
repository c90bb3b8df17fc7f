// A dialect of JSON event stream (OpenAI chat, OpenAI responses, Anthropic, Gemini,
// Cohere …): which events are its streaming events, and how one of them is masked.
// Dialects keep their held text in the masker's shared StreamState, under keys of their own.

import type { Json } from './json-value.js';

export interface SseDialect {
  /** Whether `event` is one of this dialect's events whose text streams (or closes a stream). */
  handles(event: Json): boolean;
  /** One upstream event → the events to write in its place (held text released before a closing event). */
  mask(event: Json): unknown[];
  /**
   * Events this dialect holds back that must go out before `event`, an event it does not
   * handle (undefined: the end of the stream, `[DONE]`, or data that is not JSON).
   */
  releaseBefore?(event: Json | undefined): unknown[];
}
