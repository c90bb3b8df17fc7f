// The streaming guarantee, per dialect: every labelled value of the corpus, split across
// two events (or lines, or frames) at every offset, comes out masked, and what the
// client shows (the text it reassembles the way that API's clients do) is exactly what
// masking the whole text at once gives. stream-split.test.ts does the same for OpenAI
// chat deltas in depth; this file covers every other place a text streams.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { EventStreamMasker, MaskPlanner, NdjsonMasker, SseMasker } from '../../src/mask/index.js';
import { corpusSplits } from '../helpers/masking-corpus.js';
import { awsFrame, chunkFrame, readAwsFrames } from '../helpers/aws-event-stream.js';

const plan = new MaskPlanner([{ name: 'all', operator: 'redact', keepLast: 4, applyTo: 'response' }]).plan(['all'], 'response')!;

type Json = Record<string, any>;

interface Shape {
  /** The upstream's answer with `a` and `b` in two consecutive events. */
  readonly build: (a: string, b: string) => Buffer;
  /** The text a client shows, read from the masked answer. */
  readonly read: (out: Buffer) => string;
  readonly masker?: 'sse' | 'ndjson' | 'aws';
}

/** The JSON data of each event of an SSE answer (every event must be well formed). */
function sseEvents(out: Buffer): { event: string | undefined; data: Json }[] {
  const events: { event: string | undefined; data: Json }[] = [];
  for (const block of out.toString('utf8').split('\n\n')) {
    if (block.trim() === '' || block.startsWith(':')) continue;
    const lines = block.split('\n');
    const data = lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
    if (data === '[DONE]') continue;
    const event = lines.find((l) => l.startsWith('event: '))?.slice(7);
    events.push({ event, data: JSON.parse(data) as Json });
  }
  return events;
}

const sse = (...events: Json[]) => Buffer.from(events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join(''));
/** Anthropic names each event in an `event:` line (its SDK reads events by that name). */
const anthropic = (...events: Json[]) => Buffer.from(events.map((e) => `event: ${e['type']}\ndata: ${JSON.stringify(e)}\n\n`).join(''));
const messageStart = { type: 'message_start', message: { id: 'msg_1', type: 'message', role: 'assistant', content: [], model: 'claude-x' } };
const messageEnd = [{ type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 9 } }, { type: 'message_stop' }];
const textBlock = (index: number, text = '') => ({ type: 'content_block_start', index, content_block: { type: 'text', text } });
const textDelta = (index: number, text: string) => ({ type: 'content_block_delta', index, delta: { type: 'text_delta', text } });
const blockStop = (index: number) => ({ type: 'content_block_stop', index });

/** An Anthropic client's text: every text block's text (start and deltas), blocks joined in order; each event named by its type. */
function readAnthropic(out: Buffer): string {
  let text = '';
  const types = new Map<number, string>();
  for (const { event, data } of sseEvents(out)) {
    assert.equal(event, data['type'], 'the event line names the data type');
    if (data['type'] === 'content_block_start') {
      types.set(data['index'], data['content_block'].type);
      if (data['content_block'].type === 'text') text += data['content_block'].text;
    }
    if (data['type'] === 'content_block_delta' && data['delta'].type === 'text_delta') {
      assert.equal(types.get(data['index']), 'text', 'a text delta belongs to an open text block');
      text += data['delta'].text;
    }
    if (data['type'] === 'content_block_stop') types.delete(data['index']);
  }
  return text;
}

const chatChunk = (delta: Json, finish: string | null = null) => ({ id: 'c1', object: 'chat.completion.chunk', model: 'm', choices: [{ index: 0, delta, finish_reason: finish }] });
const readChat = (field: (d: Json) => string | undefined) => (out: Buffer) => sseEvents(out).map(({ data }) => (data['choices']?.[0] ? field(data['choices'][0]) ?? '' : '')).join('');

