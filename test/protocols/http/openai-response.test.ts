import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SseAnswerReader, summarizeJsonAnswer, type AnswerSummary } from '../../../src/protocols/http/openai-response.js';

// ---------------------------------------------------------------------------
// Realistic streams, shaped like what api.openai.com sends.

const sse = (json: unknown, event?: string) => `${event ? `event: ${event}\n` : ''}data: ${JSON.stringify(json)}\n\n`;

const chatDeltas = ['Hello', ', 世界', '! 👋🏽', ' ça va', '? 🚀', '中文字符', ' done.'];
const chatText = chatDeltas.join('');
const chatUsage = { promptTokens: 12, completionTokens: 9, totalTokens: 21 };

function chatChunk(delta: Record<string, unknown>, finish: string | null = null) {
  return { id: 'chatcmpl-abc', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'gpt-4o-mini', system_fingerprint: 'fp_1', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], usage: null };
}

const chatStream =
  sse(chatChunk({ role: 'assistant', content: '', refusal: null })) +
  chatDeltas.map((content) => sse(chatChunk({ content }))).join('') +
  sse(chatChunk({}, 'stop')) +
  sse({ id: 'chatcmpl-abc', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'gpt-4o-mini', choices: [], usage: { prompt_tokens: 12, completion_tokens: 9, total_tokens: 21, prompt_tokens_details: { cached_tokens: 0 } } }) +
  'data: [DONE]\n\n';

const chatBytes = Buffer.from(chatStream, 'utf8');

function read(chunks: Iterable<Uint8Array>, options: { maxTextBytes: number; maxEventBytes?: number } = { maxTextBytes: 1 << 20 }): AnswerSummary {
  const reader = new SseAnswerReader(options);
  for (const chunk of chunks) reader.push(chunk);
  return reader.summary();
}

function* bytewise(bytes: Uint8Array): Generator<Uint8Array> {
  for (let i = 0; i < bytes.length; i++) yield bytes.subarray(i, i + 1);
}

