// Streamed chat completions read with the official openai client through a connection
// that masks answers: parallel tool calls (arguments held until complete, masked as
// JSON), `n: 2` choices kept apart (in the answer and in the record), and
// `stream_options.include_usage` recorded.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type OpenAI from 'openai';
import { redactingPii, startSdkGateway, writeSse, type SdkGateway } from '../helpers/sdk-gateway.js';

const base = { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o', system_fingerprint: 'fp_1' };
const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) => ({ ...base, choices, ...extra });
const choice = (index: number, delta: Record<string, unknown>, finish: string | null = null) => ({ index, delta, logprobs: null, finish_reason: finish });
const usage = { prompt_tokens: 10, completion_tokens: 20, total_tokens: 30 };

describe('openai SDK: streamed chat completions with masking', () => {
  let h: SdkGateway;
  let client: OpenAI;

  before(async () => {
    h = await startSdkGateway(redactingPii);
    client = await h.client(['ml']);
  });
  after(() => h?.close());

  test('parallel tool calls: each call keeps its id and name, its arguments arrive whole and masked', async () => {
    h.upstream((_req, _body, res) => {
      const call = (index: number, fn: Record<string, unknown>, head: Record<string, unknown> = {}) => chunk([choice(0, { tool_calls: [{ index, ...head, function: fn }] })]);
      void writeSse(res, [
        chunk([choice(0, { role: 'assistant', content: null })]),
        call(0, { name: 'send_mail', arguments: '' }, { id: 'call_a', type: 'function' }),
        call(0, { arguments: '{"to":"jane.r' }),
        call(0, { arguments: 'oe@example.com"}' }),
        call(1, { name: 'dial', arguments: '' }, { id: 'call_b', type: 'function' }),
        call(1, { arguments: '{"phone":"(415) 555-' }),
        call(1, { arguments: '2671"}' }),
        chunk([choice(0, {}, 'tool_calls')]),
        chunk([], { usage }),
      ]);
    });
    const tools = [
      { type: 'function' as const, function: { name: 'send_mail', parameters: { type: 'object', properties: { to: { type: 'string' } } } } },
      { type: 'function' as const, function: { name: 'dial', parameters: { type: 'object', properties: { phone: { type: 'string' } } } } },
    ];
    const final = await client.chat.completions.stream({ model: 'gpt-4o', tools, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'go' }] }).finalChatCompletion();
    assert.deepEqual(
      final.choices[0]!.message.tool_calls!.map((c) => c.type === 'function' && [c.id, c.function.name, JSON.parse(c.function.arguments)]),
      [
        ['call_a', 'send_mail', { to: '[EMAIL]' }],
        ['call_b', 'dial', { phone: '[PHONE]' }],
      ],
    );
    assert.equal(final.choices[0]!.finish_reason, 'tool_calls');
    assert.deepEqual(final.usage, usage);
  });

  test('n: 2 — each choice is masked on its own and recorded apart, with the usage', async () => {
    h.upstream((_req, _body, res) => {
      void writeSse(res, [
        chunk([choice(0, { role: 'assistant', content: '' }), choice(1, { role: 'assistant', content: '' })]),
        chunk([choice(0, { content: 'Mail jane.r' })]),
        chunk([choice(1, { content: 'Call (415) 5' })]),
        chunk([choice(0, { content: 'oe@example.com today.' })]),
        chunk([choice(1, { content: '55-2671 today.' })]),
        chunk([choice(0, {}, 'stop')]),
        chunk([choice(1, {}, 'stop')]),
        chunk([], { usage }),
      ]);
    });
    const { data: stream, response } = await client.chat.completions
      .create({ model: 'gpt-4o', n: 2, stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'go' }] })
      .withResponse();
    const texts = ['', ''];
    for await (const event of stream) for (const c of event.choices) texts[c.index] += c.delta.content ?? '';
    assert.deepEqual(texts, ['Mail [EMAIL] today.', 'Call [PHONE] today.']);

    const record = await h.session(response.headers.get('gatehouse-exchange-id')!);
    // As a JSON answer with two choices is recorded: each choice's text, one per line.
    assert.equal(record['response'].text, 'Mail [EMAIL] today.\nCall [PHONE] today.');
    assert.deepEqual(record['response'].usage, { promptTokens: 10, completionTokens: 20, totalTokens: 30 });
    assert.deepEqual(record['maskCounts'], { EMAIL: 1, PHONE: 1 });
  });
});
