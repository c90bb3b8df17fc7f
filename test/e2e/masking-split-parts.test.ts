// End to end: the real gatehouse process with a masking profile, in front of an upstream
// that splits a value across two text parts of one answer: the Responses API's
// output_text parts (streamed: two content parts of one message, and two message items;
// and non-streamed), a chat completion whose content is a list of parts, and Anthropic's
// text blocks (http connection). Clients join the parts into one text (the openai SDK's
// `output_text`), so the value must come out masked whole, and every event or field that
// repeats a part must agree with what the client was streamed.

import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const upstreamKey = 'sk-upstream-target-secret';

/** The openai SDK's view of a Responses API stream: output_text as the deltas gave it, and the final response. */
async function readResponsesStream(client: OpenAI): Promise<{ deltas: string[]; final: OpenAI.Responses.Response; doneTexts: string[] }> {
  const stream = client.responses.stream({ model: 'gpt-4.1', input: 'Who do I write to?' });
  const deltas: string[] = [];
  const doneTexts: string[] = [];
  for await (const event of stream) {
    if (event.type === 'response.output_text.delta') deltas.push(event.delta);
    if (event.type === 'response.output_text.done') doneTexts.push(event.text);
  }
  return { deltas, final: await stream.finalResponse(), doneTexts };
}

/** Writes Responses API events as OpenAI does: named, numbered, a few milliseconds apart. */
function writeResponsesEvents(res: ServerResponse, events: Record<string, unknown>[]): void {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  let i = 0;
  const next = () => {
    if (i === events.length) return void res.end();
    const event: Record<string, unknown> = { ...events[i], sequence_number: i++ };
    res.write(`event: ${event['type'] as string}\ndata: ${JSON.stringify(event)}\n\n`);
    setTimeout(next, 2);
  };
  next();
}

const part = (text: string) => ({ type: 'output_text', text, annotations: [], logprobs: [] });
const message = (id: string, texts: readonly string[], status = 'completed') => ({ id, type: 'message', status, role: 'assistant', content: texts.map(part) });
const response = (status: string, output: unknown[]) => ({ id: 'resp_1', object: 'response', created_at: 1, status, model: 'gpt-4.1', output, usage: status === 'completed' ? { input_tokens: 5, output_tokens: 9, total_tokens: 14 } : null });

/** A streamed answer whose text is split, as `[output_index, content_index, text]` parts in order. */
function streamedParts(parts: ReadonlyArray<readonly [number, number, string]>): Record<string, unknown>[] {
  const events: Record<string, unknown>[] = [{ type: 'response.created', response: response('in_progress', []) }];
  const items = new Map<number, string[]>();
  parts.forEach(([o, c, text], i) => {
    if (!items.has(o)) {
      items.set(o, []);
      events.push({ type: 'response.output_item.added', output_index: o, item: message(`msg_${o}`, [], 'in_progress') });
    }
    const at = { item_id: `msg_${o}`, output_index: o, content_index: c };
    events.push({ type: 'response.content_part.added', ...at, part: part('') });
    // A token at a time, as OpenAI streams.
    for (const token of text.match(/\s*\S+|\s+$/g) ?? []) events.push({ type: 'response.output_text.delta', ...at, delta: token, logprobs: [] });
    events.push({ type: 'response.output_text.done', ...at, text, logprobs: [] }, { type: 'response.content_part.done', ...at, part: part(text) });
    items.get(o)!.push(text);
    if (parts[i + 1]?.[0] !== o) events.push({ type: 'response.output_item.done', output_index: o, item: message(`msg_${o}`, items.get(o)!) });
  });
  events.push({ type: 'response.completed', response: response('completed', [...items].map(([o, texts]) => message(`msg_${o}`, texts))) });
  return events;
}

const splitStreams: Record<string, ReadonlyArray<readonly [number, number, string]>> = {
  '/v1/responses/two-parts': [
    [0, 0, 'Write to jane.r'],
    [0, 1, 'oe@example.com or call +1 415'],
    [0, 2, ' 555 2671 today.'],
  ],
  '/v1/responses/two-items': [
    [0, 0, 'Write to jane.r'],
    [1, 0, 'oe@example.com today.'],
  ],
};