/** A responses-API stream whose text is `a` in one output_text part and `b` in the next (of the same message item, or of the next one), as OpenAI frames it. */
function responsesParts(a: string, b: string, sameItem: boolean): Buffer {
  const part = (text: string) => ({ type: 'output_text', text, annotations: [], logprobs: [] });
  const item = (id: string, content: Json[], status = 'completed') => ({ id, type: 'message', status, role: 'assistant', content });
  const ids = sameItem ? [[0, 0], [0, 1]] : [[0, 0], [1, 0]];
  const events: Json[] = [{ type: 'response.created', response: { id: 'resp_1', object: 'response', status: 'in_progress', output: [] } }];
  const itemEnd = (o: number, texts: string[]) => ({ type: 'response.output_item.done', output_index: o, item: item(`m${o}`, texts.map(part)) });
  [a, b].forEach((text, i) => {
    const [o, c] = ids[i]!;
    if (c === 0) events.push({ type: 'response.output_item.added', output_index: o, item: item(`m${o}`, [], 'in_progress') });
    const at = { item_id: `m${o}`, output_index: o, content_index: c };
    events.push({ type: 'response.content_part.added', ...at, part: part('') }, { type: 'response.output_text.delta', ...at, delta: text, logprobs: [] }, { type: 'response.output_text.done', ...at, text, logprobs: [] }, { type: 'response.content_part.done', ...at, part: part(text) });
    if (!sameItem) events.push(itemEnd(o, [text]));
  });
  if (sameItem) events.push(itemEnd(0, [a, b]));
  const output = sameItem ? [item('m0', [part(a), part(b)])] : [item('m0', [part(a)]), item('m1', [part(b)])];
  events.push({ type: 'response.completed', response: { id: 'resp_1', object: 'response', status: 'completed', output, usage: { output_tokens: 9 } } });
  return sse(...events.map((e, sequence_number) => ({ ...e, sequence_number })));
}

/**
 * The SDK's `output_text`: the deltas of every part, joined. Every event that repeats a
 * part's text (done, content_part.done, output_item.done, completed) must carry exactly
 * what that part's deltas gave, and every delta must come while its part is open.
 */
function readResponsesParts(out: Buffer): string {
  const sent = new Map<string, string>();
  const open = new Set<string>();
  let text = '';
  for (const { data } of sseEvents(out)) {
    const at = `${data['output_index']}:${data['content_index']}`;
    switch (data['type']) {
      case 'response.content_part.added':
        open.add(at);
        sent.set(at, '');
        break;
      case 'response.output_text.delta':
        assert.ok(open.has(at), `a delta for part ${at} while it is open`);
        sent.set(at, sent.get(at)! + data['delta']);
        text += data['delta'];
        break;
      case 'response.output_text.done':
        assert.ok(open.has(at));
        assert.equal(data['text'], sent.get(at), 'output_text.done repeats the deltas');
        break;
      case 'response.content_part.done':
        assert.equal(data['part'].text, sent.get(at), 'content_part.done repeats the deltas');
        open.delete(at);
        break;
      case 'response.output_item.done':
        data['item'].content.forEach((p: Json, j: number) => assert.equal(p['text'], sent.get(`${data['output_index']}:${j}`), 'output_item.done repeats the deltas'));
        break;
      case 'response.completed':
        assert.equal(open.size, 0);
        data['response'].output.forEach((item: Json, i: number) => item['content'].forEach((p: Json, j: number) => assert.equal(p['text'], sent.get(`${i}:${j}`), 'response.completed repeats the deltas')));
        assert.equal(data['response'].output.flatMap((item: Json) => item['content'].map((p: Json) => p['text'])).join(''), text);
        break;
    }
  }
  return text;
}

