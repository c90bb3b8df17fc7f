// End to end: the real gatehouse process with a masking profile and a response rule, in
// front of an upstream that sends reasoning text the way OpenAI-compatible servers do:
// Responses API `response.reasoning_text.delta` (open-weight models) and
// `response.reasoning_summary_text.delta`, chat chunks' `delta.reasoning_content` (vLLM,
// DeepSeek) and `delta.reasoning` (OpenRouter, Ollama), and the same fields in JSON
// answers. The openai SDK receives that text, so the response guard must read it and
// masking must mask a value split across two reasoning deltas at any offset, streamed
// or not.

import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const email = 'jane.roe@example.com';
const guardMessage = 'The answer held launch codes.';

type Answer = (res: ServerResponse) => void;

/** Writes SSE events, each in its own write (named when they have a `type`), then `[DONE]` for chat. */
function writeSse(res: ServerResponse, events: ReadonlyArray<Record<string, unknown>>, done: boolean): void {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  events.forEach((event, i) => {
    const named = typeof event['type'] === 'string' ? { ...event, sequence_number: i } : event;
    res.write(`${typeof event['type'] === 'string' ? `event: ${event['type']}\n` : ''}data: ${JSON.stringify(named)}\n\n`);
  });
  if (done) res.write('data: [DONE]\n\n');
  res.end();
}

const json = (answer: unknown): Answer => (res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));

/** A chat stream whose reasoning comes in `field` deltas, in `pieces`, then the answer `Done.`. */
function chatStream(field: 'reasoning_content' | 'reasoning', pieces: readonly string[]): Answer {
  const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'deepseek-r1', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });
  return (res) => writeSse(res, [chunk({ role: 'assistant', content: '' }), ...pieces.map((p) => chunk({ [field]: p })), chunk({ content: 'Done.' }), chunk({}, 'stop')], true);
}

const message = { id: 'msg_1', type: 'message', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: 'Done.', annotations: [] }] };
const response = (status: string, output: unknown[]) => ({ id: 'resp_1', object: 'response', created_at: 1, status, model: 'gpt-oss-120b', output, usage: null });

/** A Responses stream whose reasoning item streams `pieces` as `family` deltas, then a message `Done.`. */
function responsesStream(family: 'reasoning_text' | 'reasoning_summary_text', pieces: readonly string[]): Answer {
  const text = pieces.join('');
  const at = family === 'reasoning_text' ? { item_id: 'rs_1', output_index: 0, content_index: 0 } : { item_id: 'rs_1', output_index: 0, summary_index: 0 };
  const item = family === 'reasoning_text' ? { id: 'rs_1', type: 'reasoning', summary: [], content: [{ type: 'reasoning_text', text }] } : { id: 'rs_1', type: 'reasoning', summary: [{ type: 'summary_text', text }] };
  const partEvents = family === 'reasoning_text' ? ['response.content_part.added', 'response.content_part.done'] : ['response.reasoning_summary_part.added', 'response.reasoning_summary_part.done'];
  const part = family === 'reasoning_text' ? { type: 'reasoning_text', text: '' } : { type: 'summary_text', text: '' };
  const msgAt = { item_id: 'msg_1', output_index: 1, content_index: 0 };
  return (res) =>
    writeSse(
      res,
      [
        { type: 'response.created', response: response('in_progress', []) },
        { type: 'response.output_item.added', output_index: 0, item: { id: 'rs_1', type: 'reasoning', summary: [] } },
        { type: partEvents[0], ...at, part },
        ...pieces.map((delta) => ({ type: `response.${family}.delta`, ...at, delta })),
        { type: `response.${family}.done`, ...at, text },
        { type: partEvents[1], ...at, part: { ...part, text } },
        { type: 'response.output_item.done', output_index: 0, item },
        { type: 'response.output_item.added', output_index: 1, item: { ...message, status: 'in_progress', content: [] } },
        { type: 'response.content_part.added', ...msgAt, part: { type: 'output_text', text: '', annotations: [] } },
        { type: 'response.output_text.delta', ...msgAt, delta: 'Done.' },
        { type: 'response.output_text.done', ...msgAt, text: 'Done.' },
        { type: 'response.content_part.done', ...msgAt, part: message.content[0] },
        { type: 'response.output_item.done', output_index: 1, item: message },
        { type: 'response.completed', response: response('completed', [item, message]) },
      ],
      false,
    );
}