describe('a value split across two text parts of one answer, end to end through the gateway process', () => {
  let upstream: Server;
  let gateway: GatewayProcess;
  let key: string;
  let nextStream = '/v1/responses/two-parts';

  before(async () => {
    upstream = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as { stream?: boolean };
        const json = (answer: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
        if (req.url === '/v1/responses' && body.stream) return writeResponsesEvents(res, streamedParts(splitStreams[nextStream]!));
        // Non-streamed answers with the text in parts, split inside the address.
        if (req.url === '/v1/responses') return json(response('completed', [message('msg_0', ['Write to jane.r', 'oe@example.com']), { id: 'rs_1', type: 'reasoning', summary: [] }, message('msg_1', [' or call +1 415', ' 555 2671 today.'])]));
        if (req.url === '/v1/chat/completions') return json({ id: 'chatcmpl-1', object: 'chat.completion', created: 1, model: 'gpt-4.1', choices: [{ index: 0, message: { role: 'assistant', content: [{ type: 'text', text: 'Write to jane.r' }, { type: 'text', text: 'oe@example.com today.' }], refusal: null }, finish_reason: 'stop', logprobs: null }] });
        if (req.url === '/v1/messages') return json({ id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-x', content: [{ type: 'text', text: 'Write to jane.r', citations: null }, { type: 'text', text: 'oe@example.com or call +1 415', citations: [{ type: 'char_location', cited_text: 'x', document_index: 0, start_char_index: 0, end_char_index: 1 }] }, { type: 'text', text: ' 555 2671 today.' }], stop_reason: 'end_turn', usage: { input_tokens: 3, output_tokens: 9 } });
        res.writeHead(404).end();
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const target = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    gateway = await startGatewayProcess(
      `gateway:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: 0 }
  groups: [admins]
connections:
  - name: openai
    type: openai
    target: ${target}
    credential:
      secret: \${UPSTREAM_KEY}
    access: { groups: [ml] }
    masking: [pii]
  - name: anthropic
    type: http
    target: ${target}
    access: { groups: [ml] }
    masking: [pii]
masking:
  profiles:
    pii: { operator: redact }
`,
      { env: { UPSTREAM_KEY: upstreamKey } },
    );
    key = await gateway.createKey('bot', ['ml']);
  });

  after(async () => {
    await gateway?.stop();
    await new Promise((r) => upstream?.close(r));
  });

  const client = () => new OpenAI({ baseURL: `${gateway.url}/c/openai/v1`, apiKey: key, maxRetries: 0 });
  const raws = ['jane.r', 'oe@example', '415', '2671'];

  test('Responses API stream, split across content parts of one message: the SDK gets the value masked, and the done, item and completed events agree with the deltas', async () => {
    nextStream = '/v1/responses/two-parts';
    const { deltas, final, doneTexts } = await readResponsesStream(client());
    assert.equal(deltas.join(''), 'Write to [EMAIL] or call [PHONE] today.');
    for (const value of raws) assert.ok(!JSON.stringify({ deltas, final, doneTexts }).includes(value), `${value} reached the client`);
    assert.equal(final.output_text, 'Write to [EMAIL] or call [PHONE] today.');
    const texts = (final.output[0] as OpenAI.Responses.ResponseOutputMessage).content.map((p) => (p as OpenAI.Responses.ResponseOutputText).text);
    assert.equal(texts.length, 3);
    assert.deepEqual(doneTexts, texts, 'each output_text.done carries its part as completed does');
  });

  test('Responses API stream, split across two message items: masked whole', async () => {
    nextStream = '/v1/responses/two-items';
    const { deltas, final } = await readResponsesStream(client());
    assert.equal(deltas.join(''), 'Write to [EMAIL] today.');
    assert.equal(final.output_text, 'Write to [EMAIL] today.');
    for (const value of raws) assert.ok(!JSON.stringify(final).includes(value), `${value} reached the client`);
    assert.equal(final.output.length, 2);
  });

  test('non-streamed Responses API answer, split across the parts of two message items: the SDK\'s output_text is masked whole', async () => {
    const answer = await client().responses.create({ model: 'gpt-4.1', input: 'Who do I write to?' });
    assert.equal(answer.output_text, 'Write to [EMAIL] or call [PHONE] today.');
    for (const value of raws) assert.ok(!JSON.stringify(answer).includes(value), `${value} reached the client`);
  });

  test('non-streamed chat completion whose message content is a list of parts: masked whole', async () => {
    const answer = await client().chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'Who?' }] });
    const parts = answer.choices[0]!.message.content as unknown as { type: string; text: string }[];
    assert.equal(parts.map((p) => p.text).join(''), 'Write to [EMAIL] today.');
    for (const value of raws) assert.ok(!JSON.stringify(answer).includes(value), `${value} reached the client`);
  });

  test('non-streamed Anthropic Messages answer (http connection), split across three text blocks: each block keeps its share, the value masked whole', async () => {
    const res = await fetch(`${gateway.url}/c/anthropic/v1/messages`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'claude-x', max_tokens: 10, messages: [] }) });
    const raw = await res.text();
    for (const value of raws) assert.ok(!raw.includes(value), `${value} reached the client: ${raw}`);
    const answer = JSON.parse(raw) as { content: { type: string; text: string; citations?: unknown[] | null }[] };
    assert.deepEqual(answer.content.map((b) => b.text), ['Write to ', '[EMAIL] or call ', '[PHONE] today.']);
    assert.equal(answer.content[1]!.citations!.length, 1, 'the rest of each block is kept');
  });
});