/** A small deterministic PRNG (mulberry32), so random chunkings are reproducible. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomChunks(bytes: Uint8Array, seed: number, maxChunk: number): Uint8Array[] {
  const next = prng(seed);
  const out: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; ) {
    const size = 1 + Math.floor(next() * maxChunk);
    out.push(bytes.subarray(i, i + size));
    i += size;
  }
  return out;
}

describe('SseAnswerReader: chat completions stream', () => {
  const expected: AnswerSummary = { text: chatText, usage: chatUsage };

  test('(a) fed whole', () => {
    assert.deepEqual(read([chatBytes]), expected);
  });

  test('(b) split into two chunks at every byte offset', () => {
    for (let i = 0; i <= chatBytes.length; i++) {
      const got = read([chatBytes.subarray(0, i), chatBytes.subarray(i)]);
      assert.deepEqual(got, expected, `split at byte ${i} of ${chatBytes.length}`);
    }
  });

  test('(c) one byte at a time', () => {
    assert.deepEqual(read(bytewise(chatBytes)), expected);
  });

  test('(d) with \\r\\n line endings, whole, split everywhere and byte by byte', () => {
    const crlf = Buffer.from(chatStream.replace(/\n/g, '\r\n'), 'utf8');
    assert.ok(crlf.includes('\r\n\r\n'));
    assert.deepEqual(read([crlf]), expected);
    for (let i = 0; i <= crlf.length; i++) {
      assert.deepEqual(read([crlf.subarray(0, i), crlf.subarray(i)]), expected, `split at byte ${i}`);
    }
    assert.deepEqual(read(bytewise(crlf)), expected);
  });

  test('(e) multi-byte UTF-8 (emoji, CJK) split mid-character', () => {
    // The stream really has 2-, 3- and 4-byte characters, and UTF-8 continuation bytes
    // (10xxxxxx) where a split lands inside a character.
    const midCharacter: number[] = [];
    for (let i = 1; i < chatBytes.length; i++) if ((chatBytes[i]! & 0xc0) === 0x80) midCharacter.push(i);
    assert.ok(midCharacter.length > 20, 'the fixture should contain multi-byte characters');
    for (const i of midCharacter) {
      assert.deepEqual(read([chatBytes.subarray(0, i), chatBytes.subarray(i)]), expected, `split inside a character at byte ${i}`);
    }
    // Every byte of a 4-byte emoji in its own chunk.
    const emoji = Buffer.from('👋🏽');
    const start = chatBytes.indexOf(emoji);
    assert.ok(start > 0);
    const pieces = [chatBytes.subarray(0, start), ...bytewise(chatBytes.subarray(start, start + emoji.length)), chatBytes.subarray(start + emoji.length)];
    assert.deepEqual(read(pieces), expected);
  });

  test('random chunkings (seeded) give the same answer', () => {
    for (let seed = 1; seed <= 200; seed++) {
      assert.deepEqual(read(randomChunks(chatBytes, seed, 1 + (seed % 40))), expected, `seed ${seed}`);
    }
  });

  test('summary() also reads a last event that has no blank line after it', () => {
    const unterminated = sse(chatChunk({ content: 'a' })) + `data: ${JSON.stringify(chatChunk({ content: 'b' }))}`;
    assert.deepEqual(read([Buffer.from(unterminated)]), { text: 'ab', usage: undefined });
  });

  test('comments, event/id/retry fields, "data:" without a space and non-JSON data are tolerated', () => {
    const stream = [
      ': keep-alive\n\n',
      'retry: 1000\nid: 7\n\n',
      `event: message\nid: 8\ndata:${JSON.stringify(chatChunk({ content: 'x' }))}\n\n`,
      'data: {not json}\n\n',
      'data: "a string"\n\n',
      'data: [1,2]\n\n',
      `data: ${JSON.stringify(chatChunk({ content: 'y' }))}\n\n`,
      'data: [DONE]\n\n',
    ].join('');
    assert.deepEqual(read([Buffer.from(stream)]), { text: 'xy', usage: undefined });
  });

  test('a stream of tool calls reads as name(arguments), one per line, each call reassembled from its deltas', () => {
    const stream =
      sse(chatChunk({ role: 'assistant', content: null, tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'f', arguments: '' } }] })) +
      sse(chatChunk({ tool_calls: [{ index: 0, function: { arguments: '{"a":' } }] })) +
      sse(chatChunk({ tool_calls: [{ index: 1, id: 'call_2', type: 'function', function: { name: 'g', arguments: '{}' } }] })) +
      sse(chatChunk({ tool_calls: [{ index: 0, function: { arguments: '1}' } }] })) +
      sse(chatChunk({}, 'tool_calls')) +
      'data: [DONE]\n\n';
    assert.deepEqual(read([Buffer.from(stream)]), { text: 'f({"a":1})\ng({})', usage: undefined });
  });

  test('a refusal is read apart from the content, and tool calls come after the text', () => {
    const stream =
      sse(chatChunk({ role: 'assistant', content: 'Checking.', refusal: null })) +
      sse(chatChunk({ content: null, refusal: 'I cannot ' })) +
      sse(chatChunk({ refusal: 'help.', tool_calls: [{ index: 0, id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }] })) +
      sse(chatChunk({}, 'stop'));
    assert.deepEqual(read([Buffer.from(stream)]), { text: 'Checking.\nI cannot help.\nf({})', usage: undefined });
  });

  test('an empty stream has neither text nor usage', () => {
    assert.deepEqual(read([]), { text: undefined, usage: undefined });
    assert.deepEqual(read([Buffer.alloc(0)]), { text: undefined, usage: undefined });
    assert.deepEqual(read([Buffer.from('data: [DONE]\n\n')]), { text: undefined, usage: undefined });
  });
});

describe('SseAnswerReader: Responses API stream', () => {
  const deltas = ['Bonjour', ' ', '🌍', ' — 你好'];
  const text = deltas.join('');
  const response = (status: string, usage: unknown, output: unknown[] = []) => ({ id: 'resp_1', object: 'response', created_at: 1_700_000_000, status, model: 'gpt-4.1', output, usage });
  const messageItem = { id: 'msg_1', type: 'message', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text, annotations: [] }] };
  const stream =
    sse({ type: 'response.created', sequence_number: 0, response: response('in_progress', null) }, 'response.created') +
    sse({ type: 'response.in_progress', sequence_number: 1, response: response('in_progress', null) }, 'response.in_progress') +
    sse({ type: 'response.output_item.added', sequence_number: 2, output_index: 0, item: { id: 'msg_1', type: 'message', status: 'in_progress', role: 'assistant', content: [] } }, 'response.output_item.added') +
    sse({ type: 'response.content_part.added', sequence_number: 3, item_id: 'msg_1', output_index: 0, content_index: 0, part: { type: 'output_text', text: '', annotations: [] } }, 'response.content_part.added') +
    deltas.map((delta, i) => sse({ type: 'response.output_text.delta', sequence_number: 4 + i, item_id: 'msg_1', output_index: 0, content_index: 0, delta }, 'response.output_text.delta')).join('') +
    sse({ type: 'response.output_text.done', sequence_number: 8, item_id: 'msg_1', output_index: 0, content_index: 0, text }, 'response.output_text.done') +
    sse({ type: 'response.output_item.done', sequence_number: 9, output_index: 0, item: messageItem }, 'response.output_item.done') +
    sse(
      { type: 'response.completed', sequence_number: 10, response: response('completed', { input_tokens: 15, input_tokens_details: { cached_tokens: 0 }, output_tokens: 6, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 21 }, [messageItem]) },
      'response.completed',
    );
  const bytes = Buffer.from(stream);
  const expected: AnswerSummary = { text, usage: { promptTokens: 15, completionTokens: 6, totalTokens: 21 } };

  test('reassembles the deltas (not the .done text) and reads usage from response.completed', () => {
    assert.deepEqual(read([bytes]), expected);
  });

  test('split at every byte offset', () => {
    for (let i = 0; i <= bytes.length; i++) assert.deepEqual(read([bytes.subarray(0, i), bytes.subarray(i)]), expected, `split at byte ${i}`);
  });

  test('one byte at a time', () => {
    assert.deepEqual(read(bytewise(bytes)), expected);
  });

  test('a part or call whose deltas never came is read from its .done event or output item; reasoning is not answer text', () => {
    const events = [
      { type: 'response.output_item.added', output_index: 0, item: { type: 'reasoning', summary: [] } },
      { type: 'response.reasoning_summary_text.delta', output_index: 0, summary_index: 0, delta: 'Plan.' },
      { type: 'response.reasoning_text.delta', output_index: 0, content_index: 0, delta: 'Thinking.' },
      { type: 'response.output_item.added', output_index: 1, item: { type: 'mcp_call', name: 'send', arguments: '' } },
      { type: 'response.mcp_call_arguments.done', output_index: 1, arguments: '{"to":"ops"}' },
      { type: 'response.output_item.added', output_index: 2, item: { type: 'function_call', name: 'f', arguments: '' } },
      { type: 'response.function_call_arguments.delta', output_index: 2, delta: '{"a":' },
      { type: 'response.function_call_arguments.delta', output_index: 2, delta: '1}' },
      { type: 'response.function_call_arguments.done', output_index: 2, arguments: '{"a":1}' },
      { type: 'response.output_item.done', output_index: 2, item: { type: 'function_call', name: 'f', arguments: '{"a":1}' } },
      { type: 'response.output_item.done', output_index: 3, item: { type: 'custom_tool_call', name: 'sh', input: 'ls' } },
      { type: 'response.code_interpreter_call_code.delta', output_index: 4, delta: 'print(' },
      { type: 'response.code_interpreter_call_code.delta', output_index: 4, delta: '1)' },
      { type: 'response.code_interpreter_call_code.done', output_index: 4, code: 'print(1)' },
      { type: 'response.output_item.added', output_index: 4, item: { type: 'code_interpreter_call', code: '' } },
      { type: 'response.output_text.done', output_index: 5, content_index: 0, text: 'Whole.' },
      { type: 'response.output_text.delta', output_index: 5, content_index: 1, delta: 'Del' },
      { type: 'response.output_text.delta', output_index: 5, content_index: 1, delta: 'ta.' },
      { type: 'response.output_text.done', output_index: 5, content_index: 1, text: 'Delta.' },
    ];
    assert.deepEqual(read([Buffer.from(events.map((e) => sse(e, e.type)).join(''))]), { text: 'Whole.\nDelta.\nsend({"to":"ops"})\nf({"a":1})\nsh(ls)\ncode_interpreter(print(1))', usage: undefined });
  });
});

describe('SseAnswerReader: legacy completions stream', () => {
  const chunk = (text: string, finish: string | null = null) => ({ id: 'cmpl-1', object: 'text_completion', created: 1, model: 'gpt-3.5-turbo-instruct', choices: [{ text, index: 0, logprobs: null, finish_reason: finish }] });
  const stream =
    sse(chunk('Once')) +
    sse(chunk(' upon')) +
    sse(chunk(' a time ⏳')) +
    sse(chunk('', 'length')) +
    sse({ id: 'cmpl-1', object: 'text_completion', created: 1, model: 'gpt-3.5-turbo-instruct', choices: [], usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 } }) +
    'data: [DONE]\n\n';

  test('reads choices[0].text and the usage chunk', () => {
    const bytes = Buffer.from(stream);
    const expected = { text: 'Once upon a time ⏳', usage: { promptTokens: 3, completionTokens: 4, totalTokens: 7 } };
    assert.deepEqual(read([bytes]), expected);
    assert.deepEqual(read(bytewise(bytes)), expected);
  });
});

describe('SseAnswerReader: bounded memory', () => {
  test('maxTextBytes stops collecting text, without throwing; usage is still read', () => {
    const deltas = Array.from({ length: 200 }, (_, i) => `token${i} `);
    const stream = deltas.map((content) => sse(chatChunk({ content }))).join('') + sse({ choices: [], usage: { prompt_tokens: 1, completion_tokens: 200, total_tokens: 201 } }) + 'data: [DONE]\n\n';
    const maxTextBytes = 100;
    const got = read(randomChunks(Buffer.from(stream), 7, 64), { maxTextBytes });
    const full = deltas.join('');
    assert.ok(got.text !== undefined);
    assert.ok(full.startsWith(got.text), 'the kept text is a prefix of the answer');
    const longest = Math.max(...deltas.map((d) => Buffer.byteLength(d)));
    // Today the cap is checked before appending a delta, so at most one delta overshoots.
    assert.ok(Buffer.byteLength(got.text) < maxTextBytes + longest, `kept ${Buffer.byteLength(got.text)} bytes`);
    assert.ok(Buffer.byteLength(got.text) >= maxTextBytes);
    assert.deepEqual(got.usage, { promptTokens: 1, completionTokens: 200, totalTokens: 201 });
  });

  test('maxTextBytes is a hard cap on the kept text', () => {
    const stream = sse(chatChunk({ content: '12345678' })) + sse(chatChunk({ content: 'abcdefgh' })) + sse(chatChunk({ content: 'ZZZ' }));
    const got = read([Buffer.from(stream)], { maxTextBytes: 10 });
    assert.ok(Buffer.byteLength(got.text ?? '') <= 10, `kept ${JSON.stringify(got.text)}`);
  });

  test('maxTextBytes of 0 keeps no text', () => {
    assert.deepEqual(read([chatBytes], { maxTextBytes: 0 }), { text: undefined, usage: chatUsage });
  });

  test('an event larger than maxEventBytes is dropped without throwing; text before it is kept', () => {
    const before = sse(chatChunk({ content: 'kept' }));
    const huge = sse(chatChunk({ content: 'x'.repeat(10_000) }));
    const reader = new SseAnswerReader({ maxTextBytes: 1 << 20, maxEventBytes: 1024 });
    reader.push(Buffer.from(before));
    // The oversized event arrives in pieces, as it would from the network.
    const hugeBytes = Buffer.from(huge);
    for (let i = 0; i < hugeBytes.length; i += 512) reader.push(hugeBytes.subarray(i, i + 512));
    const summary = reader.summary();
    assert.equal(summary.text, 'kept');
  });

  test('a never-ending event (no blank line) does not grow without bound or throw', () => {
    const reader = new SseAnswerReader({ maxTextBytes: 1024, maxEventBytes: 4096 });
    reader.push(Buffer.from(sse(chatChunk({ content: 'start' }))));
    const line = Buffer.from(`data: ${'y'.repeat(1000)}\n`);
    for (let i = 0; i < 5000; i++) reader.push(line); // ~5 MB, never terminated
    assert.deepEqual(reader.summary(), { text: 'start', usage: undefined });
  });

  test('usage sent after an oversized event is still read', () => {
    const stream = sse(chatChunk({ content: 'a' })) + sse(chatChunk({ content: 'x'.repeat(5000) })) + sse(chatChunk({ content: 'b' })) + sse({ choices: [], usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } });
    const bytes = Buffer.from(stream);
    const reader = new SseAnswerReader({ maxTextBytes: 1 << 20, maxEventBytes: 1024 });
    for (let i = 0; i < bytes.length; i += 100) reader.push(bytes.subarray(i, i + 100));
    assert.deepEqual(reader.summary().usage, { promptTokens: 1, completionTokens: 2, totalTokens: 3 });
  });
});

describe('summarizeJsonAnswer', () => {
  test('chat completion', () => {
    const body = JSON.stringify({
      id: 'chatcmpl-1',
      object: 'chat.completion',
      created: 1,
      model: 'gpt-4o-mini',
      choices: [{ index: 0, message: { role: 'assistant', content: 'Hi 👋, 世界', refusal: null, annotations: [] }, logprobs: null, finish_reason: 'stop' }],
      usage: { prompt_tokens: 9, completion_tokens: 4, total_tokens: 13, completion_tokens_details: { reasoning_tokens: 0 } },
    });
    assert.deepEqual(summarizeJsonAnswer(body), { text: 'Hi 👋, 世界', usage: { promptTokens: 9, completionTokens: 4, totalTokens: 13 } });
  });

  test('chat completion with several choices joins them by newline', () => {
    const body = JSON.stringify({ choices: [{ index: 0, message: { content: 'one' } }, { index: 1, message: { content: 'two' } }] });
    assert.deepEqual(summarizeJsonAnswer(body), { text: 'one\ntwo', usage: undefined });
  });

  test('chat completion tool calls read as name(arguments), after the text and refusal', () => {
    const body = JSON.stringify({ choices: [{ index: 0, message: { role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }, { id: 'd', type: 'custom', custom: { name: 'sh', input: 'ls -l' } }] }, finish_reason: 'tool_calls' }], usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 } });
    assert.deepEqual(summarizeJsonAnswer(body), { text: 'f({})\nsh(ls -l)', usage: { promptTokens: 5, completionTokens: 7, totalTokens: 12 } });
    const refused = JSON.stringify({ choices: [{ index: 0, message: { role: 'assistant', content: null, refusal: 'I cannot help.' }, finish_reason: 'stop' }] });
    assert.deepEqual(summarizeJsonAnswer(refused), { text: 'I cannot help.', usage: undefined });
  });

  test('responses output: refusal parts, then function, custom tool and MCP calls', () => {
    const body = JSON.stringify({
      output: [
        { type: 'function_call', name: 'f', arguments: '{"a":1}', call_id: 'c1' },
        { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Done.' }, { type: 'refusal', refusal: 'Not that.' }] },
        { type: 'custom_tool_call', name: 'sh', input: 'ls', call_id: 'c2' },
        { type: 'mcp_call', name: 'send', arguments: '{}', server_label: 'mail' },
      ],
    });
    assert.deepEqual(summarizeJsonAnswer(body), { text: 'Done.\nNot that.\nf({"a":1})\nsh(ls)\nsend({})', usage: undefined });
  });

  test('responses output: a reasoning item is not answer text; a code interpreter call reads as code_interpreter(code)', () => {
    const body = JSON.stringify({
      output: [
        { type: 'reasoning', summary: [{ type: 'summary_text', text: 'Plan.' }], content: [{ type: 'reasoning_text', text: 'Thinking.' }] },
        { type: 'code_interpreter_call', code: 'print(1)', container_id: 'c', outputs: null },
        { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'One.' }] },
      ],
    });
    assert.deepEqual(summarizeJsonAnswer(body), { text: 'One.\ncode_interpreter(print(1))', usage: undefined });
    // A response guard reads all the text that reaches the client, reasoning (summary and content) included.
    assert.deepEqual(summarizeJsonAnswer(body, { reasoning: true }), { text: 'Plan.\nThinking.\nOne.\ncode_interpreter(print(1))', usage: undefined });
  });

  test("chat message reasoning (reasoning_content, reasoning) is not answer text, but a response guard reads it, before the content", () => {
    for (const field of ['reasoning_content', 'reasoning']) {
      const body = JSON.stringify({ object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: 'One.', [field]: 'Thinking.' }, finish_reason: 'stop' }] });
      assert.deepEqual(summarizeJsonAnswer(body), { text: 'One.', usage: undefined }, field);
      assert.deepEqual(summarizeJsonAnswer(body, { reasoning: true }), { text: 'Thinking.\nOne.', usage: undefined }, field);
    }
  });

  test('for a response guard: chat content as a list of parts (Mistral thinking) and an audio transcript are read; the record reads neither', () => {
    const body = JSON.stringify({ object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: [{ type: 'thinking', thinking: [{ type: 'text', text: 'Thinking.' }] }, { type: 'text', text: 'One.' }], audio: { id: 'a', data: '', transcript: 'Spoken.' }, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }] }, finish_reason: 'tool_calls' }] });
    assert.deepEqual(summarizeJsonAnswer(body), { text: 'f({})', usage: undefined });
    assert.deepEqual(summarizeJsonAnswer(body, { reasoning: true }), { text: 'Thinking.\nOne.\nSpoken.\nf({})', usage: undefined });
  });

  test('legacy completion', () => {
    const body = JSON.stringify({ id: 'cmpl-1', object: 'text_completion', choices: [{ text: 'Once upon a time', index: 0, logprobs: null, finish_reason: 'length' }], usage: { prompt_tokens: 2, completion_tokens: 4, total_tokens: 6 } });
    assert.deepEqual(summarizeJsonAnswer(body), { text: 'Once upon a time', usage: { promptTokens: 2, completionTokens: 4, totalTokens: 6 } });
  });

  test('responses', () => {
    const body = JSON.stringify({
      id: 'resp_1',
      object: 'response',
      status: 'completed',
      output: [
        { id: 'rs_1', type: 'reasoning', summary: [] },
        { id: 'msg_1', type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Part one.', annotations: [] }, { type: 'output_text', text: 'Part two.', annotations: [] }] },
      ],
      usage: { input_tokens: 20, input_tokens_details: { cached_tokens: 0 }, output_tokens: 8, output_tokens_details: { reasoning_tokens: 2 }, total_tokens: 28 },
    });
    assert.deepEqual(summarizeJsonAnswer(body), { text: 'Part one.\nPart two.', usage: { promptTokens: 20, completionTokens: 8, totalTokens: 28 } });
  });

  test('embeddings: usage without completion tokens, no text', () => {
    const body = JSON.stringify({ object: 'list', data: [{ object: 'embedding', index: 0, embedding: [0.1, 0.2] }], model: 'text-embedding-3-small', usage: { prompt_tokens: 8, total_tokens: 8 } });
    assert.deepEqual(summarizeJsonAnswer(body), { text: undefined, usage: { promptTokens: 8, completionTokens: undefined, totalTokens: 8 } });
  });

  test('an error body has neither text nor usage', () => {
    const body = JSON.stringify({ error: { message: 'Rate limit', type: 'requests', code: 'rate_limit_exceeded', param: null } });
    assert.deepEqual(summarizeJsonAnswer(body), { text: undefined, usage: undefined });
  });

  test('garbage input never throws', () => {
    const none = { text: undefined, usage: undefined };
    for (const body of ['', ' ', 'not json', '{"choices":[', '[]', '[{"choices":[]}]', 'null', '42', '"text"', 'true', '{"choices":"x","output":{},"usage":[]}', '{"choices":[null,1,"a",{"message":null}],"output":[null,{"content":"x"},{"content":[null,{"text":1}]}]}', '{"usage":null}', '\u0000\uFFFD']) {
      assert.deepEqual(summarizeJsonAnswer(body), none, JSON.stringify(body));
    }
  });

  test('non-numeric usage fields are ignored', () => {
    assert.deepEqual(summarizeJsonAnswer('{"usage":{"prompt_tokens":"9","completion_tokens":null,"total_tokens":3}}'), { text: undefined, usage: { promptTokens: undefined, completionTokens: undefined, totalTokens: 3 } });
  });
});
