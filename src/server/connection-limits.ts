// Bounds the TCP connections an HTTP listener (data plane, admin) holds open.
// Enforces:
// - at most `maxConnections` open connections per listener;
// - at most `maxConnectionsPerClient` from one client address (IPv4, or the whole IPv6
//   address), so one client cannot hold the listener's share of idle or slow sockets;
// - a connection over either bound is refused at once, before a byte is parsed: on a
//   plain listener with an HTTP 503 (`connection_limit`, the listener's error envelope,
//   `Retry-After`, `Connection: close`); on a TLS listener, closed (no handshake is
//   spent on it, so there is no channel to answer on);
// - each refusal is counted (`gatehouse_http_connections_refused_total`).
//
// The check runs in front of the server's own connection listeners (http, or tls then
// http), which are moved behind it: `connection` is the only place a socket can be
// turned away before the server parses it, and net.Server's own maxConnections drops
// the socket without an answer and knows no client.

import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { GatehouseError } from '../errors/index.js';
import { errorEnvelope } from '../protocols/http/index.js';
import { answerAndClose } from './raw-answer.js';

export interface ConnectionLimits {
  readonly maxConnections: number;
  readonly maxConnectionsPerClient: number;
}

export type RefusalReason = 'listener' | 'client';

export interface ConnectionCounts {
  /** Connections open now. */
  open(): number;
}

export interface LimitOptions {
  readonly tls: boolean;
  readonly onRefused: (reason: RefusalReason) => void;
  /** The listener's error body: the OpenAI envelope (data plane, the default) or the admin API's `{error:{code,message}}`. */
  readonly envelope?: (error: GatehouseError) => string;
}

export function limitConnections(server: Server, limits: ConnectionLimits, options: LimitOptions): ConnectionCounts {
  let open = 0;
  const perClient = new Map<string, number>();
  const accept = server.listeners('connection') as ((socket: Socket) => void)[];
  server.removeAllListeners('connection');
  server.on('connection', (socket: Socket) => {
    const client = socket.remoteAddress ?? '';
    const fromClient = perClient.get(client) ?? 0;
    const reason: RefusalReason | undefined = open >= limits.maxConnections ? 'listener' : fromClient >= limits.maxConnectionsPerClient ? 'client' : undefined;
    if (reason !== undefined) {
      options.onRefused(reason);
      refuse(socket, reason, options.tls, options.envelope ?? errorEnvelope);
      return;
    }
    open++;
    perClient.set(client, fromClient + 1);
    socket.once('close', () => {
      open--;
      const left = perClient.get(client)! - 1;
      if (left === 0) perClient.delete(client);
      else perClient.set(client, left);
    });
    for (const listener of accept) listener.call(server, socket);
  });
  return { open: () => open };
}

function refuse(socket: Socket, reason: RefusalReason, tls: boolean, envelope: (error: GatehouseError) => string): void {
  socket.on('error', () => undefined);
  if (tls) {
    socket.destroy();
    return;
  }
  const error = new GatehouseError('connection_limit', {
    message:
      reason === 'client'
        ? 'Too many open connections from this client address; close idle connections or reuse them, and try again.'
        : 'Too many open connections to this listener; try again shortly.',
  });
  // RFC 9110 §15.6.4 (503) with Retry-After §10.2.3.
  answerAndClose(socket, '503 Service Unavailable', envelope(error), { 'retry-after': '1' });
}
