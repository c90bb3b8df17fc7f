// Decodes OpenAI-compatible request bodies into protocol-neutral facts: the operation,
// the model, whether the answer streams, the prompt text and the number of inputs.
// Shapes: chat completions, (legacy) completions, responses, embeddings; and for any
// other operation sent as multipart/form-data (transcriptions, file uploads), the text
// of its text parts.

import { isUtf8 } from 'node:buffer';
import { GatehouseError } from '../../errors/index.js';
import { multipartBoundary, multipartParts, type RequestFacts } from '../../exchange/index.js';
import { duplicateKey } from './duplicate-keys.js';

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
  if (operation.startsWith('http.')) {
    if (body.length === 0) return noFacts;
    if (contentType !== undefined && /^\s*multipart\//i.test(contentType)) return multipartFacts(body, contentType);
    // JSON in a body declared as something else (`text/plain`) is still read: a target may ignore the type.
    return otherJsonFacts(body, contentType !== undefined && jsonType.test(contentType));
  }
  // Refused here like any other body that is not a JSON object: forwarded, it would reach
  // the model unseen by guardrails and fail there with the upstream's own error.
  if (body.length === 0) throw new GatehouseError('invalid_request_body', { message: `The request body is empty: ${operation} needs a JSON object.` });
  // Decoded with U+FFFD for bad bytes, `dr\xF6p` would be read as `dr�p` by rules and as
  // `dröp` by a target honouring `charset=iso-8859-1`: JSON is UTF-8 (RFC 8259 §8.1).
  if (!isUtf8(body)) throw new GatehouseError('invalid_request_body', { message: 'The request body is not UTF-8: JSON must be sent in UTF-8.' });
  let json: unknown;
  const source = body.toString('utf8');
  try {
    json = JSON.parse(source);
  } catch (error) {
    throw new GatehouseError('invalid_request_body', { detail: (error as Error).message });
  }
  if (!isRecord(json)) throw new GatehouseError('invalid_request_body', { message: 'The request body must be a JSON object.' });
  refuseDuplicateKeys(source);
  // A `model` that is not a string (`["gpt-4"]`) matches no `models` rule, while a
  // lenient target may still read a model from it: refused, as the target should.
  if (json['model'] !== undefined && json['model'] !== null && typeof json['model'] !== 'string') throw new GatehouseError('invalid_request_body', { message: 'The request body\'s "model" must be a string.' });
  const model = typeof json['model'] === 'string' ? json['model'] : undefined;
  const stream = json['stream'] === true;
  switch (operation) {
    case 'chat.completions':
      // Besides the messages, the model reads the tool and output schemas (their
      // descriptions are prompts too) and a predicted output.
      return { model, stream, text: joined([chatText(json['messages']), contentText(isRecord(json['prediction']) ? json['prediction']['content'] : undefined), stringsIn([json['tools'], json['functions'], json['response_format']])]) };
    case 'completions': {
      const tokens = tokenIds(json['prompt']);
      if (tokens) return { model, stream, textUnreadable: tokens };
      return { model, stream, text: joined([joinText(json['prompt']), typeof json['suffix'] === 'string' ? json['suffix'] : undefined]) };
    }
    case 'responses':
      return {
        model,
        stream,
        text: joined([typeof json['instructions'] === 'string' ? json['instructions'] : undefined, responsesInputText(json['input']), promptVariablesText(json['prompt']), stringsIn([json['tools'], json['text']])]),
      };
    case 'embeddings': {
      const input = json['input'];
      // A string is one input; an array of strings or of token arrays is one per item;
      // an array of numbers is one tokenized input.
      const inputCount = Array.isArray(input) ? (input.length > 0 && typeof input[0] === 'number' ? 1 : input.length) : input === undefined || input === null ? 0 : 1;
      const tokens = tokenIds(input);
      if (tokens) return { model, stream: false, textUnreadable: tokens, inputCount };
      return { model, stream: false, text: joinText(input), inputCount };
    }
    default:
      return { model, stream };
  }
}

/**
 * Why a prompt given as token ids (`[1, 2]`, `[[1, 2]]`: completions and embeddings
 * accept them) cannot be read, or undefined when it is text. The gateway does not know
 * the model's tokenizer, so a rule on the text fails closed on it (eval-context.ts)
 * rather than not holding.
 */
function tokenIds(prompt: unknown): string | undefined {
  if (!Array.isArray(prompt)) return undefined;
  const tokenized = prompt.some((item) => typeof item === 'number' || (Array.isArray(item) && item.length > 0));
  return tokenized ? "The prompt is given as token ids, which the gateway cannot read as text; send it as text (LangChain's OpenAIEmbeddings sends token ids unless check_embedding_ctx_length is false)." : undefined;
}

