// The agent tunnel's wire protocol (docs/agent.md has the sequence diagram). The agent
// is the HTTP/2 client (RFC 9113) and opens every stream:
//
//   POST /agent/v1/connect           control stream, full duplex, newline-delimited
//                                    JSON frames both ways (hello / welcome /
//                                    heartbeat / exchange / cancel / drain)
//   POST /agent/v1/exchanges/<id>    one stream per exchange: the gateway's answer
//                                    body is the request body for the target; the
//                                    agent's request body is a length-prefixed JSON
//                                    head (status, headers, or an error) followed by
//                                    the target's answer bytes, then the trailer
//                                    `gatehouse-answer-complete: 1` with END_STREAM =
//                                    complete; anything else (RST_STREAM, the link
//                                    dying) = cut.
////   POST /agent/v1/exchanges/<id>    of kind `tcp`: a raw byte stream to the target.
//                                    The gateway's answer body carries gateway→target
//                                    bytes; the agent's request body a head (status
//                                    200 once it accepted, or an error), then
//                                    target→gateway bytes. END_STREAM is a half-close;
//                                    the agent's carries the same trailer (the target
//                                    closed its side), RST_STREAM or the link dying =
//                                    cut.
//
// Each exchange is its own HTTP/2 stream, so per-stream flow control (RFC 9113 §5.2)
// keeps one slow reader from stalling the others.

import { PassThrough, type Readable } from 'node:stream';

export const connectPath = '/agent/v1/connect';
export const exchangePathPrefix = '/agent/v1/exchanges/';
export const protocolVersion = 1;

/**
 * The trailer (RFC 9113 §8.1) the agent sends after the target's last byte. The gateway
 * treats an answer as complete only if it arrived: node:http2 ends a stream's readable
 * side when the link dies too, so END_STREAM alone cannot be told from a cut.
 */
export const completeTrailer = 'gatehouse-answer-complete';

/** Bounds: one control frame, one response head. */
export const maxFrameBytes = 256 * 1024;
export const maxHeadBytes = 256 * 1024;

export interface HelloFrame {
  readonly type: 'hello';
  readonly name: string;
  readonly connections: readonly string[];
  readonly concurrency: number;
  readonly version: string;
}
export interface AgentHeartbeatFrame {
  readonly type: 'heartbeat';
  readonly at: number;
}
/** The agent is shutting down: offer it nothing new; what it has taken it finishes. */
export interface DrainFrame {
  readonly type: 'drain';
}
export type AgentFrame = HelloFrame | AgentHeartbeatFrame | DrainFrame;

export interface WelcomeFrame {
  readonly type: 'welcome';
  readonly session: string;
  readonly heartbeatMs: number;
  readonly protocol: number;
}
export interface HttpExchangeFrame {
  readonly type: 'exchange';
  readonly id: string;
  readonly kind: 'http';
  readonly connection: string;
  readonly method: string;
  /** Relative to the target's base path; the agent prefixes its own. */
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  /** Set when the gateway holds the target's credential; the agent's own wins. */
  readonly credential?: { readonly header: string; readonly value: string } | undefined;
  readonly bodyLength: number;
}
/**
 * A raw byte stream to the connection's target (a PostgreSQL connection: the agent logs
 * in to the database and relays the session's bytes after login; docs/agent.md).
 */
export interface StreamExchangeFrame {
  readonly type: 'exchange';
  readonly id: string;
  readonly kind: 'tcp';
  readonly connection: string;
  /** Set when the gateway holds the target's credential (role and password); the agent's own wins. */
  readonly credential?: { readonly user: string; readonly secret: string } | undefined;
}
export type ExchangeFrame = HttpExchangeFrame | StreamExchangeFrame;
export interface CancelFrame {
  readonly type: 'cancel';
  readonly id: string;
}
export interface GatewayHeartbeatFrame {
  readonly type: 'heartbeat';
  readonly at: number;
}
export type GatewayFrame = WelcomeFrame | ExchangeFrame | CancelFrame | GatewayHeartbeatFrame;

/** The head the agent writes first on an exchange stream. */
export type ResponseHead =
  | { readonly status: number; readonly headers: Readonly<Record<string, string | string[]>> }
  | { readonly error: { readonly code: string; readonly detail: string } };

export class ProtocolError extends Error {}

export function encodeFrame(frame: AgentFrame | GatewayFrame): string {
  return `${JSON.stringify(frame)}\n`;
}

