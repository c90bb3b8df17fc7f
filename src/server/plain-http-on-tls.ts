// A plain-HTTP request sent to a TLS listener (`curl http://` to an https:// gateway):
// left to the TLS layer, the handshake fails on "GET / HTTP/1.1" and the socket is
// closed without a byte, which curl reports as "Empty reply from server". The first
// byte tells them apart: a TLS connection starts with a handshake record (0x16).
// Anything else gets a 400 `https_required` in the listener's error envelope naming the
// https:// URL to use, and is closed.
// Cost: one wait for the first chunk per connection, before the TLS layer sees it;
// nothing per request. Bounded: a connection that sends nothing for `firstByteTimeoutMs`
// is closed, and only the first chunk (at most one socket read) is looked at.

import type { AddressInfo, Server, Socket } from 'node:net';
import { GatehouseError } from '../errors/index.js';
import { errorEnvelope } from '../protocols/http/index.js';
import { answerAndClose } from './raw-answer.js';

const tlsHandshakeRecord = 0x16;

export interface PlainHttpOptions {
  /** A connection that sends nothing for this long is closed (the listener's header timeout). */
  readonly firstByteTimeoutMs: number;
  /** The listener's error body (default: the data plane's OpenAI envelope). */
  readonly envelope?: ((error: GatehouseError) => string) | undefined;
  /** What the listener is, for the message ("This listener (<name>) speaks HTTPS"), when its port alone does not say. */
  readonly listenerName?: string | undefined;
}

/** Installs the first-byte check in front of a TLS server's own connection listener (an HTTPS or a bare TLS server). */
export function answerPlainHttp(server: Server, options: PlainHttpOptions): void {
  const accept = server.listeners('connection') as ((socket: Socket) => void)[];
  server.removeAllListeners('connection');
  const envelope = options.envelope ?? errorEnvelope;
  server.on('connection', (socket: Socket) => {
    const early = () => socket.destroy();
    socket.on('error', early);
    const timer = setTimeout(() => socket.destroy(), options.firstByteTimeoutMs);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
    socket.once('data', (chunk: Buffer) => {
      clearTimeout(timer);
      socket.pause();
      socket.off('error', early);
      if (chunk[0] === tlsHandshakeRecord) {
        // The TLS socket reads what is buffered first (node's TLSSocket initRead).
        socket.unshift(chunk);
        for (const listener of accept) listener.call(server, socket);
        return;
      }
      const url = httpsUrl(chunk, socket);
      const listener = options.listenerName === undefined ? 'This listener' : `This listener (${options.listenerName})`;
      const error = new GatehouseError('https_required', { message: `${listener} speaks HTTPS; a plain HTTP request was sent to it. Use ${url}` });
      answerAndClose(socket, '400 Bad Request', envelope(error));
    });
  });
}

/** The https:// URL of the request in `chunk` (its Host and path when they read clean), else of the listener. */
function httpsUrl(chunk: Buffer, socket: Socket): string {
  const head = chunk.toString('latin1', 0, Math.min(chunk.length, 8192));
  const target = /^[A-Z]{1,16} (\/[\x21-\x7e]{0,2000}) HTTP\/1\.[01]\r?\n/.exec(head)?.[1];
  const host = /\r?\nhost:[ \t]*([A-Za-z0-9.\-]{1,253}(?::\d{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](?::\d{1,5})?)[ \t]*\r?\n/i.exec(head)?.[1];
  if (host) return `https://${host}${target ?? '/'}`;
  const { address, port } = socket.address() as AddressInfo;
  return `https://${address.includes(':') ? `[${address}]` : address}:${port}${target ?? '/'}`;
}
