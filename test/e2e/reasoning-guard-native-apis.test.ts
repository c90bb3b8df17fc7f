// End to end: the real gatehouse process with a response rule on an `http` connection in
// front of an upstream that streams the model's reasoning in the native APIs' formats:
// Anthropic `thinking_delta` (SSE), Gemini `thought` parts (SSE), Ollama
// `message.thinking` (NDJSON) and Bedrock ConverseStream `reasoningContent` (AWS event
// stream). The client receives that text, so a guarded phrase split across two reasoning
// deltas must block the answer before the rest of it reaches the client.

import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { awsFrame } from '../helpers/aws-event-stream.js';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const pieces = ['Thinking: the launch co', 'des are 0000.'] as const;

const sse = (events: readonly object[], named: boolean) =>
  events.map((e) => `${named ? `event: ${(e as { type: string }).type}\n` : ''}data: ${JSON.stringify(e)}\n\n`);

/** Each upstream answer, by path: the reasoning in `pieces`, then an answer `Done.`. */
const answers: Record<string, { readonly type: string; readonly chunks: ReadonlyArray<string | Buffer> }> = {
  '/v1/messages': {
    type: 'text/event-stream',
    chunks: sse(
      [
        { type: 'message_start', message: { id: 'msg_1', type: 'message', role: 'assistant', content: [], model: 'claude-x', usage: { input_tokens: 1, output_tokens: 1 } } },
        { type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '', signature: '' } },
        ...pieces.map((thinking) => ({ type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking } })),
        { type: 'content_block_delta', index: 0, delta: { type: 'signature_delta', signature: 'sig' } },
        { type: 'content_block_stop', index: 0 },
        { type: 'content_block_start', index: 1, content_block: { type: 'text', text: '' } },
        { type: 'content_block_delta', index: 1, delta: { type: 'text_delta', text: 'Done.' } },
        { type: 'content_block_stop', index: 1 },
        { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 9 } },
        { type: 'message_stop' },
      ],
      true,
    ),
  },
  '/v1beta/models/gemini:streamGenerateContent': {
    type: 'text/event-stream',
    chunks: sse(
      [
        ...pieces.map((text) => ({ candidates: [{ content: { parts: [{ text, thought: true }], role: 'model' }, index: 0 }] })),
        { candidates: [{ content: { parts: [{ text: 'Done.' }], role: 'model' }, finishReason: 'STOP', index: 0 }], usageMetadata: { promptTokenCount: 1, candidatesTokenCount: 2, totalTokenCount: 3 } },
      ],
      false,
    ),
  },
  '/api/chat': {
    type: 'application/x-ndjson',
    chunks: [
      ...pieces.map((thinking) => `${JSON.stringify({ model: 'qwen3', message: { role: 'assistant', content: '', thinking }, done: false })}\n`),
      `${JSON.stringify({ model: 'qwen3', message: { role: 'assistant', content: 'Done.' }, done: false })}\n`,
      `${JSON.stringify({ model: 'qwen3', message: { role: 'assistant', content: '' }, done: true, done_reason: 'stop' })}\n`,
    ],
  },
  '/model/claude/converse-stream': {
    type: 'application/vnd.amazon.eventstream',
    chunks: [
      awsFrame('messageStart', { role: 'assistant' }),
      ...pieces.map((text) => awsFrame('contentBlockDelta', { contentBlockIndex: 0, delta: { reasoningContent: { text } } })),
      awsFrame('contentBlockStop', { contentBlockIndex: 0 }),
      awsFrame('contentBlockDelta', { contentBlockIndex: 1, delta: { text: 'Done.' } }),
      awsFrame('contentBlockStop', { contentBlockIndex: 1 }),
      awsFrame('messageStop', { stopReason: 'end_turn' }),
    ],
  },
};