/** Newline-delimited JSON frames from a stream, each bounded by `maxFrameBytes`. */
export async function* readFrames(stream: Readable): AsyncGenerator<Record<string, unknown>> {
  let pending = '';
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    pending += chunk.toString('utf8');
    let newline: number;
    while ((newline = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      if (line.trim() === '') continue;
      yield parseFrame(line);
    }
    if (pending.length > maxFrameBytes) throw new ProtocolError(`control frame exceeds ${maxFrameBytes} bytes`);
  }
}

function parseFrame(line: string): Record<string, unknown> {
  if (line.length > maxFrameBytes) throw new ProtocolError(`control frame exceeds ${maxFrameBytes} bytes`);
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new ProtocolError('control frame is not JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value) || typeof (value as { type?: unknown }).type !== 'string') {
    throw new ProtocolError('control frame has no type');
  }
  return value as Record<string, unknown>;
}

/** 4-byte big-endian length, then the JSON head. */
export function encodeHead(head: ResponseHead): Buffer {
  const json = Buffer.from(JSON.stringify(head), 'utf8');
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32BE(json.length, 0);
  return Buffer.concat([prefix, json]);
}

/**
 * Reads the head off an exchange stream; resolves with it and the bytes read past it,
 * the stream left paused. Rejects if the stream ends or breaks first.
 */
export function readHead(stream: Readable): Promise<{ head: ResponseHead; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buffered: Buffer = Buffer.alloc(0);
    const cleanup = () => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onEnd);
      stream.off('close', onEnd);
    };
    const onEnd = (error?: Error) => {
      cleanup();
      reject(error instanceof Error ? error : new ProtocolError('exchange stream ended before its head'));
    };
    const onData = (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      if (buffered.length < 4) return;
      const length = buffered.readUInt32BE(0);
      if (length > maxHeadBytes) {
        cleanup();
        return reject(new ProtocolError(`response head exceeds ${maxHeadBytes} bytes`));
      }
      if (buffered.length < 4 + length) return;
      cleanup();
      stream.pause();
      let value: unknown;
      try {
        value = JSON.parse(buffered.subarray(4, 4 + length).toString('utf8'));
      } catch {
        return reject(new ProtocolError('response head is not JSON'));
      }
      const head = parseHead(value);
      if (typeof head === 'string') return reject(new ProtocolError(`malformed response head: ${head}`));
      resolve({ head, rest: buffered.subarray(4 + length) });
    };
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('error', onEnd);
    stream.once('close', onEnd);
  });
}

// RFC 9110 §5.1 field names; §5.5 field values (what node:http accepts: no CR, LF, NUL).
const fieldName = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const badFieldValue = /[^\t\x20-\x7e\x80-\xff]/;

/**
 * The head as the gateway may use it, or why not. The agent is not trusted: a head that
 * is not exactly `{status, headers}` or `{error: {code, detail}}` with valid values
 * would otherwise reach the gateway's writers (a throw there, or a 1xx or a header with
 * CR/LF sent to the caller).
 */
export function parseHead(value: unknown): ResponseHead | string {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'not an object';
  const { status, headers, error } = value as Record<string, unknown>;
  if (error !== undefined) {
    if (error === null || typeof error !== 'object' || Array.isArray(error)) return 'error is not an object';
    const { code, detail } = error as Record<string, unknown>;
    if (typeof code !== 'string' || typeof detail !== 'string') return 'error needs a string code and detail';
    return { error: { code: code.slice(0, 64), detail: detail.slice(0, 1024) } };
  }
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 200 || status > 599) return 'status must be an integer from 200 to 599';
  if (headers === null || typeof headers !== 'object' || Array.isArray(headers)) return 'headers is not an object';
  const out: Record<string, string | string[]> = {};
  for (const [name, field] of Object.entries(headers)) {
    if (!fieldName.test(name)) return `header name ${JSON.stringify(name.slice(0, 64))} is not a token`;
    const values = Array.isArray(field) ? field : [field];
    if (!values.every((v): v is string => typeof v === 'string' && !badFieldValue.test(v))) return `header ${name} has a value that is not a valid field value`;
    out[name.toLowerCase()] = Array.isArray(field) ? (values as string[]) : (field as string);
  }
  return { status, headers: out };
}

/**
 * Reads the head off an exchange stream and returns the rest as its own Readable
 * (backpressure kept through pipe). Rejects if the stream ends or breaks first.
 */
export async function splitHead(stream: Readable): Promise<{ head: ResponseHead; body: PassThrough }> {
  const { head, rest } = await readHead(stream);
  const body = new PassThrough();
  if (rest.length > 0) body.write(rest);
  return { head, body };
}
