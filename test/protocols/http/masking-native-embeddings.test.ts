// A masking profile's `embeddings` rule on the embeddings calls of native APIs behind an
// `http` connection (Ollama, Gemini, Cohere, Bedrock Titan and Cohere): the rule only
// knew the OpenAI shape (`data[].embedding`), so `block` let raw vectors out and
// `round` / `noise` changed nothing; Cohere's echo of the embedded `texts` went out too
// when no text profile read it. Real sockets, each provider's own answer shape.

import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import type { EmbeddingsRule, MaskProfile } from '../../../src/mask/index.js';
import { startMaskingHarness, type Harness } from '../../helpers/masking-harness.js';

const pii: MaskProfile = { name: 'pii', operator: 'redact', keepLast: 4, applyTo: 'response' };
const vectors = (embeddings: EmbeddingsRule): MaskProfile => ({ name: 'vec', operator: 'redact', keepLast: 4, applyTo: 'response', entities: [], embeddings });

let harness: Harness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

const raw = [0.123456, -0.654321, 0.5];
const rawB64 = Buffer.from(new Float32Array(raw).buffer).toString('base64');
/** Little-endian float32 values of a base64 embedding. */
const floatsOf = (b64: string): number[] => {
  const bytes = Buffer.from(b64, 'base64');
  return Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readFloatLE(i * 4));
};

/** Each native API: its path, its answer with the raw vector, and the vectors a client reads from it. */
const apis: Record<string, { path: string; answer: object; read: (a: any) => number[][] }> = {
  'Ollama /api/embed': { path: '/api/embed', answer: { model: 'nomic', embeddings: [raw, raw], total_duration: 5 }, read: (a) => a.embeddings },
  'Ollama /api/embeddings': { path: '/api/embeddings', answer: { embedding: raw }, read: (a) => [a.embedding] },
  'Gemini embedContent': { path: '/v1beta/models/text-embedding-004:embedContent', answer: { embedding: { values: raw } }, read: (a) => [a.embedding.values] },
  'Gemini batchEmbedContents': { path: '/v1beta/models/text-embedding-004:batchEmbedContents', answer: { embeddings: [{ values: raw }, { values: raw }] }, read: (a) => a.embeddings.map((e: any) => e.values) },
  'Cohere v2 embed (by type)': {
    path: '/v2/embed',
    answer: { id: 'e1', texts: ['mail ann@example.com'], embeddings: { float: [raw], base64: [rawB64] }, meta: { api_version: { version: '2' } } },
    read: (a) => [...a.embeddings.float, ...a.embeddings.base64.map(floatsOf)],
  },
  'Bedrock Titan (invoke)': { path: '/model/amazon.titan-embed-text-v2:0/invoke', answer: { embedding: raw, embeddingsByType: { float: raw }, inputTextTokenCount: 3 }, read: (a) => [a.embedding, a.embeddingsByType.float] },
  'Bedrock Cohere (invoke)': { path: '/model/cohere.embed-english-v3/invoke', answer: { id: 'e1', texts: ['mail ann@example.com'], embeddings: [raw], response_type: 'embeddings_floats' }, read: (a) => a.embeddings },
};

