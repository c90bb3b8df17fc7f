// The text and token usage of a complete (non-streamed) OpenAI-style JSON answer: chat
// completions, completions and responses shapes. Pure, so it runs wherever the answer
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

/** Summary of a complete (non-streamed) JSON answer. */
export function summarizeJsonAnswer(body: string): AnswerSummary {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return { text: undefined, usage: undefined };
  }
  if (!isRecord(json)) return { text: undefined, usage: undefined };
  const parts: string[] = [];
  const choices = json['choices'];
  if (Array.isArray(choices)) {
    for (const choice of choices) {
      if (!isRecord(choice)) continue;
      const message = choice['message'];
      if (isRecord(message) && typeof message['content'] === 'string') parts.push(message['content']);
      else if (typeof choice['text'] === 'string') parts.push(choice['text']);
    }
  }
  const output = json['output'];
  if (Array.isArray(output)) {
    for (const item of output) {
      if (!isRecord(item) || !Array.isArray(item['content'])) continue;
      for (const part of item['content']) if (isRecord(part) && typeof part['text'] === 'string') parts.push(part['text']);
    }
  }
  return { text: parts.length > 0 ? parts.join('\n') : undefined, usage: usageOf(json) };
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
