// Decodes OpenAI-compatible request bodies into protocol-neutral facts: the operation,
// the model, whether the answer streams, the prompt text and the number of inputs.
// Shapes: chat completions, (legacy) completions, responses, embeddings; and for any
// other operation sent as multipart/form-data (transcriptions, file uploads), the text
// of its text parts.

import { isUtf8 } from 'node:buffer';
import { GatehouseError } from '../../errors/index.js';
import { multipartBoundary, multipartParts, type RequestFacts } from '../../exchange/index.js';

const operationsByPath: ReadonlyArray<readonly [string, string]> = [
  ['/chat/completions', 'chat.completions'],
  ['/completions', 'completions'],
  ['/embeddings', 'embeddings'],
  ['/responses', 'responses'],
];

/**
 * `chat.completions` for POST …/chat/completions (or …/chat/completions/, which many
 * servers route alike: left as `http.POST`, its prompt would escape inspection);
 * `http.GET /models` otherwise. `pathname` is the policy path (connection.ts policyPath).
 */
export function openaiOperation(method: string, pathname: string): string {
  if (method === 'POST') {
    const path = pathname.length > 1 && pathname.endsWith('/') ? pathname.slice(0, -1) : pathname;
    for (const [suffix, operation] of operationsByPath) if (path.endsWith(suffix)) return operation;
  }
  return httpOperation(method, pathname);
}

export function httpOperation(method: string, pathname: string): string {
  return `http.${method} ${pathname}`;
}

/** `contentType`: the request's, read only for operations that are not a JSON shape (multipart). */
export function openaiFacts(operation: string, body: Buffer, contentType?: string): RequestFacts {
  if (operation.startsWith('http.')) return contentType === undefined || body.length === 0 ? noFacts : multipartFacts(body, contentType);
  // Refused here like any other body that is not a JSON object: forwarded, it would reach
  // the model unseen by guardrails and fail there with the upstream's own error.
  if (body.length === 0) throw new GatehouseError('invalid_request_body', { message: `The request body is empty: ${operation} needs a JSON object.` });
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw new GatehouseError('invalid_request_body', { detail: (error as Error).message });
  }
  if (!isRecord(json)) throw new GatehouseError('invalid_request_body', { message: 'The request body must be a JSON object.' });
  const model = typeof json['model'] === 'string' ? json['model'] : undefined;
  const stream = json['stream'] === true;
  switch (operation) {
    case 'chat.completions':
      return { model, stream, text: chatText(json['messages']) };
    case 'completions':
      return { model, stream, text: joinText(json['prompt']) };
    case 'responses':
      return { model, stream, text: [typeof json['instructions'] === 'string' ? json['instructions'] : undefined, responsesInputText(json['input'])].filter(Boolean).join('\n') || undefined };
    case 'embeddings': {
      const input = json['input'];
      // A string is one input; an array of strings or of token arrays is one per item;
      // an array of numbers is one tokenized input.
      const inputCount = Array.isArray(input) ? (input.length > 0 && typeof input[0] === 'number' ? 1 : input.length) : input === undefined || input === null ? 0 : 1;
      return { model, stream: false, text: joinText(input), inputCount };
    }
    default:
      return { model, stream };
  }
}

const noFacts: RequestFacts = Object.freeze({ stream: false });

/**
 * The text of a multipart body's text parts (form fields such as a transcription's
 * `prompt`, text files such as JSONL), joined by newlines, and its `model` field; parts
 * that are not UTF-8 (audio, images) are left out. Parts are found as request scrubbing finds them. A
 * body whose parts cannot be found has unreadable text: a rule that reads `text`
 * refuses it (fail closed), a request no rule reads the text of still passes.
 */
function multipartFacts(body: Buffer, contentType: string): RequestFacts {
  try {
    const boundary = multipartBoundary(contentType);
    if (boundary === undefined) return noFacts;
    const texts: string[] = [];
    let model: string | undefined;
    for (const part of multipartParts(body, boundary)) {
      const content = body.subarray(part.start, part.end);
      if (content.length === 0 || !isUtf8(content)) continue;
      // The `model` field names the model, as a JSON body's `model` does; it is no prompt.
      if (part.name === 'model' && model === undefined) model = content.toString('utf8');
      else texts.push(content.toString('utf8'));
    }
    if (model === undefined && texts.length === 0) return noFacts;
    return { model, stream: false, text: texts.length > 0 ? texts.join('\n') : undefined };
  } catch (error) {
    return { stream: false, textUnreadable: (error as Error).message };
  }
}

function chatText(messages: unknown): string | undefined {
  if (!Array.isArray(messages)) return undefined;
  const parts: string[] = [];
  for (const message of messages) {
    if (isRecord(message)) {
      const text = contentText(message['content']);
      if (text) parts.push(text);
      // The calls of an assistant turn in the history are read by the model too.
      const calls = message['tool_calls'];
      if (Array.isArray(calls)) for (const call of calls) if (isRecord(call) && isRecord(call['function']) && typeof call['function']['arguments'] === 'string') parts.push(call['function']['arguments']);
    }
  }
  return parts.length > 0 ? parts.join('\n') : undefined;
}

function responsesInputText(input: unknown): string | undefined {
  if (typeof input === 'string') return input;
  if (!Array.isArray(input)) return undefined;
  const parts: string[] = [];
  for (const item of input) {
    if (typeof item === 'string') parts.push(item);
    else if (isRecord(item)) {
      // A message's content; a tool result's output (`function_call_output`,
      // `custom_tool_call_output`: a string or input_text parts), how an agent hands the
      // model what a tool read; a call's arguments from the history.
      for (const field of responsesItemTextFields) {
        const text = contentText(item[field]);
        if (text) parts.push(text);
      }
    }
  }
  return parts.length > 0 ? parts.join('\n') : undefined;
}

const responsesItemTextFields = ['content', 'output', 'arguments', 'input'] as const;

/** Message content: a string, or an array of parts ({type:"text"|"input_text", text}). */
function contentText(content: unknown): string | undefined {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return undefined;
  const parts: string[] = [];
  for (const part of content) {
    if (isRecord(part) && typeof part['text'] === 'string') parts.push(part['text']);
  }
  return parts.length > 0 ? parts.join('\n') : undefined;
}

function joinText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    const strings = value.filter((v): v is string => typeof v === 'string');
    return strings.length > 0 ? strings.join('\n') : undefined;
  }
  return undefined;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
