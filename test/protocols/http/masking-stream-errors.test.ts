// A streamed native answer that fails mid-stream (a response guard, a masking failure)
// ends with an error in the answer's own framing, not with a cut connection: an Ollama
// client reads an `{"error": …}` line (ollama-js throws its `error`), a Bedrock client
// an exception message with valid CRCs (the AWS SDKs raise ModelStreamErrorException).
// Before, the gateway destroyed the socket: the client saw "terminated" / ECONNRESET,
// nothing to say why, and the AWS SDK retried.

import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { afterEach, describe, test } from 'node:test';
import type { MaskProfile } from '../../../src/mask/index.js';
import type { ResponseGuard } from '../../../src/protocols/http/index.js';
import { awsFrame, readAwsFrames } from '../../helpers/aws-event-stream.js';
import { startMaskingHarness, type Harness } from '../../helpers/masking-harness.js';

const pii: MaskProfile = { name: 'pii', operator: 'redact', keepLast: 4, applyTo: 'response' };
const noAwsKeys: ResponseGuard = (text) => (/AKIA[0-9A-Z]{16}/.test(text) ? { rule: 'no-aws-keys', message: 'The answer contained an AWS key.' } : undefined);

let harness: Harness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

async function start(basePath?: string): Promise<Harness> {
  harness = await startMaskingHarness({ profiles: [pii], connectionMasking: ['pii'], connectionType: 'http', guard: noAwsKeys, basePath });
  return harness;
}

/** Writes each piece as its own chunk, then ends. */
async function writeChunks(res: ServerResponse, contentType: string, pieces: readonly (string | Buffer)[]): Promise<void> {
  res.writeHead(200, { 'content-type': contentType });
  for (const piece of pieces) {
    res.write(piece);
    await new Promise((r) => setTimeout(r, 2));
  }
  res.end();
}

/** The whole answer as the client read it; a read that failed (a cut connection) throws. */
async function readAll(res: Response): Promise<Buffer> {
  return Buffer.from(await res.arrayBuffer());
}

describe('a streamed answer blocked mid-stream ends with an error in its own framing', () => {
  test('Ollama NDJSON: the last line is {"error": message, type, code, param, rule}, after lines that parse', async () => {
    const h = await start();
    const line = (content: string, done = false) => `${JSON.stringify({ model: 'llama3', created_at: 't', message: { role: 'assistant', content }, done })}\n`;
    h.upstream((_req, _body, res) => void writeChunks(res, 'application/x-ndjson', [line('Hello. The key is AKIAIOSF'), line('ODNN7EXAMPLE, use it.'), line('', true)]));
    const res = await fetch(`${h.url}/api/chat`, { method: 'POST', body: '{"model":"llama3"}' });
    assert.equal(res.status, 200);
    const text = (await readAll(res)).toString('utf8');
    assert.ok(!text.includes('ODNN7'), text);
    const lines = text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(lines.at(-1), { error: 'The answer contained an AWS key.', type: 'permission_error', code: 'response_blocked', param: null, rule: 'no-aws-keys' });
    assert.equal(h.outcomes[0]!.errorCode, 'response_blocked');
  });

  test('Bedrock ConverseStream: the last message is a modelStreamErrorException with valid CRCs', async () => {
    const h = await start();
    h.upstream((_req, _body, res) =>
      void writeChunks(res, 'application/vnd.amazon.eventstream', [
        awsFrame('messageStart', { role: 'assistant' }),
        awsFrame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'Key AKIAIOSF' } }),
        awsFrame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'ODNN7EXAMPLE ok' } }),
        awsFrame('contentBlockStop', { contentBlockIndex: 0 }),
        awsFrame('messageStop', { stopReason: 'end_turn' }),
      ]),
    );
    const out = await readAll(await fetch(`${h.url}/model/m/converse-stream`, { method: 'POST', body: '{}' }));
    assert.ok(!out.toString('latin1').includes('ODNN7'));
    const frames = readAwsFrames(out);
    assert.deepEqual(frames.at(-1), { eventType: 'modelStreamErrorException', messageType: 'exception', payload: { message: 'The answer contained an AWS key.', originalStatusCode: 403, code: 'response_blocked', rule: 'no-aws-keys' } });
    assert.deepEqual(frames.slice(0, -1).map((f) => f.messageType), frames.slice(0, -1).map(() => 'event'));
  });

  test('Bedrock: a frame that fails its CRC mid-stream ends the answer with a masking_failed exception', async () => {
    const h = await start();
    const bad = awsFrame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'ssn 123-45-6789' } });
    bad.writeUInt32BE(0, bad.length - 4);
    h.upstream((_req, _body, res) => void writeChunks(res, 'application/vnd.amazon.eventstream', [awsFrame('messageStart', { role: 'assistant' }), bad]));
    const out = await readAll(await fetch(`${h.url}/model/m/converse-stream`, { method: 'POST', body: '{}' }));
    assert.ok(!out.toString('latin1').includes('6789'));
    const frames = readAwsFrames(out);
    assert.equal(frames[0]!.eventType, 'messageStart');
    assert.equal(frames.at(-1)!.messageType, 'exception');
    assert.equal(frames.at(-1)!.payload['code'], 'masking_failed');
    assert.equal(h.outcomes[0]!.errorCode, 'masking_failed');
  });
});

describe("an error answer on Ollama's native API is in Ollama's shape", () => {
  test('before the headers: {"error": message, …} on /api/chat (a string ollama-js raises), the OpenAI envelope elsewhere', async () => {
    const h = await start();
    h.upstream((_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ model: 'llama3', message: { role: 'assistant', content: 'key AKIAIOSFODNN7EXAMPLE' }, done: true }));
    });
    const ollama = await fetch(`${h.url}/api/chat`, { method: 'POST', body: '{"model":"llama3","stream":false}' });
    assert.equal(ollama.status, 403);
    assert.deepEqual(await ollama.json(), { error: 'The answer contained an AWS key.', type: 'permission_error', code: 'response_blocked', param: null, rule: 'no-aws-keys' });
    const other = await fetch(`${h.url}/v1/messages`, { method: 'POST', body: '{}' });
    assert.equal(other.status, 403);
    assert.deepEqual(((await other.json()) as { error: { code: string } }).error.code, 'response_blocked');
  });

  test('the native path is read from the path the target gets: a target ending in /api called at /chat answers in Ollama\'s shape, before the headers and mid-stream', async () => {
    const h = await start('/api');
    let path = '';
    h.upstream((req, _body, res) => {
      path = req.url ?? '';
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ model: 'llama3', message: { role: 'assistant', content: 'key AKIAIOSFODNN7EXAMPLE' }, done: true }));
    });
    const refused = await fetch(`${h.url}/chat`, { method: 'POST', body: '{"model":"llama3","stream":false}' });
    assert.equal(path, '/api/chat');
    assert.equal(refused.status, 403);
    assert.deepEqual(await refused.json(), { error: 'The answer contained an AWS key.', type: 'permission_error', code: 'response_blocked', param: null, rule: 'no-aws-keys' });

    const line = (content: string, done = false) => `${JSON.stringify({ model: 'llama3', created_at: 't', message: { role: 'assistant', content }, done })}\n`;
    h.upstream((_req, _body, res) => void writeChunks(res, 'application/x-ndjson', [line('Hello. The key is AKIAIOSF'), line('ODNN7EXAMPLE, use it.'), line('', true)]));
    const streamed = await fetch(`${h.url}/chat`, { method: 'POST', body: '{"model":"llama3"}' });
    const lines = (await readAll(streamed)).toString('utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines.at(-1)!['error'], 'The answer contained an AWS key.');
  });
});
