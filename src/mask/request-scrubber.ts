// Request scrubbing: when a profile applies to requests, the prompt is masked before
// it reaches the model. JSON bodies have their string values masked (restricted to the
// profile's field paths when it has them); other text bodies are masked as text.
// Binary content has no text to mask and passes byte for byte: a body that is not
// UTF-8 (an upload), and in a multipart/form-data body (RFC 7578: file uploads,
// audio transcriptions) each part that is not, while its text parts (form fields, a
// JSONL file) are masked. Decoding binary as UTF-8 and re-encoding it would corrupt it.

import { isUtf8 } from 'node:buffer';
import type { MaskPlan } from './plan.js';
import { maskJsonText } from './json-masker.js';
import { applyFindings, type EntityCounts } from './operators.js';

export function maskRequestBody(body: Buffer, contentType: string | undefined, plan: MaskPlan, counts: EntityCounts): Buffer {
  if (body.length === 0) return body;
  const boundary = contentType === undefined ? undefined : multipartBoundary(contentType);
  if (boundary !== undefined) return maskMultipart(body, boundary, plan, counts);
  const isJson = contentType === undefined || /json/i.test(contentType);
  if (!isJson && !isUtf8(body)) return body;
  return maskText(body, isJson, plan, counts);
}

function maskText(body: Buffer, isJson: boolean, plan: MaskPlan, counts: EntityCounts): Buffer {
  const text = body.toString('utf8');
  const masked = isJson ? maskJsonText(text, plan, counts) : applyFindings(text, plan.find(text), counts);
  return masked === text ? body : Buffer.from(masked, 'utf8');
}

/** RFC 2046 §5.1.1: `multipart/form-data; boundary=…` (quoted or not). */
function multipartBoundary(contentType: string): string | undefined {
  if (!/^\s*multipart\//i.test(contentType)) return undefined;
  const match = /;\s*boundary=(?:"([^"]{1,70})"|([^;\s]{1,70}))/i.exec(contentType);
  if (!match) throw new Error('multipart body without a boundary');
  return match[1] ?? match[2];
}

const crlfCrlf = Buffer.from('\r\n\r\n');

/**
 * Each part's content masked on its own (JSON when the part says so, else text when it
 * is UTF-8, else kept); delimiters and part headers kept as sent. A body whose parts
 * cannot be found (no closing delimiter) is refused: its unread rest would pass unmasked.
 */
function maskMultipart(body: Buffer, boundary: string, plan: MaskPlan, counts: EntityCounts): Buffer {
  const delimiter = Buffer.from(`--${boundary}`);
  const nextDelimiter = Buffer.from(`\r\n--${boundary}`);
  const out: Buffer[] = [];
  let cursor = 0;
  // The first delimiter opens the body, or ends a line of preamble.
  const preambleEnd = body.subarray(0, delimiter.length).equals(delimiter) ? -2 : body.indexOf(nextDelimiter);
  if (preambleEnd === -1) throw new Error('multipart body without its boundary');
  let pos = preambleEnd + 2;
  for (;;) {
    const after = pos + delimiter.length;
    // The close delimiter `--boundary--` ends the parts (§5.1.1).
    if (body[after] === 0x2d && body[after + 1] === 0x2d) break;
    const headersEnd = body.indexOf(crlfCrlf, after);
    const next = headersEnd < 0 ? -1 : body.indexOf(nextDelimiter, headersEnd + 4);
    if (next < 0) throw new Error('multipart body without its closing delimiter');
    const contentStart = headersEnd + 4;
    const content = body.subarray(contentStart, next);
    const partType = /^content-type:\s*([^\r\n]*)/im.exec(body.subarray(after, headersEnd).toString('latin1'))?.[1];
    const isJson = partType !== undefined && /json/i.test(partType) && !/jsonl|ndjson/i.test(partType);
    const masked = content.length === 0 || !isUtf8(content) ? content : maskText(content, isJson, plan, counts);
    if (masked !== content) {
      out.push(body.subarray(cursor, contentStart), masked);
      cursor = next;
    }
    pos = next + 2;
  }
  if (cursor === 0) return body;
  out.push(body.subarray(cursor));
  return Buffer.concat(out);
}
