// The startup phase of a client session (PostgreSQL docs, "Start-up"). Enforces:
// - SSLRequest is answered 'S' and the socket upgraded with the gateway's certificate
//   when one is configured, else 'N'; GSSENCRequest is always answered 'N';
// - bytes sent after SSLRequest and before the TLS handshake are refused
//   (CVE-2021-23214: they would be spliced into the encrypted session);
// - a TLS handshake in place of the first packet (PostgreSQL 17's direct negotiation,
//   libpq `sslnegotiation=direct`) is taken where a certificate is configured, and only
//   with ALPN `postgresql`, as PostgreSQL takes it (so that a client of another protocol
//   cannot be made to talk to the gateway); without a certificate the socket is closed
//   with nothing written (a plaintext error would reach the client as a bad TLS record);
// - CancelRequest is handed to the cancel handler and the socket closed;
// - only protocol version 3.0 is accepted; replication connections are refused;
// - at most 8 negotiation packets, each at most 10 000 bytes.

import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import type { Duplex } from 'node:stream';
import { BodyReader, MessageTooLarge, cancelRequestCode, gssEncRequestCode, parseStartupParams, protocolVersion3, ProtocolViolation, sslRequestCode } from './codec.js';
import { FrameSource } from './frame-source.js';

// The login's settings (which are passed on, which refused) live in startup-settings.ts.
export { passedStartupParams, refusedStartupSetting, settingsInOptions } from './startup-settings.js';

const maxStartupBytes = 10_000;

export type StartupResult =
  | { readonly kind: 'startup'; readonly socket: Duplex; readonly tls: boolean; readonly params: ReadonlyMap<string, string> }
  | { readonly kind: 'cancel'; readonly processId: number; readonly secretKey: number }
  | { readonly kind: 'closed' };

/** A TLS record of type handshake (22) opens a direct negotiation; read as a startup packet, its length is far past the limit. */
const tlsHandshakeRecord = 0x16;

/** The TLS server side over `raw`, fed `received` first (bytes already read off the socket); resolves once the handshake is done. */
async function acceptTls(raw: Socket, serverTls: SecureContext, received: Buffer, alpn: boolean): Promise<TLSSocket> {
  // A TLSSocket over a net.Socket first takes what the socket has buffered.
  if (received.length > 0) raw.unshift(received);
  const secure = new TLSSocket(raw, { isServer: true, secureContext: serverTls, ...(alpn ? { ALPNProtocols: ['postgresql'] } : {}) });
  await new Promise<void>((resolve, reject) => {
    secure.once('secure', resolve);
    secure.once('error', reject);
    raw.once('close', () => reject(new Error('closed during TLS handshake')));
  });
  return secure;
}

/** `onSecure` is told of the TLS socket once negotiated, so that a refusal after it is written over TLS. */
export async function negotiateStartup(raw: Socket, serverTls: SecureContext | undefined, onSecure: (socket: Duplex) => void = () => undefined): Promise<StartupResult> {
  let socket: Duplex = raw;
  let source = new FrameSource(raw, maxStartupBytes);
  let tls = false;
  try {
    for (let round = 0; round < 8; round++) {
      let frame;
      try {
        frame = await source.read(true);
      } catch (error) {
        if (!(round === 0 && error instanceof MessageTooLarge)) throw error;
        const received = source.detach();
        if (received[0] !== tlsHandshakeRecord) throw error;
        if (!serverTls) {
          raw.destroy();
          return { kind: 'closed' };
        }
        const secure = await acceptTls(raw, serverTls, received, true);
        socket = secure;
        onSecure(secure);
        // ALPN (RFC 7301): a client that named no protocol gets none; PostgreSQL 17 refuses it.
        if (secure.alpnProtocol !== 'postgresql') throw new ProtocolViolation('received a direct TLS connection without the ALPN protocol "postgresql"');
        source = new FrameSource(secure, maxStartupBytes);
        tls = true;
        continue;
      }
      const r = new BodyReader(frame.body);
      const code = r.int32();
      if (code === sslRequestCode) {
        if (tls || !serverTls) {
          socket.write('N');
          continue;
        }
        if (source.buffered > 0) throw new ProtocolViolation('received unencrypted data after SSL request');
        source.detach();
        raw.write('S');
        socket = await acceptTls(raw, serverTls, Buffer.alloc(0), false);
        onSecure(socket);
        source = new FrameSource(socket, maxStartupBytes);
        tls = true;
        continue;
      }
      if (code === gssEncRequestCode) {
        // GSSENCRequest: GSSAPI encryption is not offered.
        socket.write('N');
        continue;
      }
      if (code === cancelRequestCode) {
        // CancelRequest: Int32 process id, Int32 secret key.
        return { kind: 'cancel', processId: r.int32(), secretKey: r.int32() };
      }
      if (code !== protocolVersion3) throw new ProtocolViolation(`unsupported frontend protocol ${code >>> 16}.${code & 0xffff}: the gateway speaks 3.0`);
      const params = parseStartupParams(r);
      if (!params.has('user')) throw new ProtocolViolation('no PostgreSQL user name specified in startup packet');
      if (params.has('replication') && params.get('replication') !== 'false' && params.get('replication') !== '0') throw new ProtocolViolation('replication connections are not supported through the gateway');
      // The client must wait for our authentication request: anything already sent is out of order.
      if (source.detach().length > 0) throw new ProtocolViolation('received data after the startup packet before authentication');
      return { kind: 'startup', socket, tls, params };
    }
    throw new ProtocolViolation('too many negotiation packets');
  } catch (error) {
    source.detach();
    throw error;
  }
}
