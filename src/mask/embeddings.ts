// Embedding vectors for callers not entitled to raw vectors (embedding harvesting lets
// a caller rebuild or clone a model's embedding space):
// - block:   the answer is refused (embeddings_blocked);
// - round:   each component rounded to `decimals` decimal places;
// - float16: each component rounded to the nearest IEEE 754 binary16 value;
// - noise:   Gaussian noise whose norm is `noise` × the vector's norm is added (so the
//            cosine similarity to the raw vector is about 1/sqrt(1+noise²)).
// Both `encoding_format: float` (JSON arrays) and `base64` (little-endian float32, the
// openai client's default) are handled; everything else in the body is kept.
// Native embeddings APIs (transformNativeEmbeddings) carry their vectors elsewhere:
// Ollama `embeddings` / `embedding`, Gemini `embedding.values` / `embeddings[].values`,
// Cohere `embeddings` (a list, or by type: `float`, `base64`), Bedrock Titan `embedding`
// and `embeddingsByType.float`. Quantized types (int8, uint8, binary, ubinary) cannot be
// rounded or noised and stay integers: they are refused (fail closed).

import { randomInt } from 'node:crypto';
import { GatehouseError } from '../errors/index.js';
import type { EmbeddingsRule } from './plan.js';

export function transformEmbeddings(body: string, rule: EmbeddingsRule): string {
  if (rule.mode === 'block') throw new GatehouseError('embeddings_blocked');
  const json = JSON.parse(body) as { data?: unknown };
  if (!Array.isArray(json.data)) throw new Error('embeddings answer has no data array');
  return JSON.stringify({ ...json, data: transformDataArray(json.data, rule) });
}

/** The OpenAI shape's `data[].embedding` (a list of numbers or base64 float32) transformed. */
function transformDataArray(data: readonly unknown[], rule: EmbeddingsRule): unknown[] {
  return data.map((item: unknown) => {
    if (typeof item !== 'object' || item === null) return item;
    const embedding = (item as { embedding?: unknown }).embedding;
    if (Array.isArray(embedding)) return { ...item, embedding: transformVector(embedding.map(Number), rule) };
    if (typeof embedding === 'string') return { ...item, embedding: toBase64(transformVector(fromBase64(embedding), rule)) };
    throw new Error('embedding is neither an array nor base64');
  });
}

/**
 * A native embeddings answer with its vectors transformed. The path is only a hint, the
 * answer decides: an OpenAI-shaped `data` array (an OpenAI-compatible server mounted at
 * `/api/embeddings`) is transformed as transformEmbeddings does. An answer with none of
 * the members that carry vectors passes as it is only when it reads as an error
 * (`error`, `message`, `Message` or `detail`) and holds no list of numbers; any other
 * shape is refused (fail closed: it went out raw, vectors and all).
 */
export function transformNativeEmbeddings(body: string, rule: EmbeddingsRule): string {
  if (rule.mode === 'block') throw new GatehouseError('embeddings_blocked');
  const json = JSON.parse(body) as unknown;
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error('embeddings answer is not a JSON object');
  const out = { ...(json as Record<string, unknown>) };
  const hasData = Array.isArray(out['data']);
  if (hasData) out['data'] = transformDataArray(out['data'] as unknown[], rule);
  if (!('embedding' in out) && !('embeddings' in out) && !('embeddingsByType' in out)) {
    if (hasData) return JSON.stringify(out);
    if (isErrorAnswer(out) && !holdsNumberList(out)) return body;
    throw new Error('a native embeddings answer in no known shape');
  }
  const vector = (value: unknown): unknown => {
    if (isNumberList(value)) return transformVector(value, rule);
    if (isObject(value) && isNumberList(value['values'])) return { ...value, values: transformVector(value['values'], rule) };
    throw new Error('an embedding that is neither a list of numbers nor {values}');
  };
  const vectors = (value: unknown): unknown[] => {
    if (!Array.isArray(value)) throw new Error('embeddings that are not a list');
    return value.map(vector);
  };
  /** Cohere's `embeddings` and Titan's `embeddingsByType`: vectors by type. */
  const byType = (value: Record<string, unknown>, list: boolean): Record<string, unknown> => {
    const typed: Record<string, unknown> = {};
    for (const [type, vs] of Object.entries(value)) {
      if (type === 'float') typed[type] = list ? vectors(vs) : vector(vs);
      else if (type === 'base64' && list && Array.isArray(vs)) typed[type] = vs.map((b) => (typeof b === 'string' ? toBase64(transformVector(fromBase64(b), rule)) : vector(b)));
      else throw new Error(`${type} embeddings cannot be transformed (${rule.mode}); ask for float`);
    }
    return typed;
  };
  if ('embedding' in out) out['embedding'] = vector(out['embedding']);
  if ('embeddings' in out) out['embeddings'] = isObject(out['embeddings']) ? byType(out['embeddings'], true) : vectors(out['embeddings']);
  if ('embeddingsByType' in out) {
    if (!isObject(out['embeddingsByType'])) throw new Error('embeddingsByType is not an object');
    out['embeddingsByType'] = byType(out['embeddingsByType'], false);
  }
  return JSON.stringify(out);
}

