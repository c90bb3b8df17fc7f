// The text a response guard reads in an answer held whole (not streamed):
// - an OpenAI-style JSON answer: its text, refusals, reasoning and tool calls, as
//   summarizeJsonAnswer reads them for a guard;
// - a JSON answer of any other shape (Anthropic, Gemini, Ollama, Bedrock Converse, a
//   REST API's JSON …): every string value in it, in document order, joined by
//   newlines. The gateway does not know where such an answer keeps its text, and a
//   guard that read nothing let it through unchecked;
// - an answer that is not JSON (plain text …): the body itself.

import { summarizeJsonAnswer } from './openai-response.js';

export function guardTextOfAnswer(body: string): string {
  const summary = summarizeJsonAnswer(body, { reasoning: true }).text;
  if (summary !== undefined) return summary;
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return body;
  }
  return stringsOf(json).join('\n');
}

/** Every string value in `json`, in document order (walked without recursion: nesting depth is the sender's). */
function stringsOf(json: unknown): string[] {
  const out: string[] = [];
  const stack: unknown[] = [json];
  while (stack.length > 0) {
    const value = stack.pop();
    if (typeof value === 'string') out.push(value);
    else if (typeof value === 'object' && value !== null) {
      const children = Array.isArray(value) ? value : Object.values(value);
      for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]);
    }
  }
  return out;
}