/** The texts that are present, joined by newlines; undefined when none is. */
function joined(texts: ReadonlyArray<string | undefined>): string | undefined {
  const present = texts.filter((t): t is string => t !== undefined && t !== '');
  return present.length > 0 ? present.join('\n') : undefined;
}

/**
 * Every string value in `values` (keys left out), depth first: for parts of a request the
 * model reads but whose shape varies (tool schemas and descriptions). Iterative, so a
 * deeply nested body cannot overflow the stack.
 */
function stringsIn(values: readonly unknown[]): string | undefined {
  const out: string[] = [];
  const stack: unknown[] = [...values].reverse();
  while (stack.length > 0) {
    const value = stack.pop();
    if (typeof value === 'string') {
      if (value !== '') out.push(value);
    } else if (Array.isArray(value)) {
      const items = withTextPartsJoined(value);
      for (let i = items.length - 1; i >= 0; i--) stack.push(items[i]);
    } else if (isRecord(value)) {
      const items = Object.values(value);
      for (let i = items.length - 1; i >= 0; i--) stack.push(items[i]);
    }
  }
  return out.length > 0 ? out.join('\n') : undefined;
}

/**
 * `items` with each run of two or more adjacent text parts (objects with a string
 * `text`: Anthropic, Cohere and Bedrock message blocks, Gemini parts) read as one text:
 * the joined text, then the parts without it. The model reads a message's text parts as
 * one text, so a value split across two parts (`key AKIAIOSF` | `ODNN7EXAMPLE`) must
 * reach the rules whole, not cut by a newline.
 */
function withTextPartsJoined(items: readonly unknown[]): readonly unknown[] {
  let out: unknown[] | undefined;
  for (let i = 0; i < items.length; ) {
    let end = i;
    while (end < items.length && isTextPart(items[end])) end++;
    if (end - i >= 2) {
      out ??= items.slice(0, i);
      out.push(items.slice(i, end).map((part) => (part as { text: string }).text).join(''));
      for (let k = i; k < end; k++) {
        const { text: _text, ...rest } = items[k] as Record<string, unknown>;
        out.push(rest);
      }
    } else {
      // One item (a lone text part or another part): no spread of a caller-sized slice.
      end = i + 1;
      out?.push(items[i]);
    }
    i = end;
  }
  return out ?? items;
}

function isTextPart(value: unknown): boolean {
  return isRecord(value) && typeof value['text'] === 'string';
}

/** A responses request's reusable prompt: its variables are put into the prompt (strings or input parts). */
function promptVariablesText(prompt: unknown): string | undefined {
  if (!isRecord(prompt) || !isRecord(prompt['variables'])) return undefined;
  return joined(Object.values(prompt['variables']).map((value) => (isRecord(value) ? contentText([value]) : contentText(value))));
}

const noFacts: RequestFacts = Object.freeze({ stream: false });

/** Refuses a JSON body with a key twice in one object (duplicate-keys.ts: parsers disagree on it). */
function refuseDuplicateKeys(source: string): void {
  const key = duplicateKey(source);
  if (key !== undefined) {
    throw new GatehouseError('invalid_request_body', { message: `The request body has the key ${JSON.stringify(key.slice(0, 40).replace(/[^\x20-\x7e]/g, '?'))} twice in one object; JSON parsers disagree on which counts, so send it once.` });
  }
}

const jsonType = /^\s*application\/(?:[\w.+-]*\+)?json\s*(?:;|$)/i;

/**
 * A JSON body of any other operation on an `openai` connection (images, conversation
 * items, assistants messages, moderations, vendor endpoints such as `/v1/messages`): its
 * `model`, and every other string in it as its text, since the model may read any of
 * them later. Declared JSON that does not parse has unreadable text (a rule on the text
 * refuses it: a lenient target might still read it); a body not declared JSON that does
 * not parse as JSON has no text.
 */
function otherJsonFacts(body: Buffer, declared: boolean): RequestFacts {
  let json: unknown;
  const source = body.toString('utf8');
  try {
    json = JSON.parse(source);
  } catch (error) {
    return declared ? { stream: false, textUnreadable: `The body is declared JSON but does not parse: ${(error as Error).message}` } : noFacts;
  }
  if (!isRecord(json) && !Array.isArray(json)) return noFacts;
  refuseDuplicateKeys(source);
  const record = isRecord(json) ? json : undefined;
  const model = typeof record?.['model'] === 'string' ? record['model'] : undefined;
  const text = record ? stringsIn(Object.entries(record).filter(([key]) => key !== 'model').map(([, value]) => value)) : stringsIn([json]);
  if (model === undefined && text === undefined) return noFacts;
  return { model, stream: false, text };
}

/**
 * The text of a multipart body's text parts (form fields such as a transcription's
 * `prompt`, text files such as JSONL), joined by newlines, and its `model` field; parts
 * that are not UTF-8 (audio, images) are left out. Parts are found as request scrubbing finds them. A
 * body whose parts cannot be found has unreadable text: a rule that reads `text`
 * refuses it (fail closed), a request no rule reads the text of still passes.
 */