/** The members an error answer carries: Ollama `error`, Gemini `error{}`, Cohere and Bedrock `message`, FastAPI `detail`. */
function isErrorAnswer(json: Record<string, unknown>): boolean {
  return 'error' in json || 'message' in json || 'Message' in json || 'detail' in json;
}

/** A non-empty list of numbers anywhere in the value (walked with a stack: nesting depth is the caller's). */
function holdsNumberList(value: unknown): boolean {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (Array.isArray(v)) {
      if (v.length > 0 && isNumberList(v)) return true;
      for (const x of v) if (typeof x === 'object' && x !== null) stack.push(x);
    } else if (isObject(v)) {
      for (const x of Object.values(v)) if (typeof x === 'object' && x !== null) stack.push(x);
    }
  }
  return false;
}

function isNumberList(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'number');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function transformVector(vector: readonly number[], rule: EmbeddingsRule): number[] {
  switch (rule.mode) {
    case 'round': {
      const f = 10 ** rule.decimals;
      return vector.map((v) => Math.round(v * f) / f);
    }
    case 'float16':
      return vector.map(toFloat16);
    case 'noise': {
      const sigma = (rule.noise * euclideanNorm(vector)) / Math.sqrt(Math.max(1, vector.length));
      return vector.map((v) => v + sigma * gaussian());
    }
    default:
      throw new GatehouseError('embeddings_blocked');
  }
}

/**
 * Math.hypot over a loop: `Math.hypot(...vector)` passes every component as an argument,
 * and a vector of ~130k components (the caller picks `dimensions`) overflows the stack.
 * Scaled by the largest component so that squares neither overflow nor underflow.
 */
function euclideanNorm(vector: readonly number[]): number {
  let scale = 0;
  for (const v of vector) {
    const a = Math.abs(v);
    if (Number.isNaN(a)) return NaN;
    if (a > scale) scale = a;
  }
  if (scale === 0 || scale === Infinity) return scale;
  let sum = 0;
  for (const v of vector) sum += (v / scale) ** 2;
  return scale * Math.sqrt(sum);
}

/** Nearest binary16 value (round half to even via float32 arithmetic on the mantissa). */
export function toFloat16(value: number): number {
  if (!Number.isFinite(value) || value === 0) return value;
  const sign = value < 0 ? -1 : 1;
  const abs = Math.abs(value);
  if (abs >= 65520) return sign * Infinity;
  const exp = Math.max(Math.floor(Math.log2(abs)), -14);
  const step = 2 ** (exp - 10);
  const q = abs / step;
  let r = Math.round(q);
  if (Math.abs(q - Math.trunc(q) - 0.5) < 1e-12 && r % 2 === 1) r -= 1;
  return sign * r * step;
}

/** Box-Muller over crypto randomness: the noise must not be predictable by the caller. */
function gaussian(): number {
  const u = (randomInt(1, 2 ** 48 - 1) / 2 ** 48);
  const v = randomInt(0, 2 ** 48 - 1) / 2 ** 48;
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

function fromBase64(text: string): number[] {
  const buf = Buffer.from(text, 'base64');
  const out: number[] = [];
  for (let i = 0; i + 4 <= buf.length; i += 4) out.push(buf.readFloatLE(i));
  return out;
}

function toBase64(vector: readonly number[]): string {
  const buf = Buffer.allocUnsafe(vector.length * 4);
  vector.forEach((v, i) => buf.writeFloatLE(v, i * 4));
  return buf.toString('base64');
}