/** The same answers sent whole as JSON, under `/json…`: the reasoning, then `Done.`. */
const reasoning = pieces.join('');
const jsonAnswers: Record<string, unknown> = {
  '/json/v1/messages': { id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-x', content: [{ type: 'thinking', thinking: reasoning, signature: 'sig' }, { type: 'text', text: 'Done.' }], stop_reason: 'end_turn', usage: { input_tokens: 1, output_tokens: 9 } },
  '/json/v1beta/models/gemini:generateContent': { candidates: [{ content: { parts: [{ text: reasoning, thought: true }, { text: 'Done.' }], role: 'model' }, finishReason: 'STOP', index: 0 }] },
  '/json/api/chat': { model: 'qwen3', message: { role: 'assistant', content: 'Done.', thinking: reasoning }, done: true, done_reason: 'stop' },
  '/json/text': { id: 'msg_2', type: 'message', role: 'assistant', model: 'claude-x', content: [{ type: 'text', text: reasoning }, { type: 'text', text: 'Done.' }], stop_reason: 'end_turn' },
  '/json/clean': { content: [{ type: 'text', text: 'Nothing to hide.' }] },
  '/json/model/claude/converse': { output: { message: { role: 'assistant', content: [{ reasoningContent: { reasoningText: { text: reasoning, signature: 'sig' } } }, { text: 'Done.' }] } }, stopReason: 'end_turn', usage: { inputTokens: 1, outputTokens: 9, totalTokens: 10 } },
};

/** Writes `chunks` a few milliseconds apart, each in its own write. */
function writeSlowly(res: ServerResponse, type: string, chunks: ReadonlyArray<string | Buffer>): void {
  res.writeHead(200, { 'content-type': type });
  let i = 0;
  const next = () => (i < chunks.length ? (res.write(chunks[i++]), setTimeout(next, 3)) : res.end());
  next();
}

describe('streamed reasoning of native model APIs is read by response guards, end to end through the gateway process', () => {
  let upstream: Server;
  let gateway: GatewayProcess;
  let key: string;

  before(async () => {
    upstream = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const path = req.url!.split('?')[0]!;
        if (path in jsonAnswers) return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jsonAnswers[path]));
        const answer = answers[path];
        if (!answer) return void res.writeHead(404).end();
        writeSlowly(res, answer.type, answer.chunks);
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    gateway = await startGatewayProcess(`gateway:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: 0 }
  groups: [admins]
connections:
  - name: models
    type: http
    target: http://127.0.0.1:${(upstream.address() as AddressInfo).port}
    access: { groups: [ml] }
policy:
  rules:
    - { name: no-launch-codes-out, on: response, effect: deny, message: The answer held launch codes., when: [{ keywords: [launch codes] }] }
`);
    key = await gateway.createKey('bot', ['ml']);
  });

  after(async () => {
    await gateway?.stop();
    await new Promise((r) => upstream?.close(r));
  });

  /** What of the answer reached the client (bytes as text), and whether it ended in error (cut, or an SSE error event). */
  async function read(path: string): Promise<{ received: string; blocked: boolean }> {
    const res = await fetch(`${gateway.url}/c/models${path}`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: '{}' });
    const chunks: Buffer[] = [];
    let cut = false;
    try {
      for await (const chunk of res.body!) chunks.push(Buffer.from(chunk));
    } catch {
      cut = true;
    }
    const received = Buffer.concat(chunks).toString('latin1');
    return { received, blocked: res.status === 403 || cut || received.includes('response_blocked') };
  }

  for (const [name, path] of [
    ['Anthropic thinking_delta', '/v1/messages'],
    ['Gemini thought parts', '/v1beta/models/gemini:streamGenerateContent?alt=sse'],
    ['Ollama message.thinking', '/api/chat'],
    ['Bedrock ConverseStream reasoningContent', '/model/claude/converse-stream'],
  ] as const) {
    test(`security: a guarded phrase split across two ${name} deltas blocks the answer before it reaches the client`, async () => {
      const { received, blocked } = await read(path);
      assert.ok(blocked, `the answer was released: ${received}`);
      assert.ok(!received.includes('0000') && !received.includes('Done.'), `the reasoning reached the client: ${received}`);
    });
  }

  for (const [name, path] of [
    ['an Anthropic thinking block', '/json/v1/messages'],
    ['an Anthropic text block (answer text, not reasoning: no JSON answer of another API was read)', '/json/text'],
    ['a Gemini thought part', '/json/v1beta/models/gemini:generateContent'],
    ["Ollama's message.thinking", '/json/api/chat'],
    ['a Bedrock Converse reasoningContent block', '/json/model/claude/converse'],
  ] as const) {
    test(`security: a guarded phrase in ${name} of a JSON answer blocks the answer`, async () => {
      const { received, blocked } = await read(path);
      assert.ok(blocked, `the answer was released: ${received}`);
      assert.ok(!received.includes('0000') && !received.includes('Done.'), `the answer reached the client: ${received}`);
      assert.match(received, /"code":"response_blocked"/);
    });
  }

  test('a JSON answer of another API without the phrase passes (the guard reads its text, it does not refuse every such answer)', async () => {
    const res = await fetch(`${gateway.url}/c/models/json/clean`, { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: '{}' });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { content: [{ type: 'text', text: 'Nothing to hide.' }] });
  });
});