const shapes: Record<string, Shape> = {
  'OpenAI chat delta.content': {
    build: (a, b) => sse(chatChunk({ role: 'assistant', content: '' }), chatChunk({ content: a }), chatChunk({ content: b }), chatChunk({}, 'stop')),
    read: readChat((c) => c['delta']?.content),
  },
  'OpenAI chat delta.reasoning_content': {
    build: (a, b) => sse(chatChunk({ reasoning_content: a }), chatChunk({ reasoning_content: b }), chatChunk({}, 'stop')),
    read: readChat((c) => c['delta']?.reasoning_content),
  },
  'OpenAI chat delta.audio.transcript': {
    build: (a, b) => sse(chatChunk({ audio: { id: 'a1', transcript: a } }), chatChunk({ audio: { transcript: b } }), chatChunk({}, 'stop')),
    read: readChat((c) => c['delta']?.audio?.transcript),
  },
  'OpenAI completions text': {
    build: (a, b) => sse({ object: 'text_completion', choices: [{ index: 0, text: a, finish_reason: null }] }, { object: 'text_completion', choices: [{ index: 0, text: b, finish_reason: 'stop' }] }),
    read: readChat((c) => c['text']),
  },
  'OpenAI responses output_text': {
    build: (a, b) => sse(...[a, b].map((delta) => ({ type: 'response.output_text.delta', item_id: 'm1', output_index: 0, content_index: 0, delta })), { type: 'response.output_text.done', item_id: 'm1', output_index: 0, content_index: 0, text: a + b }),
    read: (out) => sseEvents(out).filter(({ data }) => data['type'] === 'response.output_text.delta').map(({ data }) => data['delta']).join(''),
  },
  'OpenAI responses reasoning summary': {
    build: (a, b) => sse(...[a, b].map((delta) => ({ type: 'response.reasoning_summary_text.delta', item_id: 'r1', output_index: 0, summary_index: 0, delta })), { type: 'response.reasoning_summary_text.done', item_id: 'r1', output_index: 0, summary_index: 0, text: a + b }),
    read: (out) => sseEvents(out).filter(({ data }) => data['type'] === 'response.reasoning_summary_text.delta').map(({ data }) => data['delta']).join(''),
  },
  'Anthropic text_delta': {
    build: (a, b) => anthropic(messageStart, textBlock(0), textDelta(0, a), textDelta(0, b), blockStop(0), ...messageEnd),
    read: readAnthropic,
  },
  'Anthropic content_block_start text then text_delta': {
    build: (a, b) => anthropic(messageStart, textBlock(0, a), textDelta(0, b), blockStop(0), ...messageEnd),
    read: readAnthropic,
  },
  'Anthropic, split across two text content blocks (clients join the blocks)': {
    build: (a, b) => anthropic(messageStart, textBlock(0), textDelta(0, a), blockStop(0), textBlock(1), textDelta(1, b), blockStop(1), ...messageEnd),
    read: readAnthropic,
  },
  'Anthropic, split across two text blocks, the second starting with text and a ping between': {
    build: (a, b) => anthropic(messageStart, textBlock(0), textDelta(0, a), blockStop(0), { type: 'ping' }, textBlock(1, b), blockStop(1), ...messageEnd),
    read: readAnthropic,
  },
  'Google Gemini text parts': {
    build: (a, b) => sse({ candidates: [{ index: 0, content: { role: 'model', parts: [{ text: a }] } }] }, { candidates: [{ index: 0, content: { role: 'model', parts: [{ text: b }] }, finishReason: 'STOP' }] }),
    read: (out) => sseEvents(out).flatMap(({ data }) => data['candidates'] ?? []).flatMap((c: Json) => c['content']?.parts ?? []).filter((p: Json) => !p['thought']).map((p: Json) => p['text'] ?? '').join(''),
  },
  'Cohere v2 content-delta': {
    build: (a, b) => sse({ type: 'message-start', id: 'x', delta: { message: { role: 'assistant' } } }, { type: 'content-start', index: 0, delta: { message: { content: { type: 'text', text: '' } } } }, ...[a, b].map((text) => ({ type: 'content-delta', index: 0, delta: { message: { content: { text } } } })), { type: 'content-end', index: 0 }, { type: 'message-end', delta: { finish_reason: 'COMPLETE' } }),
    read: (out) => sseEvents(out).filter(({ data }) => data['type'] === 'content-delta').map(({ data }) => data['delta'].message.content.text).join(''),
  },
  'other JSON shapes: Hugging Face TGI token.text (http connection)': {
    build: (a, b) => sse({ index: 1, token: { id: 7, text: a, logprob: -0.1, special: false }, generated_text: null, details: null }, { index: 2, token: { id: 8, text: b, logprob: -0.2, special: false }, generated_text: a + b, details: null }),
    read: (out) => sseEvents(out).map(({ data }) => data['token'].text).join(''),
  },
  'other JSON shapes: llama.cpp content, ended without [DONE]': {
    build: (a, b) => sse({ content: a, stop: false, id_slot: 0 }, { content: b, stop: false, id_slot: 0 }, { content: '', stop: true, id_slot: 0, timings: { predicted_n: 9 } }),
    read: (out) => sseEvents(out).map(({ data }) => data['content']).join(''),
  },
  'other JSON shapes: Vercel AI SDK text-delta, then [DONE]': {
    build: (a, b) => Buffer.concat([sse({ type: 'start', messageId: 'm1' }, { type: 'text-start', id: '0' }, { type: 'text-delta', id: '0', delta: a }, { type: 'text-delta', id: '0', delta: b }, { type: 'text-end', id: '0' }, { type: 'finish' }), Buffer.from('data: [DONE]\n\n')]),
    read: (out) => sseEvents(out).filter(({ data }) => data['type'] === 'text-delta').map(({ data }) => { assert.equal(data['id'], '0'); return data['delta']; }).join(''),
  },
  'other JSON shapes: a running snapshot of the text (each event repeats the last and adds)': {
    build: (a, b) => sse({ status: 'running', text: 'Answer: ' }, { status: 'running', text: `Answer: ${a}` }, { status: 'running', text: `Answer: ${a}${b}` }, { status: 'done' }),
    read: (out) => {
      const texts = sseEvents(out).map(({ data }) => data['text']).filter((t) => t !== undefined);
      return texts[texts.length - 1].slice('Answer: '.length);
    },
  },
  'OpenAI responses output_text, split across two content parts of one message (output_text joins them)': {
    build: (a, b) => responsesParts(a, b, true),
    read: readResponsesParts,
  },
  'OpenAI responses output_text, split across two message items': {
    build: (a, b) => responsesParts(a, b, false),
    read: readResponsesParts,
  },
  'Bedrock ConverseStream, split across two text content blocks': {
    masker: 'aws',
    build: (a, b) => Buffer.concat([awsFrame('messageStart', { role: 'assistant' }), awsFrame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: a } }), awsFrame('contentBlockStop', { contentBlockIndex: 0 }), awsFrame('contentBlockDelta', { contentBlockIndex: 1, delta: { text: b } }), awsFrame('contentBlockStop', { contentBlockIndex: 1 }), awsFrame('messageStop', { stopReason: 'end_turn' })]),
    read: (out) => readAwsFrames(out).filter((f) => f.eventType === 'contentBlockDelta').map((f) => f.payload['delta'].text ?? '').join(''),
  },
  'Bedrock InvokeModelWithResponseStream, split across two Anthropic text blocks': {
    masker: 'aws',
    build: (a, b) => Buffer.concat([messageStart, textBlock(0), textDelta(0, a), blockStop(0), textBlock(1), textDelta(1, b), blockStop(1), ...messageEnd].map((e) => chunkFrame(e))),
    read: (out) => readAwsFrames(out).map((f) => JSON.parse(Buffer.from(f.payload['bytes'], 'base64').toString('utf8')) as Json).filter((e) => e['type'] === 'content_block_delta').map((e) => e['delta'].text).join(''),
  },
  'plain-text event stream': {
    build: (a, b) => Buffer.from(`data: ${a.replace(/\n/g, '\ndata: ')}\n\ndata: ${b.replace(/\n/g, '\ndata: ')}\n\n`),
    read: (out) => out.toString('utf8').split('\n\n').filter((e) => e !== '').map((e) => e.split('\n').map((l) => l.slice(6)).join('\n')).join(''),
  },
  'Ollama NDJSON /api/chat': {
    masker: 'ndjson',
    build: (a, b) => Buffer.from([a, b].map((content) => JSON.stringify({ model: 'm', message: { role: 'assistant', content }, done: false })).join('\n') + '\n' + JSON.stringify({ model: 'm', message: { role: 'assistant', content: '' }, done: true }) + '\n'),
    read: (out) => out.toString('utf8').split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as Json)['message'].content).join(''),
  },
  'Ollama NDJSON /api/generate': {
    masker: 'ndjson',
    build: (a, b) => Buffer.from([a, b].map((response) => JSON.stringify({ model: 'm', created_at: 't', response, done: false })).join('\n') + '\n' + JSON.stringify({ model: 'm', created_at: 't', response: '', done: true, done_reason: 'stop', context: [1, 2] }) + '\n'),
    read: (out) => {
      const lines = out.toString('utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Json);
      assert.deepEqual(lines.map((l) => l['done']), [...lines.slice(1).map(() => false), true], 'one line per JSON object, the done line last');
      return lines.map((l) => l['response']).join('');
    },
  },
  'Ollama NDJSON /api/chat thinking': {
    masker: 'ndjson',
    build: (a, b) => Buffer.from([a, b].map((thinking) => JSON.stringify({ model: 'm', message: { role: 'assistant', content: '', thinking }, done: false })).join('\n') + '\n' + JSON.stringify({ model: 'm', message: { role: 'assistant', content: '' }, done: true }) + '\n'),
    read: (out) => out.toString('utf8').split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as Json)['message'].thinking ?? '').join(''),
  },
  'Bedrock ConverseStream contentBlockDelta': {
    masker: 'aws',
    build: (a, b) => Buffer.concat([awsFrame('messageStart', { role: 'assistant' }), awsFrame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: a } }), awsFrame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: b } }), awsFrame('contentBlockStop', { contentBlockIndex: 0 }), awsFrame('messageStop', { stopReason: 'end_turn' })]),
    read: (out) => readAwsFrames(out).filter((f) => f.eventType === 'contentBlockDelta').map((f) => f.payload['delta'].text ?? '').join(''),
  },
  'Bedrock InvokeModelWithResponseStream (Anthropic events)': {
    masker: 'aws',
    build: (a, b) => Buffer.concat([messageStart, textBlock(0), textDelta(0, a), textDelta(0, b), blockStop(0), ...messageEnd].map((e) => chunkFrame(e))),
    read: (out) => readAwsFrames(out).map((f) => JSON.parse(Buffer.from(f.payload['bytes'], 'base64').toString('utf8')) as Json).filter((e) => e['type'] === 'content_block_delta').map((e) => e['delta'].text).join(''),
  },
};

function run(shape: Shape, input: Buffer): Buffer {
  const options = { plan, counts: {} };
  if (shape.masker === 'aws') {
    const masker = new EventStreamMasker(options);
    return Buffer.concat([masker.push(input), masker.end()]);
  }
  const masker = shape.masker === 'ndjson' ? new NdjsonMasker(options) : new SseMasker(options);
  return Buffer.from(masker.push(input) + masker.end());
}

function checkShape(shape: Shape): number {
  let runs = 0;
  for (const s of corpusSplits(plan)) {
    const out = run(shape, shape.build(s.text.slice(0, s.cut), s.text.slice(s.cut)));
    runs++;
    const raw = out.toString('utf8');
    assert.ok(!raw.includes(s.value), `line ${s.line}: ${s.type} leaked when cut at ${s.cut}`);
    assert.equal(shape.read(out), s.expected, `line ${s.line}: cut at ${s.cut}`);
  }
  return runs;
}

describe('streaming masking per dialect: a value split across two events at any offset', () => {
  for (const [name, shape] of Object.entries(shapes)) {
    test(name, () => {
      assert.ok(checkShape(shape) > 1500);
    });
  }
});
