// Embedding vectors for callers not entitled to raw vectors (embedding harvesting lets
// a caller rebuild or clone a model's embedding space):
// - block:   the answer is refused (embeddings_blocked);
// - round:   each component rounded to `decimals` decimal places;
// - float16: each component rounded to the nearest IEEE 754 binary16 value;
// - noise:   Gaussian noise whose norm is `noise` × the vector's norm is added (so the
//            cosine similarity to the raw vector is about 1/sqrt(1+noise²)).
// Both `encoding_format: float` (JSON arrays) and `base64` (little-endian float32, the
// openai client's default) are handled; everything else in the body is kept.

import { randomInt } from 'node:crypto';
import { GatehouseError } from '../errors/index.js';
import type { EmbeddingsRule } from './plan.js';

export function transformEmbeddings(body: string, rule: EmbeddingsRule): string {
  if (rule.mode === 'block') throw new GatehouseError('embeddings_blocked');
  const json = JSON.parse(body) as { data?: unknown };
  if (!Array.isArray(json.data)) throw new Error('embeddings answer has no data array');
  const data = json.data.map((item: unknown) => {
    if (typeof item !== 'object' || item === null) return item;
    const embedding = (item as { embedding?: unknown }).embedding;
    if (Array.isArray(embedding)) return { ...item, embedding: transformVector(embedding.map(Number), rule) };
    if (typeof embedding === 'string') return { ...item, embedding: toBase64(transformVector(fromBase64(embedding), rule)) };
    throw new Error('embedding is neither an array nor base64');
  });
  return JSON.stringify({ ...json, data });
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
      const norm = Math.hypot(...vector);
      const sigma = (rule.noise * norm) / Math.sqrt(Math.max(1, vector.length));
      return vector.map((v) => v + sigma * gaussian());
    }
    default:
      throw new GatehouseError('embeddings_blocked');
  }
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