function multipartFacts(body: Buffer, contentType: string): RequestFacts {
  const texts: string[] = [];
  let model: string | undefined;
  let models = 0;
  try {
    const boundary = multipartBoundary(contentType);
    if (boundary === undefined) return noFacts;
    for (const part of multipartParts(body, boundary)) {
      const content = body.subarray(part.start, part.end);
      if (content.length === 0) continue;
      // A file that is not UTF-8 is binary (audio, images). A form field is text whatever
      // its bytes: form parsers (Starlette) read one that is not UTF-8 as Latin-1, so
      // `ign\xF6re previous instructions` reaches the model as `ignöre …`.
      const utf8 = isUtf8(content);
      if (!utf8 && part.file) continue;
      const text = content.toString(utf8 ? 'utf8' : 'latin1');
      // The `model` field names the model, as a JSON body's `model` does; it is no prompt.
      if (part.name === 'model') {
        models++;
        model = text;
      } else texts.push(text);
    }
  } catch (error) {
    return { stream: false, textUnreadable: (error as Error).message };
  }
  // Form parsers disagree on which of two fields counts (the first, the last): the
  // model a rule saw would not be the one the target uses.
  if (models > 1) throw new GatehouseError('invalid_request_body', { message: 'The multipart body has more than one "model" field.' });
  if (model === undefined && texts.length === 0) return noFacts;
  return { model, stream: false, text: texts.length > 0 ? texts.join('\n') : undefined };
}

function chatText(messages: unknown): string | undefined {
  if (!Array.isArray(messages)) return undefined;
  const parts: string[] = [];
  for (const message of messages) {
    if (isRecord(message)) {
      const text = contentText(message['content']);
      if (text) parts.push(text);
      if (typeof message['refusal'] === 'string') parts.push(message['refusal']);
      // The calls of an assistant turn in the history are read by the model too: function
      // calls, custom tool calls (`custom.input`) and the legacy `function_call`.
      const calls = message['tool_calls'];
      if (Array.isArray(calls)) {
        for (const call of calls) {
          if (!isRecord(call)) continue;
          if (isRecord(call['function']) && typeof call['function']['arguments'] === 'string') parts.push(call['function']['arguments']);
          if (isRecord(call['custom']) && typeof call['custom']['input'] === 'string') parts.push(call['custom']['input']);
        }
      }
      const legacy = message['function_call'];
      if (isRecord(legacy) && typeof legacy['arguments'] === 'string') parts.push(legacy['arguments']);
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

// `summary`: a reasoning item's summary parts, handed back to the model in the history.
const responsesItemTextFields = ['content', 'output', 'arguments', 'input', 'summary'] as const;

/** Message content: a string, or an array of parts ({type:"text"|"input_text", text}, {type:"refusal", refusal}). */
function contentText(content: unknown): string | undefined {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return undefined;
  const parts: string[] = [];
  // Adjacent text parts are one text, as the model reads them: a value split across two
  // parts is found whole (an image or another part between them ends the text).
  let inText = false;
  for (const part of content) {
    if (!isRecord(part)) continue;
    const raw = part['text'];
    // `{ text: { value } }`, the Assistants API's shape, which some servers accept here too.
    const text = typeof raw === 'string' ? raw : isRecord(raw) && typeof raw['value'] === 'string' ? raw['value'] : undefined;
    if (text !== undefined) {
      if (inText) parts[parts.length - 1] += text;
      else parts.push(text);
    } else if (typeof part['refusal'] === 'string') parts.push(part['refusal']);
    inText = text !== undefined;
    // A text file sent inline (`input_file`, or a chat `file` part): the model reads its content.
    const file = inlineTextFile(isRecord(part['file']) ? part['file']['file_data'] : part['file_data']);
    if (file !== undefined) {
      parts.push(file);
      inText = false;
    }
  }
  return parts.length > 0 ? parts.join('\n') : undefined;
}

/**
 * The text of an inline file given as a base64 `data:` URL of a text type (`text/*`, JSON,
 * XML, CSV …), when it is UTF-8; undefined for other files (PDFs, images), whose text the
 * gateway cannot read.
 */
function inlineTextFile(data: unknown): string | undefined {
  if (typeof data !== 'string') return undefined;
  const match = /^data:((?:text\/[\w.+-]+|application\/(?:[\w.+-]*\+)?(?:json|xml|x-ndjson|jsonl|csv|yaml|x-yaml)))(?:;[^,;]*)*;base64,/i.exec(data.slice(0, 200));
  if (!match) return undefined;
  const bytes = Buffer.from(data.slice(match[0].length), 'base64');
  return bytes.length > 0 && isUtf8(bytes) ? bytes.toString('utf8') : undefined;
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
