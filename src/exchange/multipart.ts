// Finds the parts of a multipart body (RFC 2046 §5.1.1; multipart/form-data, RFC 7578:
// file uploads, audio transcriptions) without copying them: each part's content is a
// view into the body. Shared by request scrubbing (masks the text parts) and request
// inspection (reads them as prompt text), so both see the same parts. Pure and bounded
// by the body, which the caller has already bounded.

export interface MultipartPart {
  /** Where the part's content starts and ends in the body. */
  readonly start: number;
  readonly end: number;
  /** The part's own Content-Type, if it declares one. */
  readonly contentType: string | undefined;
  /** The form field's name (`Content-Disposition: form-data; name="…"`, RFC 7578 §4.2; quoted or not, as form parsers read it). */
  readonly name: string | undefined;
  /** The part is a file (its Content-Disposition has a `filename`), not a form field. */
  readonly file: boolean;
}

/** A multipart body whose parts cannot be found: its unread rest could not be inspected or masked. */
export class MultipartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MultipartError';
  }
}

const multipartType = /^\s*multipart\//i;

/** The boundary of a `multipart/…; boundary=…` content type (quoted or not); undefined when not multipart. */
export function multipartBoundary(contentType: string | undefined): string | undefined {
  if (contentType === undefined || !multipartType.test(contentType)) return undefined;
  const match = /;\s*boundary=(?:"([^"]{1,70})"|([^;\s]{1,70}))/i.exec(contentType);
  if (!match) throw new MultipartError('multipart body without a boundary');
  // Parsers disagree on which of two boundaries counts: the target could split the body
  // into other parts than the gateway read.
  if (/;\s*boundary\s*=/gi.test(contentType.slice(match.index + match[0].length))) throw new MultipartError('multipart content type with more than one boundary');
  return match[1] ?? match[2];
}

const crlfCrlf = Buffer.from('\r\n\r\n');

/** The parts of `body`, in order; throws MultipartError when a part has no end (no closing delimiter). */
export function multipartParts(body: Buffer, boundary: string): MultipartPart[] {
  const delimiter = Buffer.from(`--${boundary}`);
  const nextDelimiter = Buffer.from(`\r\n--${boundary}`);
  const parts: MultipartPart[] = [];
  // The first delimiter opens the body, or ends a line of preamble.
  const preambleEnd = body.subarray(0, delimiter.length).equals(delimiter) ? -2 : body.indexOf(nextDelimiter);
  if (preambleEnd === -1) throw new MultipartError('multipart body without its boundary');
  let pos = preambleEnd + 2;
  for (;;) {
    const after = pos + delimiter.length;
    // The close delimiter `--boundary--` ends the parts (§5.1.1).
    if (body[after] === 0x2d && body[after + 1] === 0x2d) return parts;
    const headersEnd = body.indexOf(crlfCrlf, after);
    const next = headersEnd < 0 ? -1 : body.indexOf(nextDelimiter, headersEnd + 4);
    if (next < 0) throw new MultipartError('multipart body without its closing delimiter');
    const headers = body.subarray(after, headersEnd).toString('latin1');
    const contentType = /^content-type:\s*([^\r\n]*)/im.exec(headers)?.[1];
    const disposition = /^content-disposition:[^\r\n]*/im.exec(headers)?.[0] ?? '';
    const named = /;\s*name\s*=\s*(?:"([^"\r\n]*)"|([^;\s]+))/i.exec(disposition);
    const name = named ? (named[1] ?? named[2]) : undefined;
    parts.push({ start: headersEnd + 4, end: next, contentType, name, file: /;\s*filename\*?\s*=/i.test(disposition) });
    pos = next + 2;
  }
}
