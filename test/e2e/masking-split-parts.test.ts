// End to end: the real gatehouse process with a masking profile, in front of an upstream
// that splits a value across two text parts of one answer — the Responses API's
// output_text parts (streamed: two content parts of one message, and two message items).
// Clients join the parts into one text (the openai SDK's `output_text`), so the value
// must come out masked whole, and every event or field that repeats a part must agree
// with what the client was streamed.

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
      req.resume();
      req.on('end', () => {
        if (req.url === '/v1/responses') return writeResponsesEvents(res, streamedParts(splitStreams[nextStream]!));
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
});
