// Security regression: the caller's credential stops at the gateway whatever header
// carries it. A client that sends its Gatehouse key twice (the Anthropic SDK's
// `x-api-key`, Azure's `api-key`, beside `Authorization: Bearer`) had the copy forwarded
// to the target, which then held a key to the gateway.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AzureOpenAI } from 'openai';
import { startSdkGateway, upstreamKey, type SdkGateway } from '../helpers/sdk-gateway.js';

describe("the caller's credential in other headers", () => {
  let g: SdkGateway;
  before(async () => {
    g = await startSdkGateway();
    g.upstream((_req, _body, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'));
  });
  after(() => g.close());

  test('a header repeating the bearer key, or holding any Gatehouse key, is not forwarded', async () => {
    const caller = await g.client(['ml']);
    const other = await g.client(['ml']);
    const key = String(caller.apiKey);
    const res = await fetch(`${g.baseURL}/models`, {
      headers: {
        authorization: `Bearer ${key}`,
        'x-api-key': key,
        'api-key': key,
        'x-note': `mine is ${key}.`,
        'x-other-key': String(other.apiKey),
        'x-kept': 'plain value',
      },
    });
    assert.equal(res.status, 200);
    const sent = g.received.at(-1)!.headers;
    assert.equal(sent['authorization'], `Bearer ${upstreamKey}`);
    for (const name of ['x-api-key', 'api-key', 'x-note', 'x-other-key']) assert.equal(sent[name], undefined, name);
    assert.equal(sent['x-kept'], 'plain value');
    assert.ok(!JSON.stringify(sent).includes('ghk_'), JSON.stringify(sent));
  });

  /** The 401's message; asserts the key is not in the answer and nothing reached the target. */
  async function refusal(res: Response, key: string, before: number): Promise<string> {
    assert.equal(res.status, 401);
    const text = await res.text();
    assert.ok(!text.includes(key) && !text.includes('ghk_'), text);
    assert.equal(g.received.length, before, 'nothing was forwarded');
    return (JSON.parse(text) as { error: { message: string; code: string } }).error.message;
  }

  test("a key in the Anthropic SDK's x-api-key or Google Gen AI's x-goog-api-key (no bearer) is refused with a hint naming the header and the SDK setting", async () => {
    const key = String((await g.client(['ml'])).apiKey);
    const before = g.received.length;
    // As @anthropic-ai/sdk sends it with `apiKey`.
    const anthropic = await fetch(`${g.baseURL}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': key, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }),
    });
    const a = await refusal(anthropic, key, before);
    assert.match(a, /"x-api-key"/);
    assert.match(a, /Anthropic SDK.*authToken/);
    // As @google/genai sends it with `apiKey`.
    const google = await fetch(`${g.baseURL}/v1beta/models/gemini-2.5-flash:generateContent`, {
      method: 'POST',
      headers: { 'x-goog-api-key': key, 'content-type': 'application/json' },
      body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hi' }] }] }),
    });
    const m = await refusal(google, key, before);
    assert.match(m, /"x-goog-api-key"/);
    assert.match(m, /Google Gen AI SDK.*Authorization: "Bearer <key>"/);
  });

  test("the Azure OpenAI client (api-key header) gets the hint in its AuthenticationError; without any key the message is the generic one", async () => {
    const key = String((await g.client(['ml'])).apiKey);
    const before = g.received.length;
    const azure = new AzureOpenAI({ apiKey: key, endpoint: g.baseURL.replace(/\/c\/openai$/, '/c/openai/'), apiVersion: '2024-10-21', deployment: 'gpt-4o', maxRetries: 0 });
    await assert.rejects(azure.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }), (error: unknown) => {
      assert.ok(error instanceof AzureOpenAI.AuthenticationError, String(error));
      assert.match(error.message, /"api-key".*Azure OpenAI client.*plain OpenAI client/);
      assert.ok(!error.message.includes(key));
      return true;
    });
    assert.equal(g.received.length, before);
    const none = await fetch(`${g.baseURL}/models`);
    assert.match(await refusal(none, key, before), /^No credential was presented/);
  });
});