describe('reasoning text the client receives is guarded and masked, end to end through the gateway process', () => {
  let upstream: Server;
  let gateway: GatewayProcess;
  let client: OpenAI;
  let answer: Answer = json({});

  before(async () => {
    upstream = createServer((req, res) => {
      req.resume();
      req.on('end', () => answer(res));
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    gateway = await startGatewayProcess(
      `gateway:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: 0 }
  groups: [admins]
connections:
  - name: openai
    type: openai
    target: http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1
    credential: { secret: "\${UPSTREAM_KEY}" }
    access: { groups: [ml] }
    masking: [pii]
masking:
  profiles:
    pii: { operator: redact }
policy:
  rules:
    - { name: no-launch-codes-out, on: response, effect: deny, message: ${guardMessage}, when: [{ keywords: [launch codes] }] }
`,
      { env: { UPSTREAM_KEY: 'sk-upstream-target-secret' } },
    );
    client = new OpenAI({ baseURL: `${gateway.url}/c/openai`, apiKey: await gateway.createKey('bot', ['ml']), maxRetries: 0 });
  });

  after(async () => {
    await gateway?.stop();
    await new Promise((r) => upstream?.close(r));
  });

  /** The reasoning text a chat stream gave the SDK, piece by piece (into `pieces`, so a failed read keeps what came). */
  async function chatReasoning(field: 'reasoning_content' | 'reasoning', pieces: string[] = []): Promise<string[]> {
    const stream = await client.chat.completions.create({ model: 'deepseek-r1', stream: true, messages: [{ role: 'user', content: 'go' }] });
    for await (const chunk of stream) {
      const value = (chunk.choices[0]?.delta as Record<string, unknown> | undefined)?.[field];
      if (typeof value === 'string' && value !== '') pieces.push(value);
    }
    return pieces;
  }

  /** The reasoning text a Responses stream gave the SDK, piece by piece (into `pieces`). */
  async function responsesReasoning(family: 'reasoning_text' | 'reasoning_summary_text', pieces: string[] = []): Promise<string[]> {
    const stream = await client.responses.create({ model: 'gpt-oss-120b', input: 'go', stream: true });
    for await (const event of stream) if (event.type === `response.${family}.delta` && 'delta' in event && typeof event.delta === 'string' && event.delta !== '') pieces.push(event.delta);
    return pieces;
  }

  const streams = [
    ['chat delta.reasoning_content', (p: string[]) => chatStream('reasoning_content', p), (seen?: string[]) => chatReasoning('reasoning_content', seen)],
    ['chat delta.reasoning', (p: string[]) => chatStream('reasoning', p), (seen?: string[]) => chatReasoning('reasoning', seen)],
    ['responses reasoning_text', (p: string[]) => responsesStream('reasoning_text', p), (seen?: string[]) => responsesReasoning('reasoning_text', seen)],
    ['responses reasoning_summary_text', (p: string[]) => responsesStream('reasoning_summary_text', p), (seen?: string[]) => responsesReasoning('reasoning_summary_text', seen)],
  ] as const;

  for (const [name, upstreamAnswer, read] of streams) {
    test(`security: a guarded phrase split across two streamed ${name} deltas blocks the answer before it reaches the client`, async () => {
      answer = upstreamAnswer(['Thinking: the launch co', 'des are 0000.']);
      const seen: string[] = [];
      const error = await read(seen).then(
        (pieces) => assert.fail(`the answer was released: ${pieces.join('')}`),
        (e: unknown) => e,
      );
      assert.ok(error instanceof OpenAI.APIError, String(error));
      assert.match(error.message, new RegExp(guardMessage));
      assert.ok(!seen.join('').includes('0000'), `the reasoning reached the client: ${seen.join('')}`);
    });

    test(`security: an address split across two streamed ${name} deltas at every offset is masked`, async () => {
      const text = `Mail ${email} now.`;
      for (let at = 'Mail '.length + 1; at < 'Mail '.length + email.length; at++) {
        answer = upstreamAnswer([text.slice(0, at), text.slice(at)]);
        assert.equal((await read()).join(''), 'Mail [EMAIL] now.', `split at ${at}`);
      }
    });
  }

  const jsonAnswers = [
    ['chat message.reasoning_content', (t: string) => json({ id: 'chatcmpl-1', object: 'chat.completion', created: 1, model: 'deepseek-r1', choices: [{ index: 0, message: { role: 'assistant', content: 'Done.', reasoning_content: t }, finish_reason: 'stop', logprobs: null }] })],
    ['chat message.reasoning', (t: string) => json({ id: 'chatcmpl-1', object: 'chat.completion', created: 1, model: 'deepseek-r1', choices: [{ index: 0, message: { role: 'assistant', content: 'Done.', reasoning: t }, finish_reason: 'stop', logprobs: null }] })],
    ['responses reasoning_text', (t: string) => json(response('completed', [{ id: 'rs_1', type: 'reasoning', summary: [], content: [{ type: 'reasoning_text', text: t }] }, message]))],
    ['responses reasoning summary', (t: string) => json(response('completed', [{ id: 'rs_1', type: 'reasoning', summary: [{ type: 'summary_text', text: t }] }, message]))],
  ] as const;

  for (const [name, upstreamAnswer] of jsonAnswers) {
    const send = () => (name.startsWith('chat') ? client.chat.completions.create({ model: 'deepseek-r1', messages: [{ role: 'user', content: 'go' }] }) : client.responses.create({ model: 'gpt-oss-120b', input: 'go' }));

    test(`security: a guarded phrase in a JSON answer's ${name} blocks the answer`, async () => {
      answer = upstreamAnswer('Thinking: the launch codes are 0000.');
      const error = await send().then(
        (a) => assert.fail(`the answer was released: ${JSON.stringify(a)}`),
        (e: unknown) => e,
      );
      assert.ok(error instanceof OpenAI.PermissionDeniedError, String(error));
      assert.deepEqual([error.code, error.message], ['response_blocked', `403 ${guardMessage}`]);
    });

    test(`security: an address in a JSON answer's ${name} is masked`, async () => {
      answer = upstreamAnswer(`Mail ${email} now.`);
      const body = JSON.stringify(await send());
      assert.ok(body.includes('Mail [EMAIL] now.') && !body.includes('jane.roe'), body);
    });
  }

  // Mistral's reasoning models send content as a list of parts, the thinking in a `thinking` part.
  const mistralContent = [{ type: 'thinking', thinking: [{ type: 'text', text: 'Thinking: the launch codes are 0000.' }] }, { type: 'text', text: 'Calling the tool.' }];

  test('security: a guarded phrase in a streamed chat delta whose content is a list of parts (Mistral thinking) blocks the answer', async () => {
    const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'magistral', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });
    answer = (res) => writeSse(res, [chunk({ role: 'assistant', content: [mistralContent[0]] }), chunk({ content: 'Done.' }), chunk({}, 'stop')], true);
    let received = '';
    const error = await (async () => {
      const stream = await client.chat.completions.create({ model: 'magistral', stream: true, messages: [{ role: 'user', content: 'go' }] });
      for await (const chunk of stream) received += JSON.stringify(chunk.choices[0]?.delta ?? {});
    })().then(
      () => assert.fail(`the answer was released: ${received}`),
      (e: unknown) => e,
    );
    assert.ok(error instanceof OpenAI.APIError, String(error));
    assert.match(error.message, new RegExp(guardMessage));
    assert.ok(!received.includes('0000'), received);
  });

  test('security: a guarded phrase in a JSON chat message whose content is a list of parts (Mistral thinking), with a tool call, blocks the answer', async () => {
    const toolCall = { id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '{}' } };
    answer = json({ id: 'chatcmpl-1', object: 'chat.completion', created: 1, model: 'magistral', choices: [{ index: 0, message: { role: 'assistant', content: mistralContent, tool_calls: [toolCall] }, finish_reason: 'tool_calls', logprobs: null }] });
    const error = await client.chat.completions.create({ model: 'magistral', messages: [{ role: 'user', content: 'go' }] }).then(
      (a) => assert.fail(`the answer was released: ${JSON.stringify(a)}`),
      (e: unknown) => e,
    );
    assert.ok(error instanceof OpenAI.PermissionDeniedError, String(error));
    assert.equal(error.code, 'response_blocked');
  });
});
