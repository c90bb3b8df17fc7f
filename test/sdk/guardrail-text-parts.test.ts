// Request guardrails read a message's text parts as the model does: as one text. A
// credential split across two text parts (`key AKIAIOSF` | `ODNN7EXAMPLE`) was read as
// two lines, no rule matched, and the request reached the model with the key whole.
// The openai SDK against a real gateway with the secrets-in-prompts pack.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { startSdkGateway, type SdkGateway } from '../helpers/sdk-gateway.js';

describe('openai SDK: guardrails read a message split into text parts as one text', () => {
  let h: SdkGateway;
  let client: OpenAI;

  before(async () => {
    h = await startSdkGateway({ extraYaml: 'policy:\n  packs: [secrets-in-prompts]\n' });
    client = await h.client(['ml']);
    h.upstream((_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: 'ok', refusal: null }, logprobs: null, finish_reason: 'stop' }] }));
    });
  });
  after(() => h?.close());

  const refusedBy = (rule: string) => (error: unknown) => error instanceof OpenAI.APIError && error.status === 403 && (error.error as { rule?: string } | undefined)?.rule === rule;

  test('security: an AWS key split across two text parts of a chat message is refused, not forwarded', async () => {
    const before = h.received.length;
    await assert.rejects(
      client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text: 'deploy with key AKIAIOSF' }, { type: 'text', text: 'ODNN7EXAMPLE please' }] }] }),
      refusedBy('secrets-in-prompts:aws-access-key'),
    );
    assert.equal(h.received.length, before, 'nothing was forwarded');
  });

  test('security: the same across two input_text parts of a Responses input message', async () => {
    const before = h.received.length;
    await assert.rejects(
      client.responses.create({ model: 'm', input: [{ role: 'user', content: [{ type: 'input_text', text: 'key AKIAIOSF' }, { type: 'input_text', text: 'ODNN7EXAMPLE' }] }] }),
      refusedBy('secrets-in-prompts:aws-access-key'),
    );
    assert.equal(h.received.length, before);
  });

  test('parts with an image between them are two texts; a harmless split request passes', async () => {
    const answer = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text: 'What is in ' }, { type: 'text', text: 'this picture?' }] }] });
    assert.equal(answer.choices[0]!.message.content, 'ok');
  });
});
