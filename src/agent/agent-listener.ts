// The agent endpoint's socket: TLS in front, HTTP/2 behind. Agents always negotiate
// h2 by ALPN (RFC 9113 §3.2); anything else that reaches the port gets an answer
// saying what it reached instead of a bare TLS alert or an empty reply:
// - plain HTTP (`curl http://`): 400 https_required naming the https:// URL;
// - HTTP/1.1 over TLS (or TLS without ALPN): 400 agent_endpoint_only;
// - HTTP/2 on a path that is not an agent route: 404 (agent-hub.ts).
// So the TLS layer offers http/1.1 too, only to be able to answer it, and hands h2
// connections to an HTTP/2 server of its own.

import { createServer as createH2Server, type Http2Server } from 'node:http2';
import type { Socket } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import { GatehouseError } from '../errors/index.js';
import { answerPlainHttp } from '../server/plain-http-on-tls.js';
import { answerAndClose } from '../server/raw-answer.js';

/** How long a connection may take to send its first bytes (plain HTTP check, HTTP/1.1 request). */
const firstBytesTimeoutMs = 10_000;
/** How long a TLS handshake may take (node's default is 120 s): an agent's takes milliseconds. */
const handshakeTimeoutMs = 10_000;

export interface AgentListener {
  /** The listening socket (TLS). */
  readonly tls: TlsServer;
  /** Serves the h2 connections the TLS layer hands it (it does not listen itself). */
  readonly h2: Http2Server;
}

export function createAgentListener(tls: { readonly cert: string; readonly key: string }): AgentListener {
  const h2 = createH2Server();
  const server = createTlsServer({ cert: tls.cert, key: tls.key, ALPNProtocols: ['h2', 'http/1.1'], handshakeTimeout: handshakeTimeoutMs }, (socket: TLSSocket) => {
    if (socket.alpnProtocol === 'h2') return void h2.emit('connection', socket);
    answerHttp1(socket);
  });
  // A bare TLS server only reports a failed or timed-out handshake; left open, a client
  // that stalls its handshake (slowloris) holds the socket for as long as it likes.
  server.on('tlsClientError', (_error, socket) => socket.destroy());
  answerPlainHttp(server, { firstByteTimeoutMs: firstBytesTimeoutMs, envelope, listenerName: 'the Gatehouse agent endpoint' });
  return { tls: server, h2 };
}

/** The agent endpoint's error body, as its HTTP/2 routes answer (agent-reply.ts). */
function envelope(error: GatehouseError): string {
  return JSON.stringify({ error: { code: error.code, message: error.message } });
}

/** HTTP/1.1 over TLS: answered once its request starts arriving, then closed. */
function answerHttp1(socket: Socket): void {
  socket.on('error', () => undefined);
  const timer = setTimeout(() => socket.destroy(), firstBytesTimeoutMs);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  socket.once('data', () => {
    clearTimeout(timer);
    answerAndClose(socket, '400 Bad Request', envelope(new GatehouseError('agent_endpoint_only')));
  });
}
