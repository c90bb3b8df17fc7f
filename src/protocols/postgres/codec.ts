// The PostgreSQL frontend/backend protocol v3 framing (PostgreSQL docs, "Message
// Formats"): length-prefixed startup packets, then one type byte + Int32 length +
// body per message. Everything here is bounded: a declared length beyond the limit,
// or below the minimum, is a protocol violation before any byte of the body is read.

export class ProtocolViolation extends Error {
  override readonly name = 'ProtocolViolation';
}

/** A message longer than the reader's limit (a client's: `limits.maxMessageBytes`). */
export class MessageTooLarge extends ProtocolViolation {}

export interface Frame {
  /** Message type byte as a character; '' for a startup-phase packet (no type byte). */
  readonly type: string;
  /** The body, without type byte and length. */
  readonly body: Buffer;
  /** The whole message as it came off the wire (type + length + body). */
  readonly raw: Buffer;
}

/** StartupMessage protocol version 3.0 (196608). */
export const protocolVersion3 = 196608;
/** SSLRequest code (80877103). */
export const sslRequestCode = 80877103;
/** GSSENCRequest code (80877104). */
export const gssEncRequestCode = 80877104;
/** CancelRequest code (80877102). */
export const cancelRequestCode = 80877102;

// One-character strings for the type byte, made once (String.fromCharCode per frame allocates).
const typeChars = Array.from({ length: 256 }, (_, c) => String.fromCharCode(c));

/**
 * A frame as read: a range of the chunk it arrived in. Neither the body nor the whole
 * message is cut out until asked for: most messages are relayed as they came (the
 * outbox takes the range) and many are never looked into (DataRow without masking,
 * ReadyForQuery …).
 */
export class ReadFrame implements Frame {
  readonly type: string;
  readonly chunk: Buffer;
  readonly start: number;
  readonly end: number;
  readonly #headerSize: number;
  #raw: Buffer | undefined;
  #body: Buffer | undefined;

  constructor(type: string, chunk: Buffer, start: number, end: number, headerSize: number) {
    this.type = type;
    this.chunk = chunk;
    this.start = start;
    this.end = end;
    this.#headerSize = headerSize;
  }

