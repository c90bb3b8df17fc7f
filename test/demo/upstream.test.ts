import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';

const KEY = 'sk-demo-test';

async function withUpstream(fn: (u: DemoUpstream, client: OpenAI) => Promise<void>, opts: { streamDelayMs?: number } = {}): Promise<void> {
  const upstream = await startDemoUpstream({ apiKey: KEY, ...opts });
  const client = new OpenAI({ baseURL: upstream.url, apiKey: KEY, maxRetries: 0 });
  try {
    await fn(upstream, client);
  } finally {
    await upstream.close();
  }
}

test('listens on an ephemeral loopback port and lists models', async () => {
  await withUpstream(async (u, client) => {
    assert.match(u.url, /^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    assert.ok(u.port > 0);
    const ids: string[] = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.deepEqual(ids, ['demo-chat', 'demo-embed']);
    assert.equal(u.lastAuthorization(), `Bearer ${KEY}`);
    const res = await fetch(`${u.url}/models`, { headers: { authorization: `Bearer ${KEY}` } });
    assert.equal(res.headers.get('x-demo-upstream'), 'gatehouse');
    assert.equal(res.headers.get('content-type'), 'application/json');
    assert.equal(Number(res.headers.get('content-length')), (await res.arrayBuffer()).byteLength);
  });
});

test('chat completion returns deterministic text and usage', async () => {
  await withUpstream(async (_u, client) => {
    const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
      { role: 'system', content: 'be brief' },
      { role: 'user', content: 'first question' },
      { role: 'assistant', content: 'ok' },
      { role: 'user', content: [{ type: 'text', text: 'hello there' }, { type: 'text', text: ' world' }] },
    ];
    const r = await client.chat.completions.create({ model: 'demo-chat', messages });
    assert.match(r.id, /^chatcmpl-demo-\d+$/);
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.model, 'demo-chat');
    assert.equal(r.choices[0]?.message.role, 'assistant');
    assert.equal(r.choices[0]?.message.content, 'Demo reply to: hello there world');
    assert.equal(r.choices[0]?.finish_reason, 'stop');
    // words: "be brief"(2) + "first question"(2) + "ok"(1) + "hello there world"(3)
    assert.deepEqual(r.usage, { prompt_tokens: 8, completion_tokens: 6, total_tokens: 14 });

    const long = 'x'.repeat(500);
    const r2 = await client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: long }] });
    assert.equal(r2.choices[0]?.message.content, 'Demo reply to: ' + 'x'.repeat(200));
  });
});

test('streamed chat completion concatenates to the non-stream text and ends with usage', async () => {
  await withUpstream(async (_u, client) => {
    const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [{ role: 'user', content: 'tell me  a\nstory please' }];
    const plain = await client.chat.completions.create({ model: 'demo-chat', messages });
    const stream = await client.chat.completions.create({
      model: 'demo-chat', messages, stream: true, stream_options: { include_usage: true },
    });
    let text = '';
    let contentChunks = 0;
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | null | undefined;
    let first = true;
    for await (const chunk of stream) {
      assert.equal(chunk.object, 'chat.completion.chunk');
      if (first) {
        assert.deepEqual(chunk.choices[0]?.delta, { role: 'assistant', content: '' });
        first = false;
        continue;
      }
      if (chunk.usage) usage = chunk.usage;
      const c = chunk.choices[0];
      if (c?.delta.content) { text += c.delta.content; contentChunks++; }
      if (c?.finish_reason) finish = c.finish_reason;
    }
    assert.equal(text, plain.choices[0]?.message.content);
    assert.equal(contentChunks, 8); // Demo reply to: tell me a story please
    assert.equal(finish, 'stop');
    assert.deepEqual(usage, plain.usage);

    // Without include_usage there is no usage chunk.
    const s2 = await client.chat.completions.create({ model: 'demo-chat', messages, stream: true });
    for await (const chunk of s2) assert.equal(chunk.usage ?? undefined, undefined);
  });
});

