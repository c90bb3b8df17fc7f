// Masking of native (non-OpenAI) model APIs behind an `http` connection, through the
// real data plane and forwarder in front of an upstream that speaks the real wire
// format: Anthropic's Messages API (JSON and SSE), Google Gemini's and Cohere's SSE
// streams and Ollama's NDJSON streams. A value
// split across two deltas, two lines or two TCP chunks at any offset comes out masked.

import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { afterEach, describe, test } from 'node:test';
import type { MaskProfile } from '../../../src/mask/index.js';
import { startMaskingHarness, writeEvents, type Harness } from '../../helpers/masking-harness.js';

const pii: MaskProfile = { name: 'pii', operator: 'redact', keepLast: 4, applyTo: 'response' };

let harness: Harness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

async function start(): Promise<Harness> {
  harness = await startMaskingHarness({ profiles: [pii], connectionMasking: ['pii'], connectionType: 'http' });
  return harness;
}

/** An Anthropic SSE event (`event:` line and JSON data). */
const ev = (type: string, data: Record<string, unknown> = {}) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
const textDelta = (index: number, text: string) => ev('content_block_delta', { index, delta: { type: 'text_delta', text } });
const jsonDelta = (index: number, partial: string) => ev('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: partial } });
const messageStart = ev('message_start', { message: { id: 'msg_1', type: 'message', role: 'assistant', content: [], model: 'claude-x', stop_reason: null, usage: { input_tokens: 3, output_tokens: 1 } } });
const messageEnd = [ev('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 9 } }), ev('message_stop')];

interface AnthropicEvent {
  event: string;
  data: { type: string; index?: number; delta?: { type: string; text?: string; partial_json?: string }; content_block?: { type: string; text?: string } };
}

/** Reads an SSE answer as an Anthropic client does: events, then the text and tool inputs of each block. */
async function readAnthropicStream(res: Response): Promise<{ events: AnthropicEvent[]; raw: string; blocks: Map<number, string> }> {
  const raw = await res.text();
  const events: AnthropicEvent[] = [];
  for (const block of raw.split('\n\n')) {
    if (block.trim() === '') continue;
    const lines = block.split('\n');
    const event = lines.find((l) => l.startsWith('event: '))!.slice(7);
    const data = JSON.parse(lines.find((l) => l.startsWith('data: '))!.slice(6)) as AnthropicEvent['data'];
    assert.equal(data.type, event, 'the event line names the data type');
    events.push({ event, data });
  }
  const blocks = new Map<number, string>();
  for (const { data } of events) {
    if (data.type !== 'content_block_delta') continue;
    blocks.set(data.index!, (blocks.get(data.index!) ?? '') + (data.delta!.text ?? data.delta!.partial_json ?? ''));
  }
  return { events, raw, blocks };
}

const post = (h: Harness, path: string, body: unknown) => fetch(`${h.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('Anthropic Messages API behind an http connection', () => {
  test('a JSON answer: content[].text and a tool_use input are masked', async () => {
    const h = await start();
    h.upstream((_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-x', content: [{ type: 'text', text: 'Mail ann@example.com' }, { type: 'tool_use', id: 'toolu_1', name: 'send', input: { to: 'ann@example.com', ssn: '123-45-6789' } }], stop_reason: 'tool_use', usage: { input_tokens: 1, output_tokens: 2 } }));
    });
    const body = (await (await post(h, '/v1/messages', { model: 'claude-x', max_tokens: 10, messages: [] })).json()) as { content: [{ text: string }, { input: Record<string, string> }] };
    assert.equal(body.content[0].text, 'Mail [EMAIL]');
    assert.deepEqual(body.content[1].input, { to: '[EMAIL]', ssn: '[US_SSN]' });
  });

  test('an e-mail split across two text_delta events at every offset comes out masked, in valid events', async () => {
    const h = await start();
    const value = 'jane.roe@example.com';
    for (let cut = 1; cut < value.length; cut++) {
      const text = `Write to ${value} today.`;
      const at = 'Write to '.length + cut;
      h.upstream((_req, _body, res) => {
        void writeEvents(res, [messageStart, ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }), textDelta(0, text.slice(0, at)), textDelta(0, text.slice(at)), ev('content_block_stop', { index: 0 }), ...messageEnd], 1);
      });
      const { raw, blocks, events } = await readAnthropicStream(await post(h, '/v1/messages', { stream: true }));
      assert.ok(!raw.includes('example.com'), `cut at ${cut}: ${raw}`);
      assert.equal(blocks.get(0), 'Write to [EMAIL] today.', `cut at ${cut}`);
      assert.deepEqual(events.map((e) => e.event).slice(-3), ['content_block_stop', 'message_delta', 'message_stop']);
    }
  });

  test('raw bytes cut inside events and inside values (TCP chunks) change nothing', async () => {
    const h = await start();
    const sse = messageStart + textDelta(0, 'SSN 123-45-') + textDelta(0, '6789 and ann@exa') + textDelta(0, 'mple.com ok') + ev('content_block_stop', { index: 0 }) + messageEnd.join('');
    const bytes = Buffer.from(sse);
    for (const cut of [5, 40, sse.indexOf('123-45') + 3, sse.indexOf('6789') + 2, sse.indexOf('ann@exa') + 4, sse.length - 3]) {
      h.upstream((_req, _body, res) => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(bytes.subarray(0, cut));
        setTimeout(() => res.end(bytes.subarray(cut)), 5);
      });
      const { raw, blocks } = await readAnthropicStream(await post(h, '/v1/messages', { stream: true }));
      assert.equal(blocks.get(0), 'SSN [US_SSN] and [EMAIL] ok', `cut at byte ${cut}`);
      assert.ok(!raw.includes('6789') && !raw.includes('mple.com'), raw);
    }
  });

  test('a block that starts with text: its first piece and the next delta are masked as one text', async () => {
    const h = await start();
    h.upstream((_req, _body, res) => {
      void writeEvents(res, [messageStart, ev('content_block_start', { index: 0, content_block: { type: 'text', text: 'Mail ann@exa' } }), textDelta(0, 'mple.com now'), ev('content_block_stop', { index: 0 }), ...messageEnd]);
    });
    const { raw, events } = await readAnthropicStream(await post(h, '/v1/messages', { stream: true }));
    assert.ok(!raw.includes('ann@') && !raw.includes('mple.com'), raw);
    const first = events.find((e) => e.event === 'content_block_start')!.data.content_block as { text: string };
    const deltas = events.filter((e) => e.event === 'content_block_delta').map((e) => e.data.delta!.text).join('');
    assert.equal(first.text + deltas, 'Mail [EMAIL] now');
  });

  test('security: an address split across two text blocks (clients join them) comes out masked, each block opened and closed in order', async () => {
    const h = await start();
    // Citations make a model split its text into blocks; a ping may come between them.
    h.upstream((_req, _body, res) => {
      void writeEvents(res, [messageStart, ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }), textDelta(0, 'Write to alice@exa'), ev('content_block_stop', { index: 0 }), ev('ping'), ev('content_block_start', { index: 1, content_block: { type: 'text', text: '', citations: [] } }), textDelta(1, 'mple.com today.'), ev('content_block_stop', { index: 1 }), ...messageEnd], 1);
    });
    const { raw, blocks, events } = await readAnthropicStream(await post(h, '/v1/messages', { stream: true }));
    assert.ok(!raw.includes('alice') && !raw.includes('mple.com'), raw);
    assert.equal([...blocks.values()].join(''), 'Write to [EMAIL] today.');
    const open = new Set<number>();
    for (const { data } of events) {
      if (data.type === 'content_block_start') open.add(data.index!);
      if (data.type === 'content_block_delta') assert.ok(open.has(data.index!), `a delta of block ${data.index} while it is open`);
      if (data.type === 'content_block_stop') assert.ok(open.delete(data.index!), `block ${data.index} stops once`);
    }
    assert.equal(open.size, 0);
    assert.deepEqual(events.map((e) => e.event).slice(-3), ['content_block_stop', 'message_delta', 'message_stop']);
  });

  test('a text block followed by a tool call: what the text block holds goes out in it, before its stop', async () => {
    const h = await start();
    h.upstream((_req, _body, res) => {
      void writeEvents(res, [messageStart, ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }), textDelta(0, 'Mailing bob@example.com'), ev('content_block_stop', { index: 0 }), ev('content_block_start', { index: 1, content_block: { type: 'tool_use', id: 'toolu_1', name: 'send', input: {} } }), jsonDelta(1, '{"n": 1}'), ev('content_block_stop', { index: 1 }), ...messageEnd], 1);
    });
    const { raw, blocks, events } = await readAnthropicStream(await post(h, '/v1/messages', { stream: true }));
    assert.ok(!raw.includes('bob@'), raw);
    assert.equal(blocks.get(0), 'Mailing [EMAIL]');
    assert.deepEqual(JSON.parse(blocks.get(1)!), { n: 1 });
    const order = events.map((e) => `${e.event}:${e.data.index ?? ''}`);
    assert.ok(order.indexOf('content_block_stop:0') < order.indexOf('content_block_start:1'), order.join(' '));
    assert.equal(events[order.indexOf('content_block_stop:0') - 1]!.data.delta!.text, '[EMAIL]');
  });

  test('input_json_delta pieces are held until the block stops, then sent whole, masked, as valid JSON', async () => {
    const h = await start();
    h.upstream((_req, _body, res) => {
      void writeEvents(res, [messageStart, ev('content_block_start', { index: 1, content_block: { type: 'tool_use', id: 'toolu_1', name: 'send', input: {} } }), jsonDelta(1, '{"to": "ann@ex'), jsonDelta(1, 'ample.com", "n'), jsonDelta(1, '": 2}'), ev('content_block_stop', { index: 1 }), ...messageEnd]);
    });
    const { raw, blocks, events } = await readAnthropicStream(await post(h, '/v1/messages', { stream: true }));
    assert.ok(!raw.includes('ann@ex') && !raw.includes('ample.com'), raw);
    assert.deepEqual(JSON.parse(blocks.get(1)!), { to: '[EMAIL]', n: 2 });
    // The whole input arrives in the delta just before the block's stop.
    const stop = events.findIndex((e) => e.event === 'content_block_stop');
    assert.equal(events[stop - 1]!.data.delta!.partial_json, '{"to": "[EMAIL]", "n": 2}');
  });
});

describe('Google Gemini SSE (streamGenerateContent?alt=sse)', () => {
  const chunk = (text: string, finishReason?: string) => `data: ${JSON.stringify({ candidates: [{ content: { parts: [{ text }], role: 'model' }, index: 0, ...(finishReason ? { finishReason } : {}) }], modelVersion: 'gemini-x' })}\r\n\r\n`;

  test('a value split across two chunks is masked; held text goes out in the finishReason chunk', async () => {
    const h = await start();
    h.upstream((_req, _body, res) => void writeEvents(res, [chunk('Card 4111 1111 '), chunk('1111 1111 and ann@'), chunk('example.com', 'STOP')]));
    const raw = await (await post(h, '/v1beta/models/gemini-x:streamGenerateContent?alt=sse', {})).text();
    assert.ok(!raw.includes('1111 1111') && !raw.includes('ann@'), raw);
    const chunks = raw.split('\n\n').filter((b) => b.startsWith('data: ')).map((b) => JSON.parse(b.slice(6)) as { candidates: { content: { parts: { text: string }[] }; finishReason?: string }[] });
    assert.equal(chunks.map((c) => c.candidates[0]!.content.parts.map((p) => p.text).join('')).join(''), 'Card [CREDIT_CARD] and [EMAIL]');
    assert.equal(chunks.at(-1)!.candidates[0]!.finishReason, 'STOP');
  });
});

describe('an SSE stream of JSON events of no known API (Hugging Face TGI)', () => {
  const tgi = (index: number, text: string, generated: string | null = null) => `data:${JSON.stringify({ index, token: { id: index, text, logprob: -0.5, special: false }, generated_text: generated, details: null })}\n\n`;

  test('security: an address split across two token events comes out masked; every event keeps its shape', async () => {
    const h = await start();
    h.upstream((_req, _body, res) => void writeEvents(res, [tgi(1, 'Mail'), tgi(2, ' alice@exa'), tgi(3, 'mple.com'), tgi(4, ' today', 'Mail alice@example.com today')]));
    const raw = await (await post(h, '/generate_stream', { inputs: 'x' })).text();
    assert.ok(!raw.includes('alice') && !raw.includes('mple.com'), raw);
    const events = raw.split('\n\n').filter((b) => b.startsWith('data: ')).map((b) => JSON.parse(b.slice(6)) as { index: number; token: { id: number; text: string; special: boolean }; generated_text: string | null });
    assert.deepEqual(events.slice(0, 4).map((e) => [e.index, e.token.id, e.token.special]), [[1, 1, false], [2, 2, false], [3, 3, false], [4, 4, false]]);
    assert.equal(events.map((e) => e.token.text).join(''), 'Mail [EMAIL] today');
    assert.equal(events[3]!.generated_text, 'Mail [EMAIL] today');
  });
});

describe('Cohere v2 chat stream', () => {
  const cohere = (type: string, data: Record<string, unknown> = {}) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;

  test('content-delta text split across events, and tool-call arguments in pieces, are masked', async () => {
    const h = await start();
    h.upstream((_req, _body, res) => {
      void writeEvents(res, [
        cohere('message-start', { id: 'c1', delta: { message: { role: 'assistant' } } }),
        cohere('content-start', { index: 0, delta: { message: { content: { type: 'text', text: '' } } } }),
        cohere('content-delta', { index: 0, delta: { message: { content: { text: 'Mail jane.roe@exa' } } } }),
        cohere('content-delta', { index: 0, delta: { message: { content: { text: 'mple.com now' } } } }),
        cohere('content-end', { index: 0 }),
        cohere('tool-call-start', { index: 0, delta: { message: { tool_calls: { id: 't1', type: 'function', function: { name: 'mail', arguments: '' } } } } }),
        cohere('tool-call-delta', { index: 0, delta: { message: { tool_calls: { function: { arguments: '{"to":"bob@exa' } } } } }),
        cohere('tool-call-delta', { index: 0, delta: { message: { tool_calls: { function: { arguments: 'mple.org"}' } } } } }),
        cohere('tool-call-end', { index: 0 }),
        cohere('message-end', { delta: { finish_reason: 'TOOL_CALL' } }),
      ]);
    });
    const raw = await (await post(h, '/v2/chat', { stream: true })).text();
    assert.ok(!raw.includes('jane.roe') && !raw.includes('mple.com') && !raw.includes('bob@'), raw);
    const events = raw.split('\n\n').filter((b) => b.includes('data: ')).map((b) => JSON.parse(b.split('\n').find((l) => l.startsWith('data: '))!.slice(6)) as { type: string; delta?: { message?: { content?: { text?: string }; tool_calls?: { function?: { arguments?: string } } } } });
    assert.equal(events.filter((e) => e.type === 'content-delta').map((e) => e.delta!.message!.content!.text).join(''), 'Mail [EMAIL] now');
    assert.deepEqual(JSON.parse(events.filter((e) => e.type === 'tool-call-delta').map((e) => e.delta!.message!.tool_calls!.function!.arguments).join('')), { to: '[EMAIL]' });
    assert.deepEqual(events.map((e) => e.type).slice(-3), ['tool-call-delta', 'tool-call-end', 'message-end']);
  });
});

describe('Ollama native NDJSON streams', () => {
  const ndjson = (res: ServerResponse, lines: readonly object[]) => {
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    let i = 0;
    const next = () => {
      if (i === lines.length) return void res.end();
      res.write(`${JSON.stringify(lines[i++])}\n`);
      setTimeout(next, 2);
    };
    next();
  };

  test('/api/chat: an address split across two lines is masked, and lines stream before the answer ends', async () => {
    const h = await start();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    h.upstream((_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.write(`${JSON.stringify({ model: 'llama3', created_at: 't', message: { role: 'assistant', content: 'Hello. Mail ann@exa' }, done: false })}\n`);
      res.write(`${JSON.stringify({ model: 'llama3', created_at: 't', message: { role: 'assistant', content: 'mple.com now' }, done: false })}\n`);
      void gate.then(() => res.end(`${JSON.stringify({ model: 'llama3', created_at: 't', message: { role: 'assistant', content: '' }, done: true, done_reason: 'stop', eval_count: 7 })}\n`));
    });
    const res = await post(h, '/api/chat', { model: 'llama3', messages: [] });
    const reader = res.body!.getReader();
    // The first lines arrive while the upstream still holds the last one: the answer streams.
    const first = new TextDecoder().decode((await reader.read()).value);
    assert.match(first, /"content":"Hello\. Mail "/);
    release();
    let rest = '';
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value);
    const all = first + rest;
    assert.ok(!all.includes('ann@') && !all.includes('mple.com'), all);
    const lines = all.trim().split('\n').map((l) => JSON.parse(l) as { message: { content: string }; done: boolean; eval_count?: number });
    assert.equal(lines.map((l) => l.message.content).join(''), 'Hello. Mail [EMAIL] now');
    assert.equal(lines.at(-1)!.done, true);
    assert.equal(lines.at(-1)!.eval_count, 7);
    assert.deepEqual(h.outcomes[0]!.maskCounts, { EMAIL: 1 });
  });

  test('/api/generate: `response` pieces are masked across lines; the tail goes out in the done line', async () => {
    const h = await start();
    h.upstream((_req, _body, res) => ndjson(res, [{ model: 'm', response: 'call (415) 555', done: false }, { model: 'm', response: '-2671', done: false }, { model: 'm', response: '', done: true, context: [1, 2] }]));
    const text = await (await post(h, '/api/generate', { model: 'm', prompt: 'x' })).text();
    assert.ok(!text.includes('2671'), text);
    const lines = text.trim().split('\n').map((l) => JSON.parse(l) as { response: string; done: boolean; context?: number[] });
    assert.equal(lines.map((l) => l.response).join(''), 'call [PHONE]');
    assert.deepEqual(lines.at(-1)!.context, [1, 2]);
  });
});

describe('Cohere v1 chat stream (application/stream+json)', () => {
  const line = (o: object) => `${JSON.stringify(o)}\n`;
  const gen = (text: string) => line({ is_finished: false, event_type: 'text-generation', text });

  test('security: text split across lines is masked whole, the lines stream, and what is held goes out before stream-end', async () => {
    const h = await start();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    h.upstream((_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/stream+json' });
      res.write(line({ is_finished: false, event_type: 'stream-start', generation_id: 'g1' }) + gen('Hello. Mail jane.do') + gen('e@example.com or +1 415 55') + gen('5 2671'));
      void gate.then(() => res.end(line({ is_finished: true, event_type: 'stream-end', finish_reason: 'COMPLETE', response: { text: 'Hello. Mail jane.doe@example.com or +1 415 555 2671' } })));
    });
    const res = await post(h, '/v1/chat', { message: 'x', stream: true });
    const reader = res.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    assert.match(first, /"text":"Hello\. Mail "/, 'the first lines arrive before the answer ends');
    release();
    let rest = '';
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value);
    const all = first + rest;
    assert.ok(!/jane|doe@|415 55|2671/.test(all), all);
    const lines = all.trim().split('\n').map((l) => JSON.parse(l) as { event_type: string; text?: string; response?: { text: string } });
    assert.equal(lines.filter((l) => l.event_type === 'text-generation').map((l) => l.text).join(''), 'Hello. Mail [EMAIL] or [PHONE]');
    assert.equal(lines.at(-1)!.event_type, 'stream-end');
    assert.equal(lines.at(-1)!.response!.text, 'Hello. Mail [EMAIL] or [PHONE]');
  });

  test('a JSON Lines file (x-ndjson) of records keeps each record its own text: nothing moves between records', async () => {
    const h = await start();
    h.upstream((_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.end(line({ id: 1, text: 'Ask jane' }) + line({ id: 2, text: 'about it' }));
    });
    const lines = (await (await post(h, '/files/f1/content', {})).text()).trim().split('\n').map((l) => JSON.parse(l) as { text: string });
    assert.deepEqual(lines.map((l) => l.text), ['Ask jane', 'about it']);
  });
});
