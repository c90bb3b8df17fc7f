// The Responses API with the official openai client through an `openai` connection
// with a masking profile and the secrets-in-prompts pack: the input (tool results
// included) is inspected, the answer masked (streamed too) and recorded with its usage.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { startSdkGateway, writeSse, type SdkGateway } from '../helpers/sdk-gateway.js';

const email = 'jane.roe@example.com';
const usage = { input_tokens: 5, input_tokens_details: { cached_tokens: 0 }, output_tokens: 6, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 11 };
const message = (text: string) => ({ type: 'message', id: 'msg_1', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text, annotations: [] }] });
const response = (status: string, output: unknown[], withUsage: unknown = null) => ({ id: 'resp_1', object: 'response', created_at: 1, status, model: 'gpt-4.1', output, usage: withUsage });

describe('openai SDK: the Responses API', () => {
  let h: SdkGateway;
  let client: OpenAI;

  before(async () => {
    h = await startSdkGateway({
      connectionYaml: '    masking: [pii]\n',
      extraYaml: 'masking:\n  profiles:\n    pii: { operator: redact }\npolicy:\n  packs: [secrets-in-prompts]\n',
    });
    client = await h.client(['ml']);
  });
  after(() => h?.close());

  test('security: a secret in a tool result sent back to the model (function_call_output) is refused before forwarding', async () => {
    h.upstream((_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(response('completed', [message('ok')], usage)));
    });
    const before = h.received.length;
    await assert.rejects(
      client.responses.create({
        model: 'gpt-4.1',
        input: [
          { role: 'user', content: 'Read the deploy config.' },
          { type: 'function_call', call_id: 'call_1', name: 'read_file', arguments: '{"path":".env"}' },
          { type: 'function_call_output', call_id: 'call_1', output: 'AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE' },
        ],
      }),
      (error: unknown) => error instanceof OpenAI.PermissionDeniedError && error.code === 'access_denied',
    );
    assert.equal(h.received.length, before, 'nothing was forwarded');
  });

  test('a JSON answer is masked and recorded with its text and usage', async () => {
    h.upstream((_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'x-request-id': 'req_1' });
      res.end(JSON.stringify(response('completed', [message(`Write to ${email}.`)], usage)));
    });
    const { data, response: raw } = await client.responses.create({ model: 'gpt-4.1', input: 'Who do I write to?' }).withResponse();
    assert.equal(data.output_text, 'Write to [EMAIL].');
    assert.equal(raw.headers.get('x-request-id'), 'req_1');
    const record = await h.session(raw.headers.get('gatehouse-exchange-id')!);
    assert.equal(record['operation'], 'responses');
    assert.equal(record['request'].promptText, 'Who do I write to?');
    assert.equal(record['response'].text, 'Write to [EMAIL].');
    assert.deepEqual(record['response'].usage, { promptTokens: 5, completionTokens: 6, totalTokens: 11 });
  });

  test('a streamed answer split inside an address is masked in every event and recorded', async () => {
    const text = `Write to ${email} now`;
    h.upstream((_req, _body, res) => {
      let seq = 0;
      const at = { item_id: 'msg_1', output_index: 0, content_index: 0 };
      void writeSse(
        res,
        [
          { type: 'response.created', sequence_number: seq++, response: response('in_progress', []) },
          { type: 'response.output_item.added', sequence_number: seq++, output_index: 0, item: { ...message(''), status: 'in_progress', content: [] } },
          { type: 'response.content_part.added', sequence_number: seq++, ...at, part: { type: 'output_text', text: '', annotations: [] } },
          ...['Write to ja', 'ne.roe@exa', 'mple.com now'].map((delta) => ({ type: 'response.output_text.delta', sequence_number: seq++, ...at, delta, logprobs: [] })),
          { type: 'response.output_text.done', sequence_number: seq++, ...at, text, logprobs: [] },
          { type: 'response.content_part.done', sequence_number: seq++, ...at, part: { type: 'output_text', text, annotations: [] } },
          { type: 'response.output_item.done', sequence_number: seq++, output_index: 0, item: message(text) },
          { type: 'response.completed', sequence_number: seq++, response: response('completed', [message(text)], usage) },
        ],
        { named: true, done: false },
      );
    });
    const { data: stream, response: raw } = await client.responses.create({ model: 'gpt-4.1', input: 'Who?', stream: true }).withResponse();
    const deltas: string[] = [];
    let completed: OpenAI.Responses.Response | undefined;
    for await (const event of stream) {
      if (event.type === 'response.output_text.delta') deltas.push(event.delta);
      if (event.type === 'response.completed') completed = event.response;
    }
    assert.equal(deltas.join(''), 'Write to [EMAIL] now');
    for (const delta of deltas) assert.ok(!/ja|exa|mple\.com/.test(delta), `a piece of the address reached the client: ${delta}`);
    assert.deepEqual(completed?.output, [message('Write to [EMAIL] now')]);
    const record = await h.session(raw.headers.get('gatehouse-exchange-id')!);
    assert.equal(record['response'].text, 'Write to [EMAIL] now');
    assert.deepEqual(record['response'].usage, { promptTokens: 5, completionTokens: 6, totalTokens: 11 });
    assert.equal(record['complete'], true);
  });
});
