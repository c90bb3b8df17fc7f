// An HTTP answer written straight on a socket the HTTP server has not parsed (a
// connection refused by the limits, a plain request on a TLS listener), then the
// connection closed. Bounded: the socket is destroyed after a short linger.

import type { Socket } from 'node:net';

/** How long an answered socket may linger (the answer flushing, the client closing) before it is destroyed. */
const lingerMs = 2000;

export function answerAndClose(socket: Socket, statusLine: string, body: string, headers: Readonly<Record<string, string>> = {}): void {
  socket.on('error', () => undefined);
  const extra = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
  const head = `HTTP/1.1 ${statusLine}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}connection: close\r\n\r\n`;
  const timer = setTimeout(() => socket.destroy(), lingerMs);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  // Whatever the client sends is read and dropped, so closing does not reset the
  // connection (unread data) before the answer is read.
  socket.on('data', () => undefined);
  socket.on('end', () => socket.destroy());
  socket.resume();
  socket.end(head + body);
}
