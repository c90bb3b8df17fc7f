// Streamed answers read with the official openai client through a connection with a
// masking profile: every kind of streamed text an OpenAI(-compatible) target sends is
// masked when a value is split across two of its deltas. The upstream speaks the wire
// format of the Responses API and of chat completions (as the SDK's types describe it).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type OpenAI from 'openai';
import { redactingPii, startSdkGateway, writeSse, type SdkGateway } from '../helpers/sdk-gateway.js';

const email = 'jane.roe@example.com';

describe('openai SDK: streamed text is masked whatever field carries it', () => {
  let h: SdkGateway;
  let client: OpenAI;

  before(async () => {
    h = await startSdkGateway(redactingPii);
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

  test('security: logprobs spell the answer token by token: withheld when a value was masked, released at the finish when none was (streamed and JSON)', async () => {
    const lp = (token: string) => ({ token, logprob: -0.1, bytes: [...Buffer.from(token)], top_logprobs: [{ token, logprob: -0.1, bytes: [...Buffer.from(token)] }] });
    const chunk = (delta: Record<string, unknown>, logprobs: unknown, finish: string | null = null) => ({ id: 'chatcmpl-4', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o', choices: [{ index: 0, delta, logprobs, finish_reason: finish }] });
    const streamed = async (tokens: string[]) => {
      h.upstream((_req, _body, res) => void writeSse(res, [...tokens.map((t) => chunk({ content: t }, { content: [lp(t)], refusal: null })), chunk({}, null, 'stop')]));
      const stream = await client.chat.completions.create({ model: 'gpt-4o', stream: true, logprobs: true, top_logprobs: 1, messages: [{ role: 'user', content: 'x' }] });
      let text = '';
      const logprobTokens: string[] = [];
      for await (const event of stream) {
        text += event.choices[0]?.delta?.content ?? '';
        for (const entry of event.choices[0]?.logprobs?.content ?? []) logprobTokens.push(entry.token, Buffer.from(entry.bytes!).toString(), ...(entry.top_logprobs ?? []).map((t) => t.token));
      }
      return { text, logprobTokens };
    };
    // The tokens `jane`, `.roe`, `@example` went out as they came, beside the masked text.
    const secret = await streamed(['Mail', ' jane', '.roe', '@example', '.com', ' now']);
    assert.equal(secret.text, 'Mail [EMAIL] now');
    assert.deepEqual(secret.logprobTokens, []);
    const clean = await streamed(['All', ' good', ' here']);
    assert.equal(clean.text, 'All good here');
    assert.deepEqual(clean.logprobTokens, ['All', 'All', 'All', ' good', ' good', ' good', ' here', ' here', ' here']);

    const json = (content: string[]) =>
      h.upstream((_req, _body, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ id: 'chatcmpl-5', object: 'chat.completion', created: 1, model: 'gpt-4o', choices: [{ index: 0, message: { role: 'assistant', content: content.join(''), refusal: null }, logprobs: { content: content.map(lp), refusal: null }, finish_reason: 'stop' }] }));
      });
    json(['Mail', ' jane', '.roe', '@example', '.com']);
    let answer = await client.chat.completions.create({ model: 'gpt-4o', logprobs: true, messages: [{ role: 'user', content: 'x' }] });
    assert.equal(answer.choices[0]!.message.content, 'Mail [EMAIL]');
    assert.equal(answer.choices[0]!.logprobs, null);
    json(['All', ' good']);
    answer = await client.chat.completions.create({ model: 'gpt-4o', logprobs: true, messages: [{ role: 'user', content: 'x' }] });
    assert.deepEqual(answer.choices[0]!.logprobs!.content!.map((e) => e.token), ['All', ' good']);
  });

  test('security: responses API output_text deltas carry no logprobs; the done and completed events keep them only when nothing was masked', async () => {
    const lp = (token: string) => ({ token, logprob: -0.1, bytes: [...Buffer.from(token)], top_logprobs: [] });
    const tokens = ['Mail', ' jane', '.roe', '@example', '.com'];
    const text = tokens.join('');
    h.upstream((_req, _body, res) => {
      let seq = 0;
      const at = { item_id: 'msg_1', output_index: 0, content_index: 0 };
      const response = { id: 'resp_2', object: 'response', created_at: 1, status: 'in_progress', model: 'gpt-4o', output: [] };
      const part = { type: 'output_text', text, annotations: [], logprobs: tokens.map(lp) };
      void writeSse(
        res,
        [
          { type: 'response.created', sequence_number: seq++, response },
          ...tokens.map((t) => ({ type: 'response.output_text.delta', sequence_number: seq++, ...at, delta: t, logprobs: [lp(t)] })),
          { type: 'response.output_text.done', sequence_number: seq++, ...at, text, logprobs: tokens.map(lp) },
          { type: 'response.completed', sequence_number: seq++, response: { ...response, status: 'completed', output: [{ type: 'message', id: 'msg_1', status: 'completed', role: 'assistant', content: [part] }] } },
        ],
        { named: true, done: false },
      );
    });
    const stream = await client.responses.create({ model: 'gpt-4o', input: 'x', stream: true, include: ['message.output_text.logprobs'] });
    const events: unknown[] = [];
    for await (const event of stream) events.push(event);
    const wire = JSON.stringify(events);
    for (const piece of ['jane', '.roe', '@example']) assert.ok(!wire.includes(piece), `${piece} reached the client: ${wire}`);
    assert.ok(wire.includes('[EMAIL]'));
  });

  test('security: an upstream that ends SSE lines in CR alone (as the spec allows) gets its events cut and masked: no piece of a split address reaches the client', async () => {
    const chunk = (delta: Record<string, unknown>, finish: string | null = null) => JSON.stringify({ id: 'chatcmpl-3', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });
    h.upstream((_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (const event of [chunk({ content: 'Mail jane.r' }), chunk({ content: 'oe@example.com now.' }), chunk({}, 'stop')]) res.write(`data: ${event}\r\r`);
      res.end('data: [DONE]\r\r');
    });
    const stream = await client.chat.completions.create({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'mail?' }] });
    const pieces: string[] = [];
    for await (const event of stream) pieces.push(event.choices[0]?.delta?.content ?? '');
    assert.equal(pieces.join(''), 'Mail [EMAIL] now.');
    for (const piece of pieces) assert.ok(!piece.includes('jane.r'), `a piece of the address reached the client: ${piece}`);
  });

  test("the upstream's keep-alive comments reach the client while the model thinks, as empty comments: a proxy's idle timeout is not hit, no upstream text passes", async () => {
    const chunk = (delta: Record<string, unknown>, finish: string | null = null) => JSON.stringify({ id: 'chatcmpl-4', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });
    let release: () => void = () => undefined;
    const thinking = new Promise<void>((resolve) => (release = resolve));
    h.upstream(async (_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`: ping from ${email}\n\n`);
      await thinking;
      res.write(`data: ${chunk({ role: 'assistant', content: 'Done thinking.' })}\n\n`);
      res.write(`data: ${chunk({}, 'stop')}\n\n`);
      res.end('data: [DONE]\n\n');
    });
    const client = await h.client(['ml']);
    const { response } = await client.chat.completions.create({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'think' }] }).withResponse();
    const reader = response.body!.getReader();
    // Before: the masker dropped comments, so nothing reached the client until the answer did.
    const first = await Promise.race([reader.read(), new Promise<'silence'>((resolve) => setTimeout(() => resolve('silence'), 5000))]);
    release();
    assert.notEqual(first, 'silence', 'the keep-alive reached the client while the upstream was still thinking');
    let received = new TextDecoder().decode((first as { value: Uint8Array }).value);
    assert.equal(received, ':\n\n');
    for (let next = await reader.read(); !next.done; next = await reader.read()) received += new TextDecoder().decode(next.value);
    assert.ok(!received.includes('jane') && !received.includes('ping'), received);
    const text = [...received.matchAll(/"content":"([^"]*)"/g)].map((m) => m[1]).join('');
    assert.equal(text, 'Done thinking.');
  });

  test('security: a short password with symbols in a config snippet, streamed in 3-character deltas, reaches neither the client nor the record', async () => {
    // `Vq8#mT2z!pL9@xR4` has no token of 20+ characters: it came out in clear, streamed and not.
    const text = 'Use this .env:\nDB_HOST=10.0.0.5\ndb_password = "Vq8#mT2z!pL9@xR4"\nDone.';
    const pieces = text.match(/[\s\S]{1,3}/g)!;
    const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({ id: 'chatcmpl-2', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });
    h.upstream((_req, _body, res) => void writeSse(res, [...pieces.map((p) => chunk({ content: p })), chunk({}, 'stop')]));
    const { data: stream, response } = await client.chat.completions.create({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'env?' }] }).withResponse();
    let streamed = '';
    for await (const event of stream) streamed += event.choices[0]?.delta?.content ?? '';
    assert.equal(streamed, 'Use this .env:\nDB_HOST=[IP_ADDRESS]\ndb_password = "[SECRET]"\nDone.');
    const record = await h.session(response.headers.get('gatehouse-exchange-id')!);
    assert.ok(!JSON.stringify(record).includes('mT2z'), 'the record holds no piece of the password');
    assert.equal(record['maskCounts']['SECRET'], 1);
  });
});

