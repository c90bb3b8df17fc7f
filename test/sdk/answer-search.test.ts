// What a model asked a tool to do, and what it refused, is in the recorded answer text,
// masked as the client received it, so a full-text search over answers (docs/audit.md)
// finds it: chat completions and the Responses API, JSON and streamed, read with the
// official openai client and searched through the admin API.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type OpenAI from 'openai';
import { redactingPii, startSdkGateway, writeSse, type SdkGateway } from '../helpers/sdk-gateway.js';

const email = 'jane.roe@example.com';
const args = JSON.stringify({ to: email, subject: 'quarterly figures' });
const maskedArgs = '{"to":"[EMAIL]","subject":"quarterly figures"}';

describe('openai SDK: tool calls and refusals are in the recorded answer text, and found by search', () => {
  let h: SdkGateway;
  let client: OpenAI;

  before(async () => {
    h = await startSdkGateway(redactingPii);
    client = await h.client(['ml']);
  });
  after(() => h?.close());

  const chatTools: OpenAI.Chat.ChatCompletionTool[] = [{ type: 'function', function: { name: 'send_mail', parameters: { type: 'object' } } }];

  async function assertRecorded(id: string, text: string, words: readonly string[]): Promise<void> {
    const record = await h.session(id);
    assert.equal(record['response'].text, text);
    for (const word of words) assert.ok((await h.search(word)).includes(id), `a search for ${word} finds ${id}`);
    assert.ok(!(await h.search('jane.roe')).includes(id), 'the raw address is not in the record');
  }

  test('chat completion (JSON): a tool call and a refusal', async () => {
    h.upstream((_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          id: 'chatcmpl-1',
          object: 'chat.completion',
          created: 1,
          model: 'gpt-4o',
          choices: [
            { index: 0, message: { role: 'assistant', content: null, refusal: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'send_mail', arguments: args } }] }, logprobs: null, finish_reason: 'tool_calls' },
            { index: 1, message: { role: 'assistant', content: null, refusal: 'I will not mail unicorn data.' }, logprobs: null, finish_reason: 'stop' },
          ],
        }),
      );
    });
    const { data, response } = await client.chat.completions.create({ model: 'gpt-4o', n: 2, tools: chatTools, messages: [{ role: 'user', content: 'Mail the figures.' }] }).withResponse();
    assert.equal(data.choices[0]!.message.tool_calls![0]!.type === 'function' && data.choices[0]!.message.tool_calls![0]!.function.arguments, maskedArgs);
    await assertRecorded(response.headers.get('gatehouse-exchange-id')!, `I will not mail unicorn data.\nsend_mail(${maskedArgs})`, ['send_mail', 'quarterly figures', 'unicorn']);
  });

  test('chat completion (streamed): a tool call whose arguments arrive in pieces, and a refusal', async () => {
    const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({ id: 'chatcmpl-2', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });
    h.upstream((_req, _body, res) =>
      void writeSse(res, [
        chunk({ role: 'assistant', content: null, refusal: 'No griffin ' }),
        chunk({ refusal: 'mail.' }),
        chunk({ tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'send_mail', arguments: '' } }] }),
        chunk({ tool_calls: [{ index: 0, function: { arguments: args.slice(0, 12) } }] }),
        chunk({ tool_calls: [{ index: 0, function: { arguments: args.slice(12) } }] }),
        chunk({}, 'tool_calls'),
      ]),
    );
    const { data: stream, response } = await client.chat.completions.create({ model: 'gpt-4o', stream: true, tools: chatTools, messages: [{ role: 'user', content: 'Mail the figures.' }] }).withResponse();
    let received = '';
    for await (const event of stream) for (const call of event.choices[0]?.delta.tool_calls ?? []) received += call.function?.arguments ?? '';
    assert.equal(received, maskedArgs);
    await assertRecorded(response.headers.get('gatehouse-exchange-id')!, `No griffin mail.\nsend_mail(${maskedArgs})`, ['send_mail', 'quarterly figures', 'griffin']);
  });

  test('responses (JSON): a function call, an MCP call and a refusal', async () => {
    h.upstream((_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          id: 'resp_1',
          object: 'response',
          created_at: 1,
          status: 'completed',
          model: 'gpt-4.1',
          output: [
            { type: 'message', id: 'msg_1', status: 'completed', role: 'assistant', content: [{ type: 'refusal', refusal: 'No phoenix mail.' }] },
            { type: 'function_call', id: 'fc_1', call_id: 'call_1', name: 'send_mail', arguments: args, status: 'completed' },
            { type: 'mcp_call', id: 'mcp_1', server_label: 'crm', name: 'lookup_contact', arguments: '{"name":"Jane"}' },
          ],
          usage: { input_tokens: 5, output_tokens: 6, total_tokens: 11 },
        }),
      );
    });
    const { response } = await client.responses.create({ model: 'gpt-4.1', input: 'Mail the figures.' }).withResponse();
    await assertRecorded(response.headers.get('gatehouse-exchange-id')!, `No phoenix mail.\nsend_mail(${maskedArgs})\nlookup_contact({"name":"Jane"})`, ['send_mail', 'lookup_contact', 'phoenix']);
  });

  test('responses (streamed): a function call and a custom tool call, in pieces, and a refusal', async () => {
    h.upstream((_req, _body, res) => {
      let seq = 0;
      const response = { id: 'resp_2', object: 'response', created_at: 1, status: 'in_progress', model: 'gpt-4.1', output: [], usage: null };
      const refusalAt = { item_id: 'msg_1', output_index: 0, content_index: 0 };
      void writeSse(
        res,
        [
          { type: 'response.created', sequence_number: seq++, response },
          { type: 'response.output_item.added', sequence_number: seq++, output_index: 0, item: { type: 'message', id: 'msg_1', status: 'in_progress', role: 'assistant', content: [] } },
          { type: 'response.refusal.delta', sequence_number: seq++, ...refusalAt, delta: 'No basilisk ' },
          { type: 'response.refusal.delta', sequence_number: seq++, ...refusalAt, delta: 'mail.' },
          { type: 'response.refusal.done', sequence_number: seq++, ...refusalAt, refusal: 'No basilisk mail.' },
          { type: 'response.output_item.added', sequence_number: seq++, output_index: 1, item: { type: 'function_call', id: 'fc_1', call_id: 'call_1', name: 'send_mail', arguments: '', status: 'in_progress' } },
          { type: 'response.function_call_arguments.delta', sequence_number: seq++, item_id: 'fc_1', output_index: 1, delta: args.slice(0, 12) },
          { type: 'response.function_call_arguments.delta', sequence_number: seq++, item_id: 'fc_1', output_index: 1, delta: args.slice(12) },
          { type: 'response.function_call_arguments.done', sequence_number: seq++, item_id: 'fc_1', output_index: 1, arguments: args },
          { type: 'response.output_item.added', sequence_number: seq++, output_index: 2, item: { type: 'custom_tool_call', id: 'ctc_1', call_id: 'call_2', name: 'run_shell', input: '', status: 'in_progress' } },
          { type: 'response.custom_tool_call_input.delta', sequence_number: seq++, item_id: 'ctc_1', output_index: 2, delta: 'grep wyvern ' },
          { type: 'response.custom_tool_call_input.delta', sequence_number: seq++, item_id: 'ctc_1', output_index: 2, delta: 'notes.txt' },
          { type: 'response.custom_tool_call_input.done', sequence_number: seq++, item_id: 'ctc_1', output_index: 2, input: 'grep wyvern notes.txt' },
          { type: 'response.completed', sequence_number: seq++, response: { ...response, status: 'completed' } },
        ],
        { named: true, done: false },
      );
    });
    const { data: stream, response } = await client.responses.create({ model: 'gpt-4.1', input: 'Mail the figures.', stream: true }).withResponse();
    for await (const _event of stream);
    await assertRecorded(response.headers.get('gatehouse-exchange-id')!, `No basilisk mail.\nsend_mail(${maskedArgs})\nrun_shell(grep wyvern notes.txt)`, ['send_mail', 'run_shell', 'wyvern', 'basilisk']);
  });
});
