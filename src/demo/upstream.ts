// DEMO UPSTREAM — a tiny, deterministic stand-in for a real model server that
// speaks the OpenAI HTTP wire format. It exists only for the quick start,
// end-to-end tests and the benchmark baseline. It has no model behind it and
// must NEVER be used or deployed as a real inference upstream.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface DemoUpstreamOptions {
  host?: string;
  port?: number;
  apiKey?: string;
  streamDelayMs?: number;
}

export interface DemoUpstream {
  /** Base URL including `/v1`, e.g. `http://127.0.0.1:PORT/v1`. */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
  /** Authorization header value of the most recent request (undefined if it had none). */
  readonly lastAuthorization: () => string | undefined;
}

const MAX_BODY_BYTES = 4 * 1024 * 1024;
const ECHO_MAX_CHARS = 200;
const EMBED_DIMS = 8;
const DEMO_HEADER = 'x-demo-upstream';
const JSON_CT = 'application/json';
const SSE_HEADERS = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', [DEMO_HEADER]: 'gatehouse' };
const MODELS_BODY = JSON.stringify({
  object: 'list',
  data: ['demo-chat', 'demo-embed'].map((id) => ({ id, object: 'model', created: 1700000000, owned_by: 'gatehouse-demo' })),
});
const WORD_RE = /\S+\s*/g;
const COUNT_RE = /\S+/g;

type Json = Record<string, unknown>;

function sendJson(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': JSON_CT, 'content-length': Buffer.byteLength(body), [DEMO_HEADER]: 'gatehouse' });
  res.end(body);
}

function sendError(res: ServerResponse, status: number, message: string, code: string, close = false): void {
  if (close) res.setHeader('connection', 'close');
  sendJson(res, status, JSON.stringify({ error: { message, type: 'invalid_request_error', param: null, code } }));
}

/** Approximate token count: number of whitespace-separated words, at least 1. */
function countWords(text: string): number {
  const m = text.match(COUNT_RE);
  return m === null ? 1 : Math.max(1, m.length);
}

/** Split text into "word + trailing whitespace" pieces whose concatenation is the text. */
function splitWords(text: string): string[] {
  return text.match(WORD_RE) ?? [text];
}

/** Text of a message `content`: a string, or an array of `{type, text}` parts. */
function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let out = '';
  for (const part of content as unknown[]) {
    if (typeof part === 'string') out += part;
    else if (part !== null && typeof part === 'object' && typeof (part as Json).text === 'string') out += (part as Json).text as string;
  }
  return out;
}

/** Returns [text of last user message, word count of all messages]. */
function scanMessages(messages: unknown): [string, number] {
  if (typeof messages === 'string') return [messages, countWords(messages)];
  if (!Array.isArray(messages)) return ['', 1];
  let last = '';
  let words = 0;
  for (const m of messages as unknown[]) {
    if (m === null || typeof m !== 'object') continue;
    const text = contentText((m as Json).content);
    const n = text.match(COUNT_RE);
    if (n !== null) words += n.length;
    if ((m as Json).role === 'user') last = text;
  }
  return [last, Math.max(1, words)];
}

/** FNV-1a hash → xorshift32 stream → 8 float32-representable values in [-1, 1]. */
function embed(input: string): number[] {
  let h = 0x811c9dc5;
  for (let i = 0; i < input.length; i++) h = Math.imul(h ^ input.charCodeAt(i), 0x01000193);
  let x = h >>> 0 || 1;
  const out = new Array<number>(EMBED_DIMS);
  for (let i = 0; i < EMBED_DIMS; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    out[i] = Math.fround((x / 0xffffffff) * 2 - 1);
  }
  return out;
}

function toBase64(vec: number[]): string {
  const buf = Buffer.allocUnsafe(vec.length * 4);
  for (let i = 0; i < vec.length; i++) buf.writeFloatLE(vec[i] as number, i * 4);
  return buf.toString('base64');
}

function readBody(req: IncomingMessage): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > MAX_BODY_BYTES) { over = true; chunks.length = 0; resolve(null); } else chunks.push(c);
    });
    req.on('end', () => { if (!over) resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)); });
    req.on('error', reject);
  });
}

function waitDrainOrClose(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => { res.off('drain', done); res.off('close', done); resolve(); };
    res.on('drain', done);
    res.on('close', done);
  });
}

/**
 * Write SSE frames as separate writes. Frames in (delayFrom, delayTo) are preceded by
 * `delayMs` of waiting. Stops as soon as the client goes away or the server closes.
 */