  get raw(): Buffer {
    return (this.#raw ??= this.chunk.subarray(this.start, this.end));
  }

  get body(): Buffer {
    return (this.#body ??= this.chunk.subarray(this.start + this.#headerSize, this.end));
  }

  /** Where the body starts in `chunk`. */
  get bodyStart(): number {
    return this.start + this.#headerSize;
  }
}

/** A reader of a frame's body, without cutting the body out of its chunk. */
export function bodyReader(frame: Frame): BodyReader {
  return frame instanceof ReadFrame ? new BodyReader(frame.chunk, frame.bodyStart, frame.end) : new BodyReader(frame.body);
}

/** The frame's body is `body` (compared in place, without cutting the frame's body out). */
export function bodyEquals(frame: Frame, body: Buffer): boolean {
  if (!(frame instanceof ReadFrame)) return frame.body.equals(body);
  return frame.end - frame.bodyStart === body.length && frame.chunk.compare(body, 0, body.length, frame.bodyStart, frame.end) === 0;
}

/** The length of a message, whole (type, length and body). */
export function frameLength(frame: Frame): number {
  return frame instanceof ReadFrame ? frame.end - frame.start : frame.raw.length;
}

/**
 * Accumulates bytes and cuts them into frames; never holds more than one frame plus one
 * chunk. Frames are views of the chunk they arrived in (no copy), unless a frame spans
 * chunks.
 */
export class FrameReader {
  /** The chunk frames are being cut from, from `#offset` on. */
  #chunk: Buffer = Buffer.alloc(0);
  #offset = 0;
  /** Chunks received after `#chunk`. */
  #more: Buffer[] = [];
  #length = 0;
  readonly #maxMessageBytes: number;

  constructor(maxMessageBytes: number) {
    this.#maxMessageBytes = maxMessageBytes;
  }

  get buffered(): number {
    return this.#length;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.#offset === this.#chunk.length) {
      this.#chunk = chunk;
      this.#offset = 0;
    } else this.#more.push(chunk);
    this.#length += chunk.length;
  }

  /** Takes everything buffered (used when handing a socket over to TLS). */
  drain(): Buffer {
    this.#join();
    const all = this.#chunk.subarray(this.#offset);
    this.#chunk = Buffer.alloc(0);
    this.#offset = 0;
    this.#length = 0;
    return all;
  }

  /** Next frame, or undefined when more bytes are needed. Throws ProtocolViolation. */
  next(startup: boolean): Frame | undefined {
    const headerSize = startup ? 4 : 5;
    if (this.#length < headerSize) return undefined;
    if (this.#chunk.length - this.#offset < headerSize) this.#join();
    const chunk = this.#chunk;
    const at = this.#offset;
    const declared = chunk.readInt32BE(startup ? at : at + 1);
    // The length counts itself (4 bytes); a startup packet is at least length + code.
    const min = startup ? 8 : 4;
    if (declared < min) throw new ProtocolViolation(`invalid message length ${declared}`);
    if (declared > this.#maxMessageBytes) throw new MessageTooLarge(`message length ${declared} exceeds the limit of ${this.#maxMessageBytes} bytes`);
    const total = declared + (startup ? 0 : 1);
    if (this.#length < total) return undefined;
    if (this.#chunk.length - this.#offset < total) this.#join();
    const from = this.#offset;
    const frameChunk = this.#chunk;
    this.#offset = from + total;
    this.#length -= total;
    if (this.#offset === this.#chunk.length && this.#more.length > 0) {
      this.#chunk = this.#more.shift()!;
      this.#offset = 0;
    }
    return new ReadFrame(startup ? '' : typeChars[frameChunk[from]!]!, frameChunk, from, from + total, headerSize);
  }

  /** Makes everything buffered one chunk (a frame or header spans chunks). */
  #join(): void {
    if (this.#more.length === 0) return;
    this.#chunk = Buffer.concat([this.#chunk.subarray(this.#offset), ...this.#more]);
    this.#offset = 0;
    this.#more = [];
  }
}

/**
 * UTF-8 text of `buf[from, to)`. Names, command tags and parameter values are mostly
 * short ASCII, which is read here byte by byte: three to four times faster than a
 * decoder call for a few characters. Anything else goes to the decoder.
 */
export function utf8Text(buf: Buffer, from: number, to: number): string {
  if (to - from > 24) return buf.toString('utf8', from, to);
  let text = '';
  for (let i = from; i < to; i++) {
    const c = buf[i]!;
    if (c >= 0x80) return buf.toString('utf8', from, to);
    text += String.fromCharCode(c);
  }
  return text;
}

/** Reads the fields of a message body, bounds-checked: a short body is a ProtocolViolation. */
export class BodyReader {
  #offset: number;
  readonly #end: number;
  /** The body is `body[start, end)` (a frame's range of the chunk it came in, without a view of its own). */
  constructor(
    readonly body: Buffer,
    start = 0,
    end = body.length,
  ) {
    this.#offset = start;
    this.#end = end;
  }

  get remaining(): number {
    return this.#end - this.#offset;
  }

  int8(): number {
    this.#need(1);
    return this.body.readUInt8(this.#offset++);
  }

  int16(): number {
    this.#need(2);
    const v = this.body.readInt16BE(this.#offset);
    this.#offset += 2;
    return v;
  }

  int32(): number {
    this.#need(4);
    const v = this.body.readInt32BE(this.#offset);
    this.#offset += 4;
    return v;
  }

  /** A null-terminated String (PostgreSQL docs, "Message Data Types"). */
  cstring(): string {
    const end = this.#offset < this.#end ? this.body.indexOf(0, this.#offset) : -1;
    if (end < 0 || end >= this.#end) throw new ProtocolViolation('unterminated string in message');
    const s = utf8Text(this.body, this.#offset, end);
    this.#offset = end + 1;
    return s;
  }

  bytes(n: number): Buffer {
    if (n < 0) throw new ProtocolViolation(`invalid field length ${n}`);
    this.#need(n);
    const b = this.body.subarray(this.#offset, this.#offset + n);
    this.#offset += n;
    return b;
  }

  #need(n: number): void {
    if (this.#offset + n > this.#end) throw new ProtocolViolation('message is shorter than its fields');
  }
}

// ---- reading messages ----

/** The fields of an ErrorResponse / NoticeResponse body, keyed by their field type byte. */
export function parseNoticeFields(body: Buffer): Map<string, string> {
  return new Map(noticeFieldList(body));
}

/** The fields of an ErrorResponse or NoticeResponse in the order sent (code, value). */
export function noticeFieldList(body: Buffer): [string, string][] {
  const out: [string, string][] = [];
  const r = new BodyReader(body);
  while (r.remaining > 0) {
    const code = r.int8();
    if (code === 0) break;
    out.push([String.fromCharCode(code), r.cstring()]);
  }
  return out;
}

/** StartupMessage body (after the version): name/value pairs up to a zero byte. */
export function parseStartupParams(r: BodyReader): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < 64; i++) {
    const name = r.cstring();
    if (name === '') return out;
    out.set(name, r.cstring());
  }
  throw new ProtocolViolation('too many startup parameters');
}

// Type OIDs (pg_type.h) of text-like types: text, varchar, bpchar, name, unknown.
const textTypes = new Set([25, 1043, 1042, 19, 705]);

/** A text-like type: any string is a valid value, in text and in binary format (UTF-8 bytes). */
export function isTextType(oid: number): boolean {
  return textTypes.has(oid);
}

export interface ColumnDescription {
  readonly name: string;
  readonly typeOid: number;
  /** atttypmod (-1: none); for varchar(n) and char(n), n + 4. */
  readonly typeModifier?: number;
  /** 0 text, 1 binary. */
  readonly format: number;
}

/** RowDescription ('T'): Int16 count, then per field name, table oid, attnum, type oid, size, modifier, format. */
export function parseRowDescription(body: Buffer): ColumnDescription[] {
  const r = new BodyReader(body);
  const n = r.int16();
  const columns: ColumnDescription[] = [];
  for (let i = 0; i < n; i++) {
    const name = r.cstring();
    r.int32();
    r.int16();
    const typeOid = r.int32();
    r.int16();
    const typeModifier = r.int32();
    const format = r.int16();
    columns.push({ name, typeOid, typeModifier, format });
  }
  return columns;
}

/** DataRow ('D'): Int16 count, then per column Int32 length (-1 for NULL) and bytes. */
export function parseDataRow(body: Buffer): (Buffer | null)[] {
  const r = new BodyReader(body);
  const n = r.int16();
  const values: (Buffer | null)[] = [];
  for (let i = 0; i < n; i++) {
    const len = r.int32();
    values.push(len === -1 ? null : r.bytes(len));
  }
  return values;
}

export interface BindFields {
  readonly portal: string;
  readonly statement: string;
  /** Parameter values: text as a string, binary as a marker, NULL as null. */
  readonly params: (string | null)[];
  /** The binary-format values (by parameter index), as sent; undefined when every value is text. */
  readonly binary: Map<number, Buffer> | undefined;
  readonly resultFormats: number[];
}

/** Bind ('B'): portal, statement, parameter format codes, values, result format codes. */
export function parseBind(message: Buffer | Frame): BindFields {
  // One offset and bounds checks of its own (once per Execute: no reader object, no
  // view per text value), over the frame's range of its chunk.
  const body = message instanceof ReadFrame ? message.chunk : Buffer.isBuffer(message) ? message : message.body;
  let at = message instanceof ReadFrame ? message.bodyStart : 0;
  const n = message instanceof ReadFrame ? message.end : body.length;
  let end = at < n ? body.indexOf(0, at) : -1;
  if (end < 0 || end >= n) throw new ProtocolViolation('unterminated string in message');
  const portal = utf8Text(body, at, end);
  at = end + 1;
  end = at < n ? body.indexOf(0, at) : -1;
  if (end < 0 || end >= n) throw new ProtocolViolation('unterminated string in message');
  const statement = utf8Text(body, at, end);
  at = end + 1;
  if (at + 2 > n) throw short();
  const nFormats = body.readInt16BE(at);
  at += 2;
  if (at + 2 * Math.max(nFormats, 0) + 2 > n) throw short();
  const formats: number[] = [];
  for (let i = 0; i < nFormats; i++, at += 2) formats.push(body.readInt16BE(at));
  const nParams = body.readInt16BE(at);
  at += 2;
  if (nFormats > 1 && nFormats !== nParams) throw new ProtocolViolation(`bind message has ${nFormats} parameter formats but ${nParams} parameters`);
  const params: (string | null)[] = [];
  let binary: Map<number, Buffer> | undefined;
  for (let i = 0; i < nParams; i++) {
    if (at + 4 > n) throw short();
    const len = body.readInt32BE(at);
    at += 4;
    if (len === -1) {
      params.push(null);
      continue;
    }
    if (len < 0) throw new ProtocolViolation(`invalid field length ${len}`);
    if (at + len > n) throw short();
    const format = nFormats === 0 ? 0 : nFormats === 1 ? formats[0]! : formats[i]!;
    if (format === 0) params.push(utf8Text(body, at, at + len));
    else {
      params.push(`<binary ${len} bytes>`);
      (binary ??= new Map()).set(i, body.subarray(at, at + len));
    }
    at += len;
  }
  if (at + 2 > n) throw short();
  const nResult = body.readInt16BE(at);
  at += 2;
  if (at + 2 * Math.max(nResult, 0) > n) throw short();
  const resultFormats: number[] = [];
  for (let i = 0; i < nResult; i++, at += 2) resultFormats.push(body.readInt16BE(at));
  return { portal, statement, params, binary, resultFormats };
}

function short(): ProtocolViolation {
  return new ProtocolViolation('message is shorter than its fields');
}

/** CommandComplete ('C'): the command tag, e.g. "SELECT 5", "INSERT 0 1". */
export function parseCommandTag(message: Buffer | Frame): string {
  return (Buffer.isBuffer(message) ? new BodyReader(message) : bodyReader(message)).cstring();
}

/** Row count from a command tag (the last number), when it has one. */
export function rowsFromTag(tag: string): number | undefined {
  // The trailing digits, read backwards (once per statement: no regex match object).
  let i = tag.length;
  while (i > 0 && tag.charCodeAt(i - 1) >= 0x30 && tag.charCodeAt(i - 1) <= 0x39) i--;
  return i === tag.length ? undefined : Number(tag.slice(i));
}

// Building messages (the other direction) lives in build-messages.ts; re-exported so
// the protocol's codec stays one import for its users.
export * from './build-messages.js';
