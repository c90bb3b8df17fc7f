// Building PostgreSQL protocol v3 messages (PostgreSQL docs, "Message Formats"): what
// the proxy sends to clients and databases, and what tests send as either side.
// Reading and framing are in codec.ts.

import { cancelRequestCode, protocolVersion3, sslRequestCode } from './codec.js';

/** A typed message: type byte, Int32 length (including itself), body. */
export function message(type: string, body: Buffer = Buffer.alloc(0)): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = type.charCodeAt(0);
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}

export function cstring(value: string): Buffer {
  return Buffer.concat([Buffer.from(value, 'utf8'), Buffer.from([0])]);
}

export function int32(value: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeInt32BE(value);
  return b;
}

export function int16(value: number): Buffer {
  const b = Buffer.allocUnsafe(2);
  b.writeInt16BE(value);
  return b;
}

/** StartupMessage: Int32 length, Int32 196608, then name/value pairs and a final zero. */
export function startupMessage(params: Readonly<Record<string, string>>): Buffer {
  const parts = [int32(protocolVersion3)];
  for (const [k, v] of Object.entries(params)) parts.push(cstring(k), cstring(v));
  parts.push(Buffer.from([0]));
  const body = Buffer.concat(parts);
  return Buffer.concat([int32(body.length + 4), body]);
}

/** SSLRequest: Int32 8, Int32 80877103. */
export function sslRequest(): Buffer {
  return Buffer.concat([int32(8), int32(sslRequestCode)]);
}

/** CancelRequest: Int32 16, Int32 80877102, process id, secret key. */
export function cancelRequest(processId: number, secretKey: number): Buffer {
  return Buffer.concat([int32(16), int32(cancelRequestCode), int32(processId), int32(secretKey)]);
}

/** AuthenticationOk / AuthenticationCleartextPassword / … ('R' with an Int32 code). */
export function authentication(code: number, extra: Buffer = Buffer.alloc(0)): Buffer {
  return message('R', Buffer.concat([int32(code), extra]));
}

/** ParameterStatus ('S'). */
export function parameterStatus(name: string, value: string): Buffer {
  return message('S', Buffer.concat([cstring(name), cstring(value)]));
}

/** BackendKeyData ('K'): process id and secret key. */
export function backendKeyData(processId: number, secretKey: number): Buffer {
  return message('K', Buffer.concat([int32(processId), int32(secretKey)]));
}

/** ReadyForQuery ('Z') with the transaction status byte: 'I', 'T' or 'E'. */
export function readyForQuery(status: string): Buffer {
  return message('Z', Buffer.from(status, 'latin1'));
}

export interface NoticeFields {
  readonly severity: 'ERROR' | 'FATAL' | 'NOTICE' | 'WARNING';
  readonly code: string;
  readonly message: string;
  readonly detail?: string | undefined;
  readonly hint?: string | undefined;
}

function fields(f: NoticeFields): Buffer {
  const parts = [Buffer.from('S'), cstring(f.severity), Buffer.from('V'), cstring(f.severity), Buffer.from('C'), cstring(f.code), Buffer.from('M'), cstring(f.message)];
  if (f.detail) parts.push(Buffer.from('D'), cstring(f.detail));
  if (f.hint) parts.push(Buffer.from('H'), cstring(f.hint));
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

/** ErrorResponse ('E'): S/V severity, C SQLSTATE, M message, D detail, H hint. */
export function errorResponse(f: NoticeFields): Buffer {
  return message('E', fields(f));
}

/** NoticeResponse ('N'), same fields as ErrorResponse. */
export function noticeResponse(f: NoticeFields): Buffer {
  return message('N', fields(f));
}

/** Bind ('B'): portal, statement, no parameter formats, no parameters, no result formats. */
export function bindMessage(portal: string, statement: string): Buffer {
  return message('B', Buffer.concat([cstring(portal), cstring(statement), int16(0), int16(0), int16(0)]));
}

/**
 * Parse, Bind, Execute (every row) and Close of the statement and portal `name` running
 * `sql` with one text parameter: a query of the gateway's own, in the session's order
 * (its caller adds the Sync and reads the answer as a probe).
 */
export function oneParameterQueryMessages(name: string, sql: string, param: Buffer): Buffer[] {
  return [
    message('P', Buffer.concat([cstring(name), cstring(sql), int16(0)])), // no parameter types
    // Bind: portal, statement, no parameter formats (text), one parameter, no result formats (text).
    message('B', Buffer.concat([cstring(name), cstring(name), int16(0), int16(1), int32(param.length), param, int16(0)])),
    message('E', Buffer.concat([cstring(name), int32(0)])),
    message('C', Buffer.concat([Buffer.from('P'), cstring(name)])),
    message('C', Buffer.concat([Buffer.from('S'), cstring(name)])),
  ];
}

/** Sync ('S'). */
export function syncMessage(): Buffer {
  return message('S');
}

/** Flush ('H'): the database sends what it has buffered, without ending the batch. */
export function flushMessage(): Buffer {
  return message('H');
}

/** Query ('Q'): one simple query. */
export function queryMessage(sql: string): Buffer {
  return message('Q', cstring(sql));
}

/** CopyFail ('f'): ends a COPY FROM STDIN with an error (SQLSTATE 57014) carrying `reason`. */
export function copyFailMessage(reason: string): Buffer {
  return message('f', cstring(reason));
}

/** Terminate ('X'). */
export function terminateMessage(): Buffer {
  return message('X');
}

/** PasswordMessage ('p'): a null-terminated password. */
export function passwordMessage(password: string): Buffer {
  return message('p', cstring(password));
}

/** SASLInitialResponse ('p'): mechanism, Int32 length of the data, data. */
export function saslInitialResponse(mechanism: string, data: Buffer): Buffer {
  return message('p', Buffer.concat([cstring(mechanism), int32(data.length), data]));
}

/** SASLResponse ('p'): the data. */
export function saslResponse(data: Buffer): Buffer {
  return message('p', data);
}

export function dataRow(values: readonly (Buffer | null)[]): Buffer {
  const parts: Buffer[] = [int16(values.length)];
  for (const v of values) {
    if (v === null) parts.push(int32(-1));
    else parts.push(int32(v.length), v);
  }
  return message('D', Buffer.concat(parts));
}
