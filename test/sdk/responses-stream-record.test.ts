// The record of a streamed Responses API answer (`stream: true`) holds what the record of
// the same answer as JSON holds: the text of the message items in output order, then each
// tool call as name(arguments) with its full arguments. The stream is what OpenAI sends:
// a reasoning item with a summary, a function call whose arguments arrive in deltas, an
// MCP call, then a message; driven by the official openai client.

import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { after, before, describe, test } from 'node:test';
import type OpenAI from 'openai';
import { startSdkGateway, writeSse, type SdkGateway } from '../helpers/sdk-gateway.js';

const usage = { input_tokens: 9, input_tokens_details: { cached_tokens: 0 }, output_tokens: 30, output_tokens_details: { reasoning_tokens: 12 }, total_tokens: 39 };
const response = (status: string, output: unknown[], withUsage: unknown = null) => ({ id: 'resp_1', object: 'response', created_at: 1, status, model: 'o4-mini', output, usage: withUsage });

// Reasoning is not answer text, streamed or not: neither its summary nor its content (reasoning_text, from open-weight models).
const reasoning = { id: 'rs_1', type: 'reasoning', summary: [{ type: 'summary_text', text: 'The user wants the weather; call the tool.' }], content: [{ type: 'reasoning_text', text: 'Thinking about Paris.' }] };
const weatherCall = { id: 'fc_1', type: 'function_call', status: 'completed', call_id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris","unit":"celsius"}' };
const mcpCall = { id: 'mcp_1', type: 'mcp_call', server_label: 'mail', name: 'send_mail', arguments: '{"to":"ops"}', output: 'sent', error: null };
const message = { id: 'msg_1', type: 'message', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: 'It is sunny in Paris.', annotations: [] }, { type: 'output_text', text: 'Mail sent.', annotations: [] }] };
const output = [reasoning, weatherCall, mcpCall, message];

/** The events OpenAI streams for `output`, deltas cut in pieces. */
function events(): unknown[] {
  let seq = 0;
  const out: unknown[] = [{ type: 'response.created', sequence_number: seq++, response: response('in_progress', []) }, { type: 'response.in_progress', sequence_number: seq++, response: response('in_progress', []) }];
  const pieces = (s: string) => [s.slice(0, 7), s.slice(7, 15), s.slice(15)].filter((p) => p !== '');
  // Reasoning: its summary text streamed by parts.
  out.push({ type: 'response.output_item.added', sequence_number: seq++, output_index: 0, item: { ...reasoning, summary: [], content: [] } });
  for (const delta of pieces(reasoning.content[0]!.text)) out.push({ type: 'response.reasoning_text.delta', sequence_number: seq++, item_id: 'rs_1', output_index: 0, content_index: 0, delta });
  out.push({ type: 'response.reasoning_text.done', sequence_number: seq++, item_id: 'rs_1', output_index: 0, content_index: 0, text: reasoning.content[0]!.text });
  const summary = reasoning.summary[0]!.text;
  const atSummary = { item_id: 'rs_1', output_index: 0, summary_index: 0 };
  out.push({ type: 'response.reasoning_summary_part.added', sequence_number: seq++, ...atSummary, part: { type: 'summary_text', text: '' } });
  for (const delta of pieces(summary)) out.push({ type: 'response.reasoning_summary_text.delta', sequence_number: seq++, ...atSummary, delta });
  out.push({ type: 'response.reasoning_summary_text.done', sequence_number: seq++, ...atSummary, text: summary });
  out.push({ type: 'response.reasoning_summary_part.done', sequence_number: seq++, ...atSummary, part: { type: 'summary_text', text: summary } });
  out.push({ type: 'response.output_item.done', sequence_number: seq++, output_index: 0, item: reasoning });
  // The function call: name in output_item.added, arguments in deltas.
  out.push({ type: 'response.output_item.added', sequence_number: seq++, output_index: 1, item: { ...weatherCall, status: 'in_progress', arguments: '' } });
  for (const delta of pieces(weatherCall.arguments)) out.push({ type: 'response.function_call_arguments.delta', sequence_number: seq++, item_id: 'fc_1', output_index: 1, delta });
  out.push({ type: 'response.function_call_arguments.done', sequence_number: seq++, item_id: 'fc_1', output_index: 1, arguments: weatherCall.arguments });
  out.push({ type: 'response.output_item.done', sequence_number: seq++, output_index: 1, item: weatherCall });
  // The MCP call: its arguments arrive whole in the .done event only.
  out.push({ type: 'response.output_item.added', sequence_number: seq++, output_index: 2, item: { ...mcpCall, arguments: '', output: null } });
  out.push({ type: 'response.mcp_call_arguments.done', sequence_number: seq++, item_id: 'mcp_1', output_index: 2, arguments: mcpCall.arguments });
  out.push({ type: 'response.output_item.done', sequence_number: seq++, output_index: 2, item: mcpCall });
  // The message: two text parts.
  out.push({ type: 'response.output_item.added', sequence_number: seq++, output_index: 3, item: { ...message, status: 'in_progress', content: [] } });
  message.content.forEach((part, content_index) => {
    const at = { item_id: 'msg_1', output_index: 3, content_index };
    out.push({ type: 'response.content_part.added', sequence_number: seq++, ...at, part: { ...part, text: '' } });
    for (const delta of pieces(part.text)) out.push({ type: 'response.output_text.delta', sequence_number: seq++, ...at, delta, logprobs: [] });
    out.push({ type: 'response.output_text.done', sequence_number: seq++, ...at, text: part.text, logprobs: [] });
    out.push({ type: 'response.content_part.done', sequence_number: seq++, ...at, part });
  });
  out.push({ type: 'response.output_item.done', sequence_number: seq++, output_index: 3, item: message });
  out.push({ type: 'response.completed', sequence_number: seq++, response: response('completed', output, usage) });
  return out;
}

