// Embeddings with the official openai client, which asks for base64 vectors unless told
// otherwise: the protections for callers not entitled to raw vectors (float16, noise,
// block) act on what the SDK decodes, float vectors and `dimensions` too, and the
// answer's usage is recorded and counted by token limits.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { toFloat16 } from '../../src/mask/embeddings.js';
import { startSdkGateway, type SdkGateway } from '../helpers/sdk-gateway.js';

/** A deterministic float32 vector. */
function vector(dimensions: number, seed: number): number[] {
  return Array.from({ length: dimensions }, (_, i) => Math.fround(Math.sin(seed * 1000 + i) * 0.05));
}

function cosine(a: readonly number[], b: readonly number[]): number {
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i]! * b[i]!;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return dot / Math.sqrt(na) / Math.sqrt(nb);
}

describe('openai SDK: embeddings', () => {
  let h: SdkGateway;

  before(async () => {
    h = await startSdkGateway({
      extraYaml: `masking:
  profiles:
    half: { entities: [], embeddings: { mode: float16 } }
    noisy: { entities: [], embeddings: { mode: noise, noise: 0.1 } }
    none: { entities: [], embeddings: { mode: block } }
policy:
  rules:
    - { name: half, effect: allow, match: { groups: [half] }, obligations: { mask: [half] } }
    - { name: noisy, effect: allow, match: { groups: [noisy] }, obligations: { mask: [noisy] } }
    - { name: none, effect: allow, match: { groups: [none] }, obligations: { mask: [none] } }
  limits:
    rules:
      - { name: embedding-tokens, per: identity, tokens: 100, window: 1h, match: { groups: [metered] } }
`,
    });
    h.upstream((_req, body, res) => {
      const request = JSON.parse(body.toString('utf8')) as { model: string; input: string | string[]; encoding_format?: string; dimensions?: number };
      const inputs = Array.isArray(request.input) ? request.input : [request.input];
      const data = inputs.map((_, index) => {
        const v = vector(request.dimensions ?? 1536, index + 1);
        return { object: 'embedding', index, embedding: request.encoding_format === 'base64' ? Buffer.from(new Float32Array(v).buffer).toString('base64') : v };
      });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', data, model: request.model, usage: { prompt_tokens: 60, total_tokens: 60 } }));
    });
  });
  after(() => h?.close());

  test('float16 for base64 (the SDK default) and float vectors; the usage is recorded', async () => {
    const client = await h.client(['half']);
    const { data, response } = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['alpha', 'beta'] }).withResponse();
    assert.equal(JSON.parse(h.received.at(-1)!.body.toString('utf8')).encoding_format, 'base64');
    assert.deepEqual(data.data[1]!.embedding, vector(1536, 2).map(toFloat16));
    const float = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'alpha', encoding_format: 'float', dimensions: 256 });
    assert.deepEqual(float.data[0]!.embedding, vector(256, 1).map(toFloat16));

    const record = await h.session(response.headers.get('gatehouse-exchange-id')!);
    assert.equal(record['operation'], 'embeddings');
    assert.deepEqual(record['response'].usage, { promptTokens: 60, totalTokens: 60 });
  });

  test('noise changes every vector by the configured amount; block refuses', async () => {
    const noisy = await h.client(['noisy']);
    const answer = await noisy.embeddings.create({ model: 'text-embedding-3-small', input: 'alpha' });
    const raw = vector(1536, 1);
    const got = answer.data[0]!.embedding;
    assert.equal(got.length, raw.length);
    assert.ok(got.every(Number.isFinite));
    const similarity = cosine(got, raw);
    // 1/√(1+0.1²) ≈ 0.995
    assert.ok(similarity > 0.985 && similarity < 0.9999, `cosine ${similarity}`);

    const blocked = await h.client(['none']);
    await assert.rejects(blocked.embeddings.create({ model: 'text-embedding-3-small', input: 'alpha' }), (error: unknown) => error instanceof OpenAI.PermissionDeniedError && error.code === 'embeddings_blocked');
  });

  test('noise on a very long vector (200k components, base64 and float) is noised, not refused: the norm is summed in a loop, not Math.hypot(...vector)', async () => {
    const noisy = await h.client(['noisy']);
    const raw = vector(200_000, 1);
    // undefined: the SDK asks for base64 and decodes it.
    for (const encoding_format of [undefined, 'float'] as const) {
      const answer = await noisy.embeddings.create({ model: 'text-embedding-3-large', input: 'alpha', dimensions: 200_000, ...(encoding_format ? { encoding_format } : {}) });
      const got = answer.data[0]!.embedding;
      assert.equal(got.length, raw.length, encoding_format);
      assert.ok(got.every(Number.isFinite), encoding_format);
      const similarity = cosine(got, raw);
      assert.ok(similarity > 0.985 && similarity < 0.9999, `${encoding_format}: cosine ${similarity}`);
    }
  });

  test('a token limit counts the tokens the embeddings answers report', async () => {
    const client = await h.client(['metered', 'ml']);
    // 60 tokens each, as the target reports (an estimate from the one-word input would be 2).
    await client.embeddings.create({ model: 'text-embedding-3-small', input: 'alpha' });
    await client.embeddings.create({ model: 'text-embedding-3-small', input: 'alpha' });
    await assert.rejects(client.embeddings.create({ model: 'text-embedding-3-small', input: 'alpha' }), (error: unknown) => error instanceof OpenAI.RateLimitError && error.code === 'rate_limited');
  });
});
