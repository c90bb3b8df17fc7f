// Request scrubbing: when a profile applies to requests, the prompt is masked before
// it reaches the model. JSON bodies have their string values masked (restricted to the
// profile's field paths when it has them); other text bodies are masked as text.
// Binary content has no text to mask and passes byte for byte: a body that is not
// UTF-8 (an upload), and in a multipart/form-data body (RFC 7578: file uploads,
// audio transcriptions) each file part that is not, while its text parts (form fields,
// whatever their bytes, and UTF-8 files such as JSONL) are masked. Decoding binary as UTF-8 and re-encoding it would corrupt it.

import { isUtf8 } from 'node:buffer';
import { multipartBoundary, multipartParts } from '../exchange/index.js';
import type { MaskPlan } from './plan.js';
import { maskJsonText } from './json-masker.js';
import { applyFindings, type EntityCounts } from './operators.js';

export function maskRequestBody(body: Buffer, contentType: string | undefined, plan: MaskPlan, counts: EntityCounts): Buffer {
  if (body.length === 0) return body;
  const boundary = multipartBoundary(contentType);
  if (boundary !== undefined) return maskMultipart(body, boundary, plan, counts);
  const isJson = contentType === undefined || /json/i.test(contentType);
  if (!isJson && !isUtf8(body)) return body;
  return maskText(body, isJson, plan, counts);
}

function maskText(body: Buffer, isJson: boolean, plan: MaskPlan, counts: EntityCounts, encoding: 'utf8' | 'latin1' = 'utf8'): Buffer {
  const text = body.toString(encoding);
  const masked = isJson ? maskJsonText(text, plan, counts) : applyFindings(text, plan.find(text), counts);
  // Written back in the encoding it was read in when it fits (a mask adds ASCII only).
  return masked === text ? body : Buffer.from(masked, encoding === 'latin1' && !/[^\u0000-\u00ff]/.test(masked) ? 'latin1' : 'utf8');
}

/**
 * Each part's content masked on its own (JSON when the part says so, else text when it
 * is UTF-8 or a form field, else kept); delimiters and part headers kept as sent. A body whose parts
 * cannot be found (no closing delimiter) is refused: its unread rest would pass unmasked.
 */
function maskMultipart(body: Buffer, boundary: string, plan: MaskPlan, counts: EntityCounts): Buffer {
  const out: Buffer[] = [];
  let cursor = 0;
  for (const part of multipartParts(body, boundary)) {
    const content = body.subarray(part.start, part.end);
    const partType = part.contentType;
    const isJson = partType !== undefined && /json/i.test(partType) && !/jsonl|ndjson/i.test(partType);
    // A form field (no filename) that is not UTF-8 is still text: form parsers read it as
    // Latin-1, so it is masked as Latin-1, not passed on as binary.
    const utf8 = content.length === 0 || isUtf8(content);
    const masked = content.length === 0 || (!utf8 && part.file) ? content : maskText(content, isJson, plan, counts, utf8 ? 'utf8' : 'latin1');
    if (masked !== content) {
      out.push(body.subarray(cursor, part.start), masked);
      cursor = part.end;
    }
  }
  if (cursor === 0) return body;
  out.push(body.subarray(cursor));
  return Buffer.concat(out);
}