async function call(h: Harness, path: string, answer: object): Promise<Response> {
  h.upstream((_req, _body, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(answer));
  });
  return fetch(`${h.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"input":"x"}' });
}

describe('embeddings rules on native embeddings APIs (http connection)', () => {
  test('security: block refuses every native embeddings answer with embeddings_blocked', async () => {
    const h = (harness = await startMaskingHarness({ profiles: [vectors({ mode: 'block', decimals: 2, noise: 0.1 })], connectionMasking: ['vec'], connectionType: 'http' }));
    for (const [name, api] of Object.entries(apis)) {
      const res = await call(h, api.path, api.answer);
      assert.equal(res.status, 403, name);
      // Ollama's paths answer in Ollama's shape (`error` is the message), the others in the OpenAI envelope.
      const body = (await res.json()) as { error: string | { code: string }; code?: string };
      assert.equal(typeof body.error === 'string' ? body.code : body.error.code, 'embeddings_blocked', name);
    }
  });

  test('round: every vector is rounded, in every shape; the answer keeps its shape; Cohere texts are masked by the text profile', async () => {
    const h = (harness = await startMaskingHarness({ profiles: [pii, vectors({ mode: 'round', decimals: 2, noise: 0.1 })], connectionMasking: ['pii', 'vec'], connectionType: 'http' }));
    for (const [name, api] of Object.entries(apis)) {
      const res = await call(h, api.path, api.answer);
      assert.equal(res.status, 200, name);
      const body = (await res.json()) as any;
      for (const v of api.read(body)) assert.deepEqual(v.map((x) => Math.round(x * 100) / 100), [0.12, -0.65, 0.5], name);
      for (const v of api.read(body)) assert.ok(v.every((x, i) => Math.abs(x - [0.12, -0.65, 0.5][i]!) < 1e-6), `${name}: ${JSON.stringify(v)}`);
      if (body.texts) assert.deepEqual(body.texts, ['mail [EMAIL]'], name);
    }
  });

  test('quantized types (Cohere int8) cannot be rounded: refused, not passed raw; an error answer passes as it is', async () => {
    const h = (harness = await startMaskingHarness({ profiles: [vectors({ mode: 'noise', decimals: 2, noise: 0.1 })], connectionMasking: ['vec'], connectionType: 'http' }));
    const res = await call(h, '/v2/embed', { id: 'e1', embeddings: { int8: [[12, -7, 100]] } });
    assert.equal(res.status, 502);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'masking_failed');
    const error = await call(h, '/api/embed', { error: 'model "nomic" not found, try pulling it first' });
    assert.deepEqual(await error.json(), { error: 'model "nomic" not found, try pulling it first' });
  });

  test('a chat call on the same connection is not taken for embeddings', async () => {
    const h = (harness = await startMaskingHarness({ profiles: [vectors({ mode: 'block', decimals: 2, noise: 0.1 })], connectionMasking: ['vec'], connectionType: 'http' }));
    const res = await call(h, '/api/chat', { message: { role: 'assistant', content: 'hi' }, done: true });
    assert.equal(res.status, 200);
  });
});

// A native path whose target answers in the OpenAI shape (an OpenAI-compatible server
// mounted at `/api/embeddings`), or in a shape no transform knows: under `round`,
// `float16` or `noise` the answer went out as it came, raw vectors and all (`block`
// already refused every answer there; its test guards that).
describe('embeddings rules on a native path answered in another shape', () => {
  const openaiShaped = { object: 'list', data: [{ object: 'embedding', index: 0, embedding: raw }], model: 'm' };

  test('security: block refuses an OpenAI-shaped answer at /api/embeddings, on http and openai connections', async () => {
    for (const connectionType of ['http', 'openai'] as const) {
      const h = (harness = await startMaskingHarness({ profiles: [vectors({ mode: 'block', decimals: 2, noise: 0.1 })], connectionMasking: ['vec'], connectionType }));
      const res = await call(h, '/api/embeddings', openaiShaped);
      assert.equal(res.status, 403, connectionType);
      const text = await res.text();
      assert.ok(!text.includes('0.123456'), text);
      await h.close();
      harness = undefined;
    }
  });

  test('round: the vectors of an OpenAI-shaped answer at /api/embed are rounded', async () => {
    const h = (harness = await startMaskingHarness({ profiles: [vectors({ mode: 'round', decimals: 2, noise: 0.1 })], connectionMasking: ['vec'], connectionType: 'http' }));
    const res = await call(h, '/api/embed', openaiShaped);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { data: { embedding: number[] }[] };
    assert.deepEqual(body.data[0]!.embedding, [0.12, -0.65, 0.5]);
  });

  test('security: an answer with numbers in no known shape is refused with masking_failed, not passed raw', async () => {
    const h = (harness = await startMaskingHarness({ profiles: [vectors({ mode: 'noise', decimals: 2, noise: 0.1 })], connectionMasking: ['vec'], connectionType: 'http' }));
    const res = await call(h, '/api/embeddings', { vectors: [raw] });
    assert.equal(res.status, 502);
    const text = await res.text();
    assert.ok(!text.includes('0.123456'), text);
    assert.match(text, /masking_failed/);
  });
});

// No embeddings API streams its vectors; an event stream on a native embeddings path was
// masked as text only, so under `round` or `noise` its vectors went out raw.
test('security: an event stream answering a native embeddings path is refused under an embeddings rule, not relayed raw', async () => {
  const h = (harness = await startMaskingHarness({ profiles: [vectors({ mode: 'round', decimals: 2, noise: 0.1 })], connectionMasking: ['vec'], connectionType: 'http' }));
  h.upstream((_req, _body, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.end(`data: ${JSON.stringify({ embeddings: [raw] })}\n\n`);
  });
  const res = await fetch(`${h.url}/api/embed`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"input":"x"}' });
  const text = await res.text();
  assert.ok(!text.includes('0.123456'), text);
  assert.match(text, /masking_failed/);
});
