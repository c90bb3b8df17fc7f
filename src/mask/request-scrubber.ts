// Request scrubbing: when a profile applies to requests, the prompt is masked before
// it reaches the model. JSON bodies have their string values masked (restricted to the
// profile's field paths when it has them); other text bodies are masked as text.

import type { MaskPlan } from './plan.js';
import { maskJsonText } from './json-masker.js';
import { applyFindings, type EntityCounts } from './operators.js';

export function maskRequestBody(body: Buffer, contentType: string | undefined, plan: MaskPlan, counts: EntityCounts): Buffer {
  if (body.length === 0) return body;
  const text = body.toString('utf8');
  const isJson = contentType === undefined || /json/i.test(contentType);
  const masked = isJson ? maskJsonText(text, plan, counts) : applyFindings(text, plan.find(text), counts);
  return masked === text ? body : Buffer.from(masked, 'utf8');
}
