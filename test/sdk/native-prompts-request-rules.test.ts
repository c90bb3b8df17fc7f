// Request rules read a native model API's prompt when its connection is `type: openai`
// (the documented way: an `http` connection passes bodies through unread, so a
// `keywords`/`regex`/`entities` rule never holds there). Any JSON body on an `openai`
// connection is read as every string but `model`, adjacent text parts joined: a key
// split across two Anthropic blocks or two Gemini parts is read whole. Each request as
// the provider's SDK sends it, through a real gateway with the secrets-in-prompts pack.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startSdkGateway, type SdkGateway } from '../helpers/sdk-gateway.js';

/** Each native API: its path, and a body whose prompt carries `text` (cut in two where the API has parts). */
const natives: Record<string, { path: string; body: (a: string, b: string) => object }> = {
  'Anthropic messages': { path: '/v1/messages', body: (a, b) => ({ model: 'claude-sonnet-4-5', max_tokens: 64, messages: [{ role: 'user', content: [{ type: 'text', text: a }, { type: 'text', text: b }] }] }) },
  'Gemini generateContent': { path: '/v1beta/models/gemini-2.5-flash:generateContent', body: (a, b) => ({ contents: [{ role: 'user', parts: [{ text: a }, { text: b }] }] }) },
  'Ollama chat': { path: '/api/chat', body: (a, b) => ({ model: 'llama3', messages: [{ role: 'user', content: a + b }], stream: false }) },
  'Cohere v2 chat': { path: '/v2/chat', body: (a, b) => ({ model: 'command-r', messages: [{ role: 'user', content: [{ type: 'text', text: a }, { type: 'text', text: b }] }] }) },
  'Bedrock Converse': { path: '/model/anthropic.claude-3-haiku/converse', body: (a, b) => ({ messages: [{ role: 'user', content: [{ text: a }, { text: b }] }] }) },
  'Bedrock invoke (Anthropic body)': { path: '/model/anthropic.claude-3-haiku/invoke', body: (a, b) => ({ anthropic_version: 'bedrock-2023-05-31', max_tokens: 64, messages: [{ role: 'user', content: [{ type: 'text', text: a }, { type: 'text', text: b }] }] }) },
};

describe('request rules on native model APIs behind an openai connection', () => {
  let h: SdkGateway;
  let key: string;

  before(async () => {
    h = await startSdkGateway({ extraYaml: 'policy:\n  packs: [secrets-in-prompts]\n' });
    key = String((await h.client(['ml'])).apiKey);
    h.upstream((_req, _body, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'));
  });
  after(() => h?.close());

  const send = (path: string, body: object) => fetch(`${h.baseURL}${path}`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });

  test('security: an AWS key in the prompt, split across two parts where the API has parts, is refused and not forwarded', async () => {
    for (const [name, api] of Object.entries(natives)) {
      const before = h.received.length;
      const res = await send(api.path, api.body('deploy with key AKIAIOSF', 'ODNN7EXAMPLE please'));
      assert.equal(res.status, 403, name);
      // Ollama's clients read `error` as the message: Ollama's shape, on this connection too.
      const body = (await res.json()) as { error: string | { rule: string }; rule?: string };
      if (api.path === '/api/chat') assert.equal(typeof body.error, 'string', name);
      assert.equal(typeof body.error === 'string' ? body.rule : body.error.rule, 'secrets-in-prompts:aws-access-key', name);
      assert.equal(h.received.length, before, `${name}: nothing forwarded`);
    }
  });

  test('a harmless prompt passes to the target unchanged', async () => {
    for (const [name, api] of Object.entries(natives)) {
      const res = await send(api.path, api.body('What is ', 'the capital of France?'));
      assert.equal(res.status, 200, name);
      assert.deepEqual(JSON.parse(h.received.at(-1)!.body.toString('utf8')), api.body('What is ', 'the capital of France?'), name);
    }
  });
});
