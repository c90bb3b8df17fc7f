// A request the HTTP parser refuses before any handler sees it: headers over Node's
// limit (16 KiB for the request line and all headers), a malformed request line or
// header, a chunked body that does not parse. Left to Node, the client gets a bare
// `431` or `400` with no body, the operator nothing at all. Here it gets the listener's
// error envelope with a stable code, the connection is closed (the parser's state is
// lost), and the refusal is counted in `gatehouse_unrouted_requests_total`: such a
// request never reached a connection, so it has no record.
// A request timeout keeps Node's own answer (408); a socket already answering is closed.

import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { GatehouseError, type ErrorCode } from '../errors/index.js';
import { errorEnvelope } from '../protocols/http/index.js';
import { answerAndClose } from './raw-answer.js';

export interface ClientErrorOptions {
  /** The listener's error body (default: the data plane's OpenAI envelope). */
  readonly envelope?: ((error: GatehouseError) => string) | undefined;
  readonly onRefused?: ((code: ErrorCode) => void) | undefined;
}

const statusLines: Readonly<Record<number, string>> = { 400: '400 Bad Request', 431: '431 Request Header Fields Too Large' };

export function answerClientErrors(server: Server, options: ClientErrorOptions = {}): void {
  const envelope = options.envelope ?? errorEnvelope;
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    const inFlight = (socket as Socket & { _httpMessage?: { _headerSent?: boolean } })._httpMessage;
    // An answer whose head is already sent on this socket (or a socket already gone):
    // nothing can be said. The same test as Node's own handler (socketOnError).
    if (!socket.writable || inFlight?._headerSent) {
      socket.destroy();
      return;
    }
    // Node's own answer to a request that took too long (server.requestTimeout).
    if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      socket.write('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n');
      socket.destroy();
      return;
    }
    const refusal = new GatehouseError(error.code === 'HPE_HEADER_OVERFLOW' ? 'request_headers_too_large' : 'malformed_request');
    options.onRefused?.(refusal.code);
    const statusLine = statusLines[refusal.status]!;
    if (inFlight) {
      // A handler is running (a body that stopped parsing): as Node does, answer and
      // destroy, so nothing it writes later follows on this connection.
      const body = envelope(refusal);
      socket.write(`HTTP/1.1 ${statusLine}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
      socket.destroy();
      return;
    }
    // The rest of an oversized head may still be arriving: read and drop it, so the
    // close does not reset the connection before the client reads the answer.
    answerAndClose(socket, statusLine, envelope(refusal));
  });
}