describe('openai SDK: the record of a streamed Responses answer', () => {
  let h: SdkGateway;
  let client: OpenAI;
  before(async () => {
    h = await startSdkGateway();
    client = await h.client(['ml']);
  });
  after(() => h?.close());

  const expectedText = 'It is sunny in Paris.\nMail sent.\nget_weather({"city":"Paris","unit":"celsius"})\nsend_mail({"to":"ops"})';

  test('holds the message text in order and every tool call with its full arguments, as the JSON record does', async () => {
    h.upstream((_req, body, res: ServerResponse) => {
      if (JSON.parse(body.toString()).stream) void writeSse(res, events(), { named: true, done: false });
      else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(response('completed', output, usage)));
      }
    });
    const { data: stream, response: raw } = await client.responses.create({ model: 'o4-mini', input: 'Weather in Paris? Then mail ops.', stream: true }).withResponse();
    let completed: OpenAI.Responses.Response | undefined;
    for await (const event of stream) if (event.type === 'response.completed') completed = event.response;
    assert.deepEqual(completed?.output, output, 'the stream reached the client whole');
    const streamed = await h.session(raw.headers.get('gatehouse-exchange-id')!);
    assert.equal(streamed['complete'], true);

    const { response: rawJson } = await client.responses.create({ model: 'o4-mini', input: 'Weather in Paris? Then mail ops.' }).withResponse();
    const json = await h.session(rawJson.headers.get('gatehouse-exchange-id')!);

    assert.equal(json['response'].text, expectedText);
    assert.equal(streamed['response'].text, expectedText);
    assert.deepEqual(streamed['response'].usage, { promptTokens: 9, completionTokens: 30, totalTokens: 39 });
    // A search for a tool's argument finds the streamed exchange, as it finds the JSON one.
    assert.deepEqual((await h.search('celsius')).sort(), [raw.headers.get('gatehouse-exchange-id')!, rawJson.headers.get('gatehouse-exchange-id')!].sort());
  });
});

describe('openai SDK: a response guard on a JSON Responses answer', () => {
  let h: SdkGateway;
  let client: OpenAI;
  before(async () => {
    h = await startSdkGateway({ extraYaml: 'policy:\n  rules:\n    - { name: no-launch-codes-out, on: response, effect: deny, message: The answer held launch codes., when: [{ keywords: [launch codes] }] }\n' });
    client = await h.client(['ml']);
  });
  after(() => h?.close());

  test('security: still reads the reasoning text that reaches the client, though the record leaves it out', async () => {
    const leaky = { id: 'rs_1', type: 'reasoning', summary: [], content: [{ type: 'reasoning_text', text: 'The launch codes are 0000.' }] };
    h.upstream((_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(response('completed', [leaky, { ...message, content: [{ type: 'output_text', text: 'I cannot say.', annotations: [] }] }], usage)));
    });
    const error = await client.responses.create({ model: 'o4-mini', input: 'Codes?' }).then(
      () => assert.fail('the answer was released'),
      (e: unknown) => e as { status?: number; code?: string },
    );
    assert.deepEqual([error.status, error.code], [403, 'response_blocked']);
  });
});
