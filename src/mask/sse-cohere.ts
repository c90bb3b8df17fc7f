// Cohere v2 chat stream events: `content-delta` text (`delta.message.content.text`) per
// `index`, released in its `content-end`; `tool-plan-delta` text (`delta.message.tool_plan`)
// released at `tool-call-start` or `message-end`; `tool-call-delta` arguments
// (`delta.message.tool_calls.function.arguments`) held until `tool-call-end`. What is
// held goes out, masked, as one more delta of its kind just before the closing event.

import type { SseDialect } from './sse-dialect.js';
import type { StreamState } from './stream-state.js';
import { isRecord, omit, type Json } from './json-value.js';

/** Cohere v2 chat stream events whose text or arguments stream, or that close one. */
const cohereEvents: ReadonlySet<string> = new Set(['content-delta', 'content-end', 'tool-plan-delta', 'tool-call-start', 'tool-call-delta', 'tool-call-end', 'message-end']);

export class CohereDialect implements SseDialect {
  readonly #state: StreamState;

  constructor(state: StreamState) {
    this.#state = state;
  }

  handles(event: Json): boolean {
    const type = event['type'];
    return typeof type === 'string' && cohereEvents.has(type);
  }

  mask(event: Json): unknown[] {
    const state = this.#state;
    const type = event['type'] as string;
    const index = event['index'];
    const message = isRecord(event['delta']) && isRecord(event['delta']['message']) ? event['delta']['message'] : undefined;
    if (type === 'content-delta' && message && isRecord(message['content']) && typeof message['content']['text'] === 'string') {
      const text = message['content']['text'];
      state.guard(text);
      const content = { ...(state.maskValue(omit(message['content'], ['text'])) as Json), text: state.push(`cohere-text:${index}`, text) };
      return [{ ...state.rest(event, ['delta']), delta: { message: { ...(state.maskValue(omit(message, ['content'])) as Json), content } } }];
    }
    if (type === 'tool-plan-delta' && message && typeof message['tool_plan'] === 'string') {
      state.guard(message['tool_plan']);
      return [{ ...state.rest(event, ['delta']), delta: { message: { ...(state.maskValue(omit(message, ['tool_plan'])) as Json), tool_plan: state.push('cohere-plan', message['tool_plan']) } } }];
    }
    const calls = message?.['tool_calls'];
    const fn = isRecord(calls) && isRecord(calls['function']) ? calls['function'] : undefined;
    if (type === 'tool-call-delta' && isRecord(calls) && fn && typeof fn['arguments'] === 'string') {
      state.guard(fn['arguments']);
      state.hold(`cohere-args:${index}`, fn['arguments']);
      return [{ ...state.rest(event, ['delta']), delta: { message: { tool_calls: { ...(state.maskValue(omit(calls, ['function'])) as Json), function: { ...(state.maskValue(omit(fn, ['arguments'])) as Json), arguments: '' } } } } }];
    }
    const out: unknown[] = [];
    if (type === 'content-end') {
      const tail = state.end(`cohere-text:${index}`);
      if (tail !== '') out.push({ type: 'content-delta', index, delta: { message: { content: { text: tail } } } });
    }
    if (type === 'tool-call-start' || type === 'message-end') {
      const plan = state.end('cohere-plan');
      if (plan !== '') out.push({ type: 'tool-plan-delta', delta: { message: { tool_plan: plan } } });
    }
    if (type === 'tool-call-end') {
      const held = state.take(`cohere-args:${index}`);
      if (held !== undefined && held !== '') out.push({ type: 'tool-call-delta', index, delta: { message: { tool_calls: { function: { arguments: state.maskArguments(held) } } } } });
    }
    out.push(state.rest(event, []));
    return out;
  }
}
