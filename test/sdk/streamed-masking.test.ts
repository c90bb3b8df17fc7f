// Streamed answers read with the official openai client through a connection with a
// masking profile: every kind of streamed text an OpenAI(-compatible) target sends is
// masked when a value is split across two of its deltas. The upstream speaks the wire
// format of the Responses API and of chat completions (as the SDK's types describe it).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type OpenAI from 'openai';
import { startSdkGateway, writeSse, type SdkGateway } from '../helpers/sdk-gateway.js';

const email = 'jane.roe@example.com';

describe('openai SDK: streamed text is masked whatever field carries it', () => {
  let h: SdkGateway;
  let client: OpenAI;

  before(async () => {
    h = await startSdkGateway({ connectionYaml: '    masking: [pii]\n', extraYaml: 'masking:\n  profiles:\n    pii: { operator: redact }\n' });
    client = await h.client(['ml']);
  });
  after(() => h?.close());

  test('security: responses API refusal and reasoning deltas split inside an address are masked', async () => {
    h.upstream((_req, _body, res) => {
      let seq = 0;
      const response = { id: 'resp_1', object: 'response', created_at: 1, status: 'in_progress', model: 'o4-mini', output: [], usage: null };
      const at = { item_id: 'rs_1', output_index: 0, summary_index: 0 };
      const refusalAt = { item_id: 'msg_1', output_index: 1, content_index: 0 };
      void writeSse(
        res,
        [
          { type: 'response.created', sequence_number: seq++, response },
          { type: 'response.output_item.added', sequence_number: seq++, output_index: 0, item: { type: 'reasoning', id: 'rs_1', summary: [] } },
          { type: 'response.reasoning_summary_part.added', sequence_number: seq++, ...at, part: { type: 'summary_text', text: '' } },
          { type: 'response.reasoning_summary_text.delta', sequence_number: seq++, ...at, delta: 'The user is jane.r' },
          { type: 'response.reasoning_summary_text.delta', sequence_number: seq++, ...at, delta: 'oe@example.com, fine' },
          { type: 'response.reasoning_summary_text.done', sequence_number: seq++, ...at, text: `The user is ${email}, fine` },
          { type: 'response.output_item.added', sequence_number: seq++, output_index: 1, item: { type: 'message', id: 'msg_1', status: 'in_progress', role: 'assistant', content: [] } },
          { type: 'response.content_part.added', sequence_number: seq++, ...refusalAt, part: { type: 'refusal', refusal: '' } },
          { type: 'response.refusal.delta', sequence_number: seq++, ...refusalAt, delta: 'I will not write to jane.r' },
          { type: 'response.refusal.delta', sequence_number: seq++, ...refusalAt, delta: 'oe@example.com.' },
          { type: 'response.refusal.done', sequence_number: seq++, ...refusalAt, refusal: `I will not write to ${email}.` },
          { type: 'response.completed', sequence_number: seq++, response: { ...response, status: 'completed' } },
        ],
        { named: true, done: false },
      );
    });
    const stream = await client.responses.create({ model: 'o4-mini', input: 'Who is the user?', stream: true });
    const deltas: Record<string, string[]> = {};
    for await (const event of stream) if (event.type.endsWith('.delta') && 'delta' in event && typeof event.delta === 'string') (deltas[event.type] ??= []).push(event.delta);
    const summary = deltas['response.reasoning_summary_text.delta'] ?? [];
    const refusal = deltas['response.refusal.delta'] ?? [];
    assert.equal(summary.join(''), 'The user is [EMAIL], fine');
    assert.equal(refusal.join(''), 'I will not write to [EMAIL].');
    for (const piece of [...summary, ...refusal]) assert.ok(!piece.includes('jane.r') && !piece.includes('example.com'), `a piece of the address reached the client: ${piece}`);
  });

  test('security: chat reasoning_content deltas (vLLM, DeepSeek) split inside an address are masked', async () => {
    const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'deepseek-r1', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });
    h.upstream((_req, _body, res) => void writeSse(res, [chunk({ role: 'assistant', content: '', reasoning_content: 'Mail jane.r' }), chunk({ reasoning_content: 'oe@example.com now.' }), chunk({ content: 'Done.' }), chunk({}, 'stop')]));
    const stream = await client.chat.completions.create({ model: 'deepseek-r1', stream: true, messages: [{ role: 'user', content: 'go' }] });
    const pieces: string[] = [];
    let content = '';
    for await (const event of stream) {
      const delta = event.choices[0]?.delta as { content?: string | null; reasoning_content?: string } | undefined;
      if (delta?.reasoning_content) pieces.push(delta.reasoning_content);
      content += delta?.content ?? '';
    }
    assert.equal(pieces.join(''), 'Mail [EMAIL] now.');
    for (const piece of pieces) assert.ok(!piece.includes('jane.r'), `a piece of the address reached the client: ${piece}`);
    assert.equal(content, 'Done.');
  });
});