async function writeSse(res: ServerResponse, frames: string[], delayMs: number, delayFrom: number, delayTo: number, signal: AbortSignal): Promise<void> {
  res.writeHead(200, SSE_HEADERS);
  for (let i = 0; i < frames.length; i++) {
    if (delayMs > 0 && i > delayFrom && i < delayTo) {
      try { await sleep(delayMs, undefined, { signal }); } catch { break; }
    }
    if (res.destroyed || signal.aborted) return;
    if (!res.write(frames[i]) && !res.destroyed) await waitDrainOrClose(res);
  }
  if (!res.destroyed) res.end();
}

const sseData = (obj: unknown): string => `data: ${JSON.stringify(obj)}\n\n`;

export async function startDemoUpstream(opts: DemoUpstreamOptions = {}): Promise<DemoUpstream> {
  const expectedAuth = opts.apiKey !== undefined ? `Bearer ${opts.apiKey}` : undefined;
  const delayMs = Math.max(0, opts.streamDelayMs ?? 0);
  const lifetime = new AbortController();
  let lastAuth: string | undefined;
  let counter = 0;

  function chat(res: ServerResponse, body: Json): Promise<void> | void {
    const [lastUser, promptTokens] = scanMessages(body.messages);
    const text = 'Demo reply to: ' + lastUser.slice(0, ECHO_MAX_CHARS);
    const model = typeof body.model === 'string' ? body.model : 'demo-chat';
    const id = `chatcmpl-demo-${++counter}`;
    const created = Math.floor(Date.now() / 1000);
    const completionTokens = countWords(text);
    const usage = { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
    if (body.stream !== true) {
      return sendJson(res, 200, JSON.stringify({
        id, object: 'chat.completion', created, model,
        choices: [{ index: 0, message: { role: 'assistant', content: text, refusal: null }, logprobs: null, finish_reason: 'stop' }],
        usage,
      }));
    }
    const chunk = (delta: Json, finish: string | null): string =>
      sseData({ id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });
    const frames = [chunk({ role: 'assistant', content: '' }, null)];
    for (const w of splitWords(text)) frames.push(chunk({ content: w }, null));
    const last = frames.length;
    frames.push(chunk({}, 'stop'));
    const so = body.stream_options as Json | undefined;
    if (so !== null && typeof so === 'object' && so.include_usage === true) {
      frames.push(sseData({ id, object: 'chat.completion.chunk', created, model, choices: [], usage }));
    }
    frames.push('data: [DONE]\n\n');
    return writeSse(res, frames, delayMs, 1, last, lifetime.signal);
  }

  function completions(res: ServerResponse, body: Json): Promise<void> | void {
    const p = body.prompt;
    const prompt = typeof p === 'string' ? p : Array.isArray(p) && typeof p[0] === 'string' ? (p[0] as string) : '';
    const text = 'Demo completion of: ' + prompt.slice(0, ECHO_MAX_CHARS);
    const model = typeof body.model === 'string' ? body.model : 'demo-chat';
    const id = `cmpl-demo-${++counter}`;
    const created = Math.floor(Date.now() / 1000);
    const promptTokens = countWords(prompt);
    const completionTokens = countWords(text);
    const usage = { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
    const choice = (t: string, finish: string | null): Json => ({ index: 0, text: t, logprobs: null, finish_reason: finish });
    if (body.stream !== true) {
      return sendJson(res, 200, JSON.stringify({ id, object: 'text_completion', created, model, choices: [choice(text, 'stop')], usage }));
    }
    const frame = (c: Json[], u?: Json): string => sseData({ id, object: 'text_completion', created, model, choices: c, ...(u ? { usage: u } : {}) });
    const frames: string[] = [];
    for (const w of splitWords(text)) frames.push(frame([choice(w, null)]));
    const last = frames.length;
    frames.push(frame([choice('', 'stop')]));
    const so = body.stream_options as Json | undefined;
    if (so !== null && typeof so === 'object' && so.include_usage === true) frames.push(frame([], usage));
    frames.push('data: [DONE]\n\n');
    return writeSse(res, frames, delayMs, 0, last, lifetime.signal);
  }

  function embeddings(res: ServerResponse, body: Json): void {
    const raw = body.input;
    const inputs: unknown[] = typeof raw === 'string' ? [raw]
      : Array.isArray(raw) ? (raw.length > 0 && typeof raw[0] === 'number' ? [raw] : raw) : [];
    const b64 = body.encoding_format === 'base64';
    let tokens = 0;
    const data = inputs.map((item, index) => {
      let key: string;
      if (typeof item === 'string') { key = item; tokens += countWords(item); }
      else if (Array.isArray(item)) { key = item.join(','); tokens += Math.max(1, item.length); }
      else { key = String(item); tokens += 1; }
      const vec = embed(key);
      return { object: 'embedding', index, embedding: b64 ? toBase64(vec) : vec };
    });
    const model = typeof body.model === 'string' ? body.model : 'demo-embed';
    sendJson(res, 200, JSON.stringify({ object: 'list', data, model, usage: { prompt_tokens: tokens, total_tokens: tokens } }));
  }

  function responses(res: ServerResponse, body: Json): Promise<void> | void {
    const [lastUser, inputTokens] = scanMessages(body.input);
    const text = 'Demo response to: ' + lastUser.slice(0, ECHO_MAX_CHARS);
    const n = ++counter;
    const id = `resp_demo_${n}`;
    const itemId = `msg_demo_${n}`;
    const model = typeof body.model === 'string' ? body.model : 'demo-chat';
    const outputTokens = countWords(text);
    const response = {
      id, object: 'response', created_at: Math.floor(Date.now() / 1000), status: 'completed', model,
      output: [{ type: 'message', id: itemId, status: 'completed', role: 'assistant', content: [{ type: 'output_text', text, annotations: [] }] }],
      usage: { input_tokens: inputTokens, output_tokens: outputTokens, total_tokens: inputTokens + outputTokens },
    };
    if (body.stream !== true) return sendJson(res, 200, JSON.stringify(response));
    let seq = 0;
    const ev = (type: string, fields: Json): string =>
      `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...fields })}\n\n`;
    // The item and its part are announced before their deltas, as OpenAI does: the
    // SDK's stream helper (client.responses.stream) accumulates into them and throws
    // "missing output at index 0" without.
    const item = response.output[0]!;
    const part = item.content[0]!;
    const frames = [
      ev('response.created', { response: { ...response, status: 'in_progress', output: [], usage: null } }),
      ev('response.output_item.added', { output_index: 0, item: { ...item, status: 'in_progress', content: [] } }),
      ev('response.content_part.added', { item_id: itemId, output_index: 0, content_index: 0, part: { ...part, text: '' } }),
    ];
    const first = frames.length;
    const loc = { item_id: itemId, output_index: 0, content_index: 0 };
    for (const w of splitWords(text)) frames.push(ev('response.output_text.delta', { ...loc, delta: w }));
    const last = frames.length;
    frames.push(ev('response.output_text.done', { ...loc, text }));
    frames.push(ev('response.content_part.done', { ...loc, part }));
    frames.push(ev('response.output_item.done', { output_index: 0, item }));
    frames.push(ev('response.completed', { response }));
    return writeSse(res, frames, delayMs, first, last, lifetime.signal);
  }

  const routes: Record<string, (res: ServerResponse, body: Json) => Promise<void> | void> = {
    '/v1/chat/completions': chat,
    '/v1/completions': completions,
    '/v1/embeddings': embeddings,
    '/v1/responses': responses,
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const auth = req.headers.authorization;
    lastAuth = auth;
    if (expectedAuth !== undefined && auth !== expectedAuth) {
      return sendError(res, 401, 'Incorrect API key provided', 'invalid_api_key');
    }
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (req.method === 'GET' && path === '/v1/models') return sendJson(res, 200, MODELS_BODY);
    const route = req.method === 'POST' ? routes[path] : undefined;
    if (route === undefined) return sendError(res, 404, `Unknown request URL: ${req.method} ${path}`, 'not_found');
    if (Number(req.headers['content-length'] ?? 0) > MAX_BODY_BYTES) {
      return sendError(res, 413, 'Request body too large', 'request_too_large', true);
    }
    const raw = await readBody(req);
    if (raw === null) return sendError(res, 413, 'Request body too large', 'request_too_large', true);
    let body: unknown;
    try { body = JSON.parse(raw.toString('utf8')); } catch { body = undefined; }
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      return sendError(res, 400, 'We could not parse the JSON body of your request.', 'invalid_json');
    }
    return route(res, body as Json);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) sendError(res, 500, 'Demo upstream internal error', 'internal_error');
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => { server.off('error', reject); resolve(); });
  });
  const addr = server.address() as AddressInfo;
  // A wildcard bind is reachable via loopback; advertise that rather than 0.0.0.0 / ::.
  const ip = addr.address === '0.0.0.0' ? '127.0.0.1' : addr.address === '::' ? '::1' : addr.address;
  const host = ip.includes(':') ? `[${ip}]` : ip;
  return {
    url: `http://${host}:${addr.port}/v1`,
    port: addr.port,
    lastAuthorization: () => lastAuth,
    close: () => new Promise<void>((resolve, reject) => {
      lifetime.abort();
      server.close((err) => (err ? reject(err) : resolve()));
      server.closeAllConnections();
    }),
  };
}
