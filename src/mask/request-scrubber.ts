// Request scrubbing: when a profile applies to requests, the prompt is masked before
// it reaches the model. JSON bodies have their string values masked (restricted to the
// profile's field paths when it has them); other text bodies are masked as text.
// Binary content has no text to mask and passes byte for byte: a body that is not
// UTF-8 (an upload), and in a multipart/form-data body (RFC 7578: file uploads,
// audio transcriptions) each file part that is not, while its text parts (form fields,
// whatever their bytes, and UTF-8 files such as JSONL) are masked. Decoding binary as UTF-8 and re-encoding it would corrupt it.
// A text body (a type that says text or JSON, or none) is text whatever its bytes: one
// that is not UTF-8 (a legacy client's `Zoë` in Latin-1, `charset=iso-8859-1`) is masked
// as Latin-1, which reads every byte and writes them back unchanged but for the masked
// values (it passed unmasked as "binary"); one declared in a charset the scrubber cannot
// read and write back (UTF-16, Shift_JIS …), or starting with a UTF-16/32 byte order
// mark, is refused (masking_failed): masked as bytes, its values would pass.

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
  const charset = declaredCharset(contentType);
  const textual = isJson || (contentType !== undefined && textType.test(contentType));
  if (charset !== undefined && !readableCharsets.has(charset)) throw new Error(`cannot mask a request body in charset ${charset}`);
  if (textual && startsWithWideBom(body)) throw new Error('cannot mask a request body in UTF-16 or UTF-32');
  if (isUtf8(body) && !(charset !== undefined && latin1Charsets.has(charset))) return maskText(body, isJson, plan, counts);
  return textual ? maskText(body, isJson, plan, counts, 'latin1') : body;
}

/** Types whose body is text to a target, whatever its bytes. */
const textType = /^\s*text\/|xml|x-www-form-urlencoded|javascript|yaml|csv/i;
/** Charsets read as Latin-1 (windows-1252 differs only in C1 controls, none of them part of a value). */
const latin1Charsets = new Set(['iso-8859-1', 'latin1', 'l1', 'iso_8859-1', 'windows-1252', 'cp1252']);
const readableCharsets = new Set(['utf-8', 'utf8', 'us-ascii', 'ascii', ...latin1Charsets]);

/** The Content-Type's `charset`, lower-cased; undefined when it declares none. */
function declaredCharset(contentType: string | undefined): string | undefined {
  const match = contentType === undefined ? null : /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType);
  return match?.[1]?.toLowerCase();
}

function startsWithWideBom(body: Buffer): boolean {
  return body.length >= 2 && ((body[0] === 0xff && body[1] === 0xfe) || (body[0] === 0xfe && body[1] === 0xff) || (body.length >= 4 && body[0] === 0 && body[1] === 0 && body[2] === 0xfe && body[3] === 0xff));
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
