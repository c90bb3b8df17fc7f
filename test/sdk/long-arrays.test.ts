// Arrays whose length the caller or the target picks (an answer's content parts) are
// walked in loops: `out.push(...parts)` passes every element as an argument, and ~130k
// of them overflow the stack, so a response rule could not read such an answer. The
// openai SDK against a real gateway with a response rule.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { redactingPii, startSdkGateway, type SdkGateway } from '../helpers/sdk-gateway.js';

describe('openai SDK: answers with very long arrays', () => {
  let h: SdkGateway;

  before(async () => {
    h = await startSdkGateway({
      ...redactingPii,
      extraYaml: `${redactingPii.extraYaml}policy:
  rules:
    - { name: no-launch-codes-out, on: response, effect: deny, message: The answer held launch codes., when: [{ keywords: [launch codes] }] }
`,
    });
  });
  after(() => h?.close());

  const answerWithParts = (parts: unknown[]) =>
    h.upstream((_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: parts }, logprobs: null, finish_reason: 'stop' }] }));
    });

  test('a chat answer of 150k content parts is read by the response rule: passed when harmless, refused when it holds the words', async () => {
    const client = await h.client(['ml']);
    const parts = Array.from({ length: 150_000 }, () => ({ type: 'text', text: 'a' }));
    answerWithParts(parts);
    const ok = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal((ok.choices[0]!.message.content as unknown as unknown[]).length, 150_000);

    answerWithParts([...parts, { type: 'text', text: 'the launch codes are 0000' }]);
    await assert.rejects(client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }), (error: unknown) => error instanceof OpenAI.APIError && error.status === 403 && (error.error as { rule?: string }).rule === 'no-launch-codes-out');
  });

  test('security: an answer with a member nested 200k arrays deep is still masked (the JSON scanner does not recurse)', async () => {
    const client = await h.client(['ml']);
    const depth = 200_000;
    h.upstream((_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(`{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"mail jane.roe@example.com"},"finish_reason":"stop"}],"x":${'['.repeat(depth)}${']'.repeat(depth)}}`);
    });
    const deep = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(deep.choices[0]!.message.content, 'mail [EMAIL]');
  });
});
