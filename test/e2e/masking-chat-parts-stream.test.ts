// End to end: the real gatehouse process with a masking profile, in front of an upstream
// that streams chat chunks whose `delta.content` is a list of parts, as Mistral's
// reasoning models do (`[{type:'thinking',thinking:[{type:'text',text}]}]`, then
// `[{type:'text',text}]`). Each event was masked alone, so a value split across two
// events reached the client in two unmasked halves (`Mail jane.r` + `oe@example.com`).
// The openai SDK reads the stream; the text it is given must hold no raw value, every
// event must keep its list-of-parts shape.

import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const email = 'jane.roe@example.com';
const card = '4111 1111 1111 1111';
const text = `Mail ${email}, card ${card} now.`;
const expected = 'Mail [EMAIL], card [CREDIT_CARD] now.';

type Kind = 'text' | 'thinking';
const part = (kind: Kind, t: string) => (kind === 'text' ? { type: 'text', text: t } : { type: 'thinking', thinking: [{ type: 'text', text: t }] });
const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'magistral-medium', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });

/** Each event in its own write, then `[DONE]`. */
function writeSse(res: ServerResponse, events: readonly unknown[]): void {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  for (const event of events) res.write(`data: ${JSON.stringify(event)}\n\n`);
  res.end('data: [DONE]\n\n');
}

describe('a value split across two streamed chat deltas whose content is a list of parts, end to end through the gateway process', () => {
  let upstream: Server;
  let gateway: GatewayProcess;
  let client: OpenAI;
  let events: unknown[] = [];

  before(async () => {
    upstream = createServer((req, res) => {
      req.resume();
      req.on('end', () => writeSse(res, events));
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    gateway = await startGatewayProcess(
      `gateway:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: 0 }
  groups: [admins]
connections:
  - name: mistral
    type: openai
    target: http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1
    credential: { secret: "\${UPSTREAM_KEY}" }
    access: { groups: [ml] }
    masking: [pii]
masking:
  profiles:
    pii: { operator: redact }
`,
      { env: { UPSTREAM_KEY: 'sk-upstream-target-secret' } },
    );
    client = new OpenAI({ baseURL: `${gateway.url}/c/mistral`, apiKey: await gateway.createKey('bot', ['ml']), maxRetries: 0 });
  });

  after(async () => {
    await gateway?.stop();
    await new Promise((r) => upstream?.close(r));
  });

  /** The text of each kind the SDK was given; fails on a content that is not a list of parts of the two kinds. */
  async function read(field = 'content'): Promise<Record<Kind, string>> {
    const got: Record<Kind, string> = { text: '', thinking: '' };
    const stream = await client.chat.completions.create({ model: 'magistral-medium', stream: true, messages: [{ role: 'user', content: 'go' }] });
    for await (const c of stream) {
      const content: unknown = (c.choices[0]?.delta as Record<string, unknown> | undefined)?.[field];
      if (content === undefined || content === null || content === '') continue;
      assert.ok(Array.isArray(content), `content is not a list of parts: ${JSON.stringify(content)}`);
      for (const p of content as Array<Record<string, unknown>>) {
        if (p['type'] === 'text' && typeof p['text'] === 'string') got.text += p['text'];
        else if (p['type'] === 'thinking' && Array.isArray(p['thinking'])) for (const t of p['thinking'] as Array<Record<string, unknown>>) got.thinking += String(t['text']);
        else assert.fail(`an unexpected part: ${JSON.stringify(p)}`);
      }
    }
    return got;
  }

  /** Every offset inside the e-mail and inside the card. */
  const offsets = [...Array(text.length).keys()].filter((at) => {
    const inside = (value: string) => at > text.indexOf(value) && at < text.indexOf(value) + value.length;
    return inside(email) || inside(card);
  });

  for (const [kind, field] of [['text', 'content'], ['thinking', 'content'], ['text', 'reasoning_content'], ['thinking', 'reasoning']] as const) {
    test(`security: an e-mail and a card split across two ${kind} parts of two chat chunks' ${field} are masked at every offset`, async () => {
      assert.equal(offsets.length, email.length - 1 + card.length - 1);
      for (const at of offsets) {
        events = [chunk({ role: 'assistant', content: '' }), chunk({ [field]: [part(kind, text.slice(0, at))] }), chunk({ [field]: [part(kind, text.slice(at))] }), chunk({}, 'stop')];
        const got = await read(field);
        const other = kind === 'text' ? 'thinking' : 'text';
        assert.deepEqual({ [kind]: got[kind], [other]: got[other] }, { [kind]: expected, [other]: '' }, `split at ${at}`);
      }
    });

    test(`security: ${kind} parts of ${field} split across chunks that end at [DONE] without a finish event are masked`, async () => {
      const at = text.indexOf(email) + 6;
      events = [chunk({ role: 'assistant', content: '' }), chunk({ [field]: [part(kind, text.slice(0, at))] }), chunk({ [field]: [part(kind, text.slice(at))] })];
      assert.equal((await read(field))[kind], expected);
    });
  }

  test('thinking, then the answer as text parts: each kind streams apart and both reach the client masked', async () => {
    const thought = `Thinking about ${email}.`;
    events = [
      chunk({ role: 'assistant', content: [part('thinking', thought.slice(0, 20))] }),
      chunk({ content: [part('thinking', thought.slice(20))] }),
      chunk({ content: [part('text', text.slice(0, 12))] }),
      chunk({ content: [part('text', text.slice(12))] }),
      chunk({}, 'stop'),
    ];
    assert.deepEqual(await read(), { thinking: 'Thinking about [EMAIL].', text: expected });
  });

  test('an answer of string deltas still streams as strings', async () => {
    events = [chunk({ role: 'assistant', content: '' }), chunk({ content: text.slice(0, 10) }), chunk({ content: text.slice(10) }), chunk({}, 'stop')];
    let got = '';
    const stream = await client.chat.completions.create({ model: 'magistral-medium', stream: true, messages: [{ role: 'user', content: 'go' }] });
    for await (const c of stream) {
      const content: unknown = c.choices[0]?.delta?.content;
      if (content === undefined || content === null) continue;
      assert.equal(typeof content, 'string');
      got += content as string;
    }
    assert.equal(got, expected);
  });
});
