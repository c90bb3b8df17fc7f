// The text and token usage of a complete (non-streamed) OpenAI-style JSON answer: chat
// completions, completions and responses shapes. The text is the answer's text and
// refusals, then its tool calls as `name(arguments)`, so a search finds what a model
// asked a tool to do. Pure, so it runs wherever the answer
// is read: on the relaying thread when a token limit needs the usage at once, otherwise
// where the record is applied (the record journal's worker), off the relaying thread.

import type { TokenUsage } from './types.js';

export interface AnswerSummary {
  readonly text: string | undefined;
  readonly usage: TokenUsage | undefined;
}

/** How an answer whose text and usage are still to be read is encoded (ExchangeOutcome.unreadAnswer). */
export type UnreadAnswerFormat = 'openai-json';

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * The `text` strings of chat content given as parts (a message's, or a streamed delta's),
 * in order, at most 16 levels deep (Mistral:
 * `[{type: 'thinking', thinking: [{type: 'text', text}]}, {type: 'text', text}]`), for a
 * response guard.
 */
export function partTexts(value: unknown, depth = 0, out: string[] = []): string[] {
  if (depth > 16) return out;
  if (Array.isArray(value)) for (const v of value) partTexts(v, depth + 1, out);
  else if (isRecord(value)) {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'text' && typeof v === 'string') {
        if (v !== '') out.push(v);
      } else partTexts(v, depth + 1, out);
    }
  }
  return out;
}

/** Chat message fields OpenAI-compatible servers put the model's reasoning in. */
const chatReasoningFields = ['reasoning_content', 'reasoning'] as const;

/**
 * Summary of a complete (non-streamed) JSON answer. `reasoning`: the reasoning text is
 * read too, where the client reads it: a chat message's `reasoning_content` (vLLM,
 * DeepSeek) or `reasoning` (OpenRouter, Ollama), before its content; a Responses
 * reasoning item's summary and content (reasoning_text), in output order. For a response
 * guard, which checks all the text that reaches the client; the record leaves it out.
 */
export function summarizeJsonAnswer(body: string, { reasoning = false }: { readonly reasoning?: boolean } = {}): AnswerSummary {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return { text: undefined, usage: undefined };
  }
  if (!isRecord(json)) return { text: undefined, usage: undefined };
  const parts: string[] = [];
  // What the model asked tools to do, after the text: searchable like the text.
  const calls: string[] = [];
  const choices = json['choices'];
  if (Array.isArray(choices)) {
    for (const choice of choices) {
      if (!isRecord(choice)) continue;
      const message = choice['message'];
      if (isRecord(message)) {
        if (reasoning) for (const field of chatReasoningFields) if (typeof message[field] === 'string' && message[field] !== '') parts.push(message[field]);
        if (typeof message['content'] === 'string') parts.push(message['content']);
        // For a guard: content as a list of parts (Mistral's thinking and text parts), and an audio answer's transcript.
        else if (reasoning && Array.isArray(message['content'])) partTexts(message['content'], 0, parts); // not push(...): a list of ~130k parts overflows the stack
        if (reasoning && isRecord(message['audio']) && typeof message['audio']['transcript'] === 'string') parts.push(message['audio']['transcript']);
        if (typeof message['refusal'] === 'string' && message['refusal'] !== '') parts.push(message['refusal']);
        const toolCalls = message['tool_calls'];
        if (Array.isArray(toolCalls)) {
          for (const call of toolCalls) {
            if (!isRecord(call)) continue;
            const fn = call['function'];
            const custom = call['custom'];
            if (isRecord(fn)) calls.push(toolCallText(fn['name'], fn['arguments']));
            else if (isRecord(custom)) calls.push(toolCallText(custom['name'], custom['input']));
          }
        }
        // The legacy single `function_call` of older chat models.
        const legacy = message['function_call'];
        if (isRecord(legacy)) calls.push(toolCallText(legacy['name'], legacy['arguments']));
      } else if (typeof choice['text'] === 'string') parts.push(choice['text']);
    }
  }
  const output = json['output'];
  if (Array.isArray(output)) {
    for (const item of output) {
      if (!isRecord(item)) continue;
      const call = toolCallOf(item);
      if (call) calls.push(toolCallText(call.name, call.args));
      // A reasoning item's content (reasoning_text, from open-weight models) is not the
      // answer's text in the record, nor its summary, as in a streamed answer (SseAnswerReader).
      else if (reasoning || item['type'] !== 'reasoning') {
        const summary = item['type'] === 'reasoning' && Array.isArray(item['summary']) ? item['summary'] : [];
        for (const part of [...summary, ...(Array.isArray(item['content']) ? item['content'] : [])]) {
          if (!isRecord(part)) continue;
          if (typeof part['text'] === 'string') parts.push(part['text']);
          else if (typeof part['refusal'] === 'string') parts.push(part['refusal']);
        }
      }
    }
  }
  for (const call of calls) parts.push(call);
  return { text: parts.length > 0 ? parts.join('\n') : undefined, usage: usageOf(json) };
}

/**
 * A Responses output item that is a tool call: its name and arguments (a custom tool's
 * free-text input; the code a code interpreter call runs, under the tool's name).
 */
export function toolCallOf(item: Record<string, unknown>): { name: unknown; args: unknown } | undefined {
  switch (item['type']) {
    case 'function_call':
    case 'mcp_call':
      return { name: item['name'], args: item['arguments'] };
    case 'custom_tool_call':
      return { name: item['name'], args: item['input'] };
    case 'code_interpreter_call':
      return { name: 'code_interpreter', args: item['code'] };
    default:
      return undefined;
  }
}

/**
 * How a tool call reads in the recorded answer text: `name(arguments)` (a custom tool's
 * free-text input in place of the arguments).
 */
export function toolCallText(name: unknown, args: unknown): string {
  return `${typeof name === 'string' ? name : ''}(${typeof args === 'string' ? args : ''})`;
}

export function usageOf(json: Record<string, unknown>): TokenUsage | undefined {
  const usage = json['usage'];
  if (!isRecord(usage)) return undefined;
  const num = (v: unknown) => (typeof v === 'number' ? v : undefined);
  return {
    promptTokens: num(usage['prompt_tokens']) ?? num(usage['input_tokens']),
    completionTokens: num(usage['completion_tokens']) ?? num(usage['output_tokens']),
    totalTokens: num(usage['total_tokens']),
  };
}