/** Every way of cutting `text` in two (both pieces non-empty). */
function splits(text: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 1; i < text.length; i++) out.push([text.slice(0, i), text.slice(i)]);
  return out;
}

describe('openai SDK: tool-call input, MCP arguments and audio transcripts split at every offset are masked', () => {
  let h: SdkGateway;
  let client: OpenAI;

  before(async () => {
    h = await startSdkGateway(redactingPii);
    client = await h.client(['ml']);
  });
  after(() => h?.close());

  /** Streams a responses answer whose one output item (`item`) carries `pieces` as `<family>.delta` events, then reads every delta with the SDK. */
  async function responsesDeltas(item: Record<string, unknown>, family: string, pieces: readonly string[], doneField: string): Promise<{ deltas: string[]; done: string | undefined }> {
    h.upstream((_req, _body, res) => {
      let seq = 0;
      const response = { id: 'resp_1', object: 'response', created_at: 1, status: 'in_progress', model: 'gpt-4.1', output: [], usage: null };
      const at = { item_id: item['id'], output_index: 0 };
      void writeSse(
        res,
        [
          { type: 'response.created', sequence_number: seq++, response },
          { type: 'response.output_item.added', sequence_number: seq++, output_index: 0, item },
          ...pieces.map((delta) => ({ type: `response.${family}.delta`, sequence_number: seq++, ...at, delta })),
          { type: `response.${family}.done`, sequence_number: seq++, ...at, [doneField]: pieces.join('') },
          { type: 'response.completed', sequence_number: seq++, response: { ...response, status: 'completed' } },
        ],
        { named: true, done: false },
      );
    });
    const stream = await client.responses.create({ model: 'gpt-4.1', input: 'Mail the user.', stream: true });
    const deltas: string[] = [];
    let done: string | undefined;
    for await (const event of stream) {
      const e = event as unknown as Record<string, unknown>;
      if (e['type'] === `response.${family}.delta`) deltas.push(e['delta'] as string);
      if (e['type'] === `response.${family}.done`) done = e[doneField] as string;
    }
    return { deltas, done };
  }

  test('security: responses custom tool call input', async () => {
    const item = { type: 'custom_tool_call', id: 'ctc_1', call_id: 'call_1', name: 'send_mail', input: '', status: 'in_progress' };
    for (const [a, b] of splits(`to ${email} now`)) {
      const { deltas, done } = await responsesDeltas(item, 'custom_tool_call_input', [a, b], 'input');
      assert.equal(deltas.join(''), 'to [EMAIL] now', `split ${JSON.stringify([a, b])}: ${JSON.stringify(deltas)}`);
      assert.equal(done, 'to [EMAIL] now');
    }
  });

  test('security: responses MCP call arguments are held until complete', async () => {
    const item = { type: 'mcp_call', id: 'mcp_1', server_label: 'mail', name: 'send', arguments: '' };
    const args = JSON.stringify({ to: email });
    for (const [a, b] of splits(args)) {
      const { deltas, done } = await responsesDeltas(item, 'mcp_call_arguments', [a, b], 'arguments');
      assert.equal(deltas.join(''), '{"to":"[EMAIL]"}', `split ${JSON.stringify([a, b])}: ${JSON.stringify(deltas)}`);
      assert.equal(done, '{"to":"[EMAIL]"}');
    }
  });

  test('security: responses function call arguments are held until complete', async () => {
    const item = { type: 'function_call', id: 'fc_1', call_id: 'call_1', name: 'send_mail', arguments: '', status: 'in_progress' };
    const args = JSON.stringify({ to: email });
    for (const [a, b] of splits(args)) {
      const { deltas, done } = await responsesDeltas(item, 'function_call_arguments', [a, b], 'arguments');
      assert.equal(deltas.join(''), '{"to":"[EMAIL]"}', `split ${JSON.stringify([a, b])}: ${JSON.stringify(deltas)}`);
      assert.equal(done, '{"to":"[EMAIL]"}');
    }
  });

  test('security: chat audio transcript deltas', async () => {
    const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-audio-preview', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });
    for (const [a, b] of splits(`Write to ${email} today.`)) {
      h.upstream((_req, _body, res) =>
        void writeSse(res, [
          chunk({ role: 'assistant', audio: { id: 'audio_1', transcript: a } }),
          chunk({ audio: { transcript: b } }),
          chunk({ audio: { data: 'UklGRg==', expires_at: 1 } }),
          chunk({}, 'stop'),
        ]),
      );
      const stream = await client.chat.completions.create({ model: 'gpt-4o-audio-preview', stream: true, modalities: ['text', 'audio'], audio: { voice: 'alloy', format: 'pcm16' }, messages: [{ role: 'user', content: 'go' }] });
      let transcript = '';
      let data = '';
      for await (const event of stream) {
        const audio = (event.choices[0]?.delta as { audio?: { transcript?: string; data?: string } } | undefined)?.audio;
        transcript += audio?.transcript ?? '';
        data += audio?.data ?? '';
      }
      assert.equal(transcript, 'Write to [EMAIL] today.', `split ${JSON.stringify([a, b])}`);
      assert.equal(data, 'UklGRg==');
    }
  });
});