test('streaming honours streamDelayMs', async () => {
  await withUpstream(async (_u, client) => {
    const started = Date.now();
    const stream = await client.chat.completions.create({
      model: 'demo-chat', messages: [{ role: 'user', content: 'a b c' }], stream: true,
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    assert.equal(text, 'Demo reply to: a b c');
    // 6 content chunks → 5 waits of 20ms
    assert.ok(Date.now() - started >= 90, `took ${Date.now() - started}ms`);
  }, { streamDelayMs: 20 });
});

test('embeddings: base64 (client default) and float are deterministic 8-dim vectors', async () => {
  await withUpstream(async (_u, client) => {
    const b64 = await client.embeddings.create({ model: 'demo-embed', input: ['alpha', 'beta', 'alpha'] });
    assert.equal(b64.object, 'list');
    assert.equal(b64.data.length, 3);
    for (const [i, d] of b64.data.entries()) {
      assert.equal(d.index, i);
      assert.equal(d.embedding.length, 8);
      for (const v of d.embedding) assert.ok(v >= -1 && v <= 1);
    }
    assert.deepEqual(b64.data[0]?.embedding, b64.data[2]?.embedding);
    assert.notDeepEqual(b64.data[0]?.embedding, b64.data[1]?.embedding);
    assert.deepEqual(b64.usage, { prompt_tokens: 3, total_tokens: 3 });

    const float = await client.embeddings.create({ model: 'demo-embed', input: 'alpha', encoding_format: 'float' });
    assert.equal(float.data.length, 1);
    assert.ok(Array.isArray(float.data[0]?.embedding));
    assert.deepEqual(float.data[0]?.embedding, b64.data[0]?.embedding);

    const again = await client.embeddings.create({ model: 'demo-embed', input: 'alpha', encoding_format: 'float' });
    assert.deepEqual(again.data[0]?.embedding, float.data[0]?.embedding);

    const tokens = await client.embeddings.create({ model: 'demo-embed', input: [[1, 2, 3], [1, 2, 3]], encoding_format: 'float' });
    assert.equal(tokens.data.length, 2);
    assert.deepEqual(tokens.data[0]?.embedding, tokens.data[1]?.embedding);
    assert.equal(tokens.data[0]?.embedding.length, 8);
  });
});

test('responses API: non-stream and stream', async () => {
  await withUpstream(async (_u, client) => {
    const r = await client.responses.create({ model: 'demo-chat', input: 'what is up' });
    assert.match(r.id, /^resp_demo_\d+$/);
    assert.equal(r.object, 'response');
    assert.equal(r.status, 'completed');
    assert.equal(r.output_text, 'Demo response to: what is up');
    assert.deepEqual(r.usage, { input_tokens: 3, output_tokens: 6, total_tokens: 9 });

    const stream = await client.responses.create({
      model: 'demo-chat', stream: true,
      input: [{ role: 'user', content: [{ type: 'input_text', text: 'what is up' }] }],
    });
    const types: string[] = [];
    const seqs: number[] = [];
    let deltas = '';
    let done = '';
    let completed: OpenAI.Responses.Response | undefined;
    for await (const ev of stream) {
      types.push(ev.type);
      seqs.push(ev.sequence_number);
      if (ev.type === 'response.output_text.delta') deltas += ev.delta;
      else if (ev.type === 'response.output_text.done') done = ev.text;
      else if (ev.type === 'response.completed') completed = ev.response;
    }
    assert.equal(types[0], 'response.created');
    assert.equal(types.at(-1), 'response.completed');
    assert.equal(types.filter((t) => t === 'response.output_text.delta').length, 6);
    assert.deepEqual(seqs, seqs.map((_, i) => i));
    assert.equal(deltas, 'Demo response to: what is up');
    assert.equal(done, deltas);
    const part = completed?.output[0];
    if (part?.type !== 'message') assert.fail('expected a message output item');
    assert.deepEqual(part.content[0], { type: 'output_text', text: deltas, annotations: [] });
    assert.deepEqual(types.slice(1, 3), ['response.output_item.added', 'response.content_part.added']);

    // The SDK's stream helper builds the answer from those events (it threw "missing
    // output at index 0" when the item was never announced).
    const helper = client.responses.stream({ model: 'demo-chat', input: 'what is up' });
    let helperDeltas = '';
    for await (const ev of helper) if (ev.type === 'response.output_text.delta') helperDeltas += ev.delta;
    assert.equal(helperDeltas, 'Demo response to: what is up');
    assert.equal((await helper.finalResponse()).output_text, 'Demo response to: what is up');
  });
});

test('legacy completions: non-stream and stream', async () => {
  await withUpstream(async (_u, client) => {
    const r = await client.completions.create({ model: 'demo-chat', prompt: 'once upon a time' });
    assert.equal(r.object, 'text_completion');
    assert.equal(r.choices[0]?.text, 'Demo completion of: once upon a time');
    assert.deepEqual(r.usage, { prompt_tokens: 4, completion_tokens: 7, total_tokens: 11 });

    const stream = await client.completions.create({ model: 'demo-chat', prompt: ['once upon a time', 'ignored'], stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
    assert.equal(text, r.choices[0]?.text);
  });
});

test('wrong API key → AuthenticationError 401, and lastAuthorization records it', async () => {
  await withUpstream(async (u) => {
    const bad = new OpenAI({ baseURL: u.url, apiKey: 'sk-wrong', maxRetries: 0 });
    await assert.rejects(
      bad.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] }),
      (err: unknown) => {
        if (!(err instanceof OpenAI.AuthenticationError)) return assert.fail(`unexpected error: ${String(err)}`);
        assert.equal(err.status, 401);
        assert.equal(err.code, 'invalid_api_key');
        return true;
      },
    );
    assert.equal(u.lastAuthorization(), 'Bearer sk-wrong');
    const res = await fetch(`${u.url}/models`);
    assert.equal(res.status, 401);
    assert.deepEqual(await res.json(), {
      error: { message: 'Incorrect API key provided', type: 'invalid_request_error', param: null, code: 'invalid_api_key' },
    });
    assert.equal(u.lastAuthorization(), undefined);
  });
});

test('no apiKey configured → any request is accepted', async () => {
  const u = await startDemoUpstream();
  try {
    const res = await fetch(`${u.url}/models`);
    assert.equal(res.status, 200);
    await res.arrayBuffer();
  } finally {
    await u.close();
  }
});

test('unknown route → 404 envelope; bad JSON → 400; oversized body → 413', async () => {
  await withUpstream(async (u) => {
    const headers = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
    for (const path of ['/files/abc/content', '/nope', '/chat/completions']) {
      const res = await fetch(`${u.url}${path}`, { headers });
      assert.equal(res.status, 404, path);
      assert.equal(res.headers.get('x-demo-upstream'), 'gatehouse');
      const body = (await res.json()) as { error: { type: string; code: string } };
      assert.equal(body.error.type, 'invalid_request_error');
      assert.equal(body.error.code, 'not_found');
    }

    const bad = await fetch(`${u.url}/chat/completions`, { method: 'POST', headers, body: '{"model":' });
    assert.equal(bad.status, 400);
    const badBody = (await bad.json()) as { error: { type: string; code: string } };
    assert.equal(badBody.error.code, 'invalid_json');
    assert.equal(badBody.error.type, 'invalid_request_error');

    const big = await fetch(`${u.url}/embeddings`, {
      method: 'POST', headers, body: JSON.stringify({ input: 'x'.repeat(4 * 1024 * 1024 + 10) }),
    });
    assert.equal(big.status, 413);
    assert.equal(((await big.json()) as { error: { code: string } }).error.code, 'request_too_large');
  });
});

test('close() tears down in-flight streams', async () => {
  const u = await startDemoUpstream({ streamDelayMs: 1000 });
  const client = new OpenAI({ baseURL: u.url, apiKey: 'x', maxRetries: 0 });
  const stream = await client.chat.completions.create({
    model: 'demo-chat', messages: [{ role: 'user', content: 'a b c d e f' }], stream: true,
  });
  const it = stream[Symbol.asyncIterator]();
  await it.next();
  const started = Date.now();
  await u.close();
  assert.ok(Date.now() - started < 500);
  await assert.rejects(async () => { for (;;) { const r = await it.next(); if (r.done) throw new Error('ended'); } });
});
