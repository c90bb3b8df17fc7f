// Request scrubbing (`applyTo: request`) of a prompt whose message is given as several
// text parts. The model reads a message's text parts as one text, so a value split
// across two parts (`My SSN is 123-45` | `-6789`) reached it whole: each part was
// masked alone and neither held a whole value. Through the real data plane, with the
// openai SDK where it applies and each provider's own request shape otherwise.

import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import OpenAI from 'openai';
import type { MaskProfile } from '../../../src/mask/index.js';
import { startMaskingHarness, type Harness } from '../../helpers/masking-harness.js';

const scrub: MaskProfile = { name: 'scrub', operator: 'redact', keepLast: 4, applyTo: 'request' };

let harness: Harness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

async function start(type: 'openai' | 'http'): Promise<Harness> {
  harness = await startMaskingHarness({ profiles: [scrub], connectionMasking: ['scrub'], connectionType: type });
  harness.upstream((_req, _body, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }] }));
  });
  return harness;
}

/** What the model received, as text, with the parts of each message joined as the model reads them. */
function received(h: Harness): string {
  return h.lastUpstreamBody()!;
}

describe('request scrubbing of a message split into text parts', () => {
  test('security: chat completions (openai SDK): an SSN and an address split across text parts at every offset never reach the model', async () => {
    const h = await start('openai');
    const client = new OpenAI({ baseURL: h.url, apiKey: 'k', maxRetries: 0 });
    const value = 'jane.roe@example.com';
    for (let cut = 1; cut < value.length; cut++) {
      await client.chat.completions.create({
        model: 'm',
        messages: [{ role: 'user', content: [{ type: 'text', text: `Mail ${value.slice(0, cut)}` }, { type: 'text', text: `${value.slice(cut)} and SSN 123-45` }, { type: 'text', text: '-6789.' }] }],
      });
      const sent = JSON.parse(received(h)) as { messages: { content: { text: string }[] }[] };
      assert.equal(sent.messages[0]!.content.map((p) => p.text).join(''), 'Mail [EMAIL] and SSN [US_SSN].', `cut ${cut}`);
      assert.ok(!received(h).includes('roe@') && !received(h).includes('6789'));
    }
  });

  test('Anthropic messages and system blocks, Gemini contents and systemInstruction, Bedrock Converse, Responses input', async () => {
    const h = await start('http');
    const cases: { path: string; body: unknown; text: (sent: any) => string }[] = [
      {
        path: '/v1/messages',
        body: { model: 'c', max_tokens: 5, system: [{ type: 'text', text: 'Escalate to ops@exa' }, { type: 'text', text: 'mple.com.' }], messages: [{ role: 'user', content: [{ type: 'text', text: 'SSN 123-45' }, { type: 'text', text: '-6789 ok' }] }] },
        text: (s) => s.system.map((b: any) => b.text).join('') + '|' + s.messages[0].content.map((b: any) => b.text).join(''),
      },
      {
        path: '/v1beta/models/g:generateContent',
        body: { systemInstruction: { parts: [{ text: 'Escalate to ops@exa' }, { text: 'mple.com.' }] }, contents: [{ role: 'user', parts: [{ text: 'SSN 123-45' }, { text: '-6789 ok' }] }] },
        text: (s) => s.systemInstruction.parts.map((p: any) => p.text).join('') + '|' + s.contents[0].parts.map((p: any) => p.text).join(''),
      },
      {
        path: '/model/m/converse',
        body: { system: [{ text: 'Escalate to ops@exa' }, { text: 'mple.com.' }], messages: [{ role: 'user', content: [{ text: 'SSN 123-45' }, { text: '-6789 ok' }] }] },
        text: (s) => s.system.map((b: any) => b.text).join('') + '|' + s.messages[0].content.map((b: any) => b.text).join(''),
      },
      {
        path: '/v1/responses',
        body: { model: 'm', instructions: 'Escalate to ops@example.com.', input: [{ role: 'user', content: [{ type: 'input_text', text: 'SSN 123-45' }, { type: 'input_text', text: '-6789 ok' }] }] },
        text: (s) => s.instructions + '|' + s.input[0].content.map((p: any) => p.text).join(''),
      },
    ];
    for (const c of cases) {
      await fetch(`${h.url}${c.path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(c.body) }).then((r) => r.arrayBuffer());
      assert.equal(c.text(JSON.parse(received(h))), 'Escalate to [EMAIL].|SSN [US_SSN] ok', c.path);
      assert.ok(!received(h).includes('6789') && !received(h).includes('mple.com'), c.path);
    }
  });

  test('an image part ends the run: the texts on either side are masked apart', async () => {
    const h = await start('openai');
    const client = new OpenAI({ baseURL: h.url, apiKey: 'k', maxRetries: 0 });
    await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text: 'Call 555' }, { type: 'image_url', image_url: { url: 'https://example.org/a.png' } }, { type: 'text', text: '0100 later' }] }] });
    const sent = JSON.parse(received(h)) as { messages: { content: { type: string; text?: string }[] }[] };
    assert.deepEqual(sent.messages[0]!.content.map((p) => p.text ?? p.type), ['Call 555', 'image_url', '0100 later']);
  });
});
