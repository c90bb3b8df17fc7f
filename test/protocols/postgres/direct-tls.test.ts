// PostgreSQL 17's direct TLS negotiation (libpq `sslnegotiation=direct`, porsager
// `postgres` with `sslnegotiation: 'direct'`): the client opens with a TLS handshake, ALPN
// `postgresql`, instead of an SSLRequest. The gateway read the ClientHello as a startup
// packet and answered a plaintext FATAL, which the client's TLS layer reported as "wrong
// version number". Now the handshake is taken (ALPN required, as PostgreSQL requires it),
// and a listener without a certificate closes the socket without writing plaintext.

import assert from 'node:assert/strict';
import { connect as tlsConnect, createSecureContext, type TLSSocket } from 'node:tls';
import { after, describe, test } from 'node:test';
import { cstring, message, startupMessage } from '../../../src/protocols/postgres/build-messages.js';
import { FrameReader, parseNoticeFields, type Frame } from '../../../src/protocols/postgres/codec.js';
import { startTestProxy, type TestProxy } from '../../helpers/postgres-proxy.js';
import { makeTestPki } from '../../helpers/tls.js';

const pki = makeTestPki();
const proxyOrSkip = await startTestProxy({ serverTls: createSecureContext({ cert: pki.cert, key: pki.key }), allowPlaintext: false });
const skip = 'skip' in proxyOrSkip ? proxyOrSkip.skip : undefined;

/** Reads frames off `socket` until one of `type` (or it closes, or 5 s pass). */
function until(socket: TLSSocket, type: string): Promise<Frame[]> {
  const reader = new FrameReader(1 << 20);
  const frames: Frame[] = [];
  return new Promise((resolve) => {
    const done = () => resolve(frames);
    const timer = setTimeout(done, 5000);
    socket.on('data', (d: Buffer) => {
      reader.push(d);
      for (let f = reader.next(false); f; f = reader.next(false)) {
        frames.push(f);
        if (f.type === type) {
          clearTimeout(timer);
          socket.removeAllListeners('data');
          done();
        }
      }
    });
    socket.once('close', () => {
      clearTimeout(timer);
      done();
    });
  });
}

function directTls(port: number, alpn: string[] | undefined): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca: pki.ca, servername: 'localhost', ...(alpn ? { ALPNProtocols: alpn } : {}) }, () => resolve(socket));
    socket.once('error', reject);
  });
}

describe('PostgreSQL proxy: direct TLS negotiation (PostgreSQL 17)', { skip }, () => {
  const proxy = proxyOrSkip as TestProxy;
  after(() => proxy.close());

  test('a client that opens with a TLS handshake and ALPN postgresql logs in and runs a statement', async () => {
    const socket = await directTls(proxy.port, ['postgresql']);
    try {
      assert.equal(socket.alpnProtocol, 'postgresql');
      socket.write(startupMessage({ user: 'agent', database: proxy.database }));
      const auth = await until(socket, 'R');
      assert.equal(auth.at(-1)?.body.readInt32BE(0), 3, 'asked for the password (AuthenticationCleartextPassword)');
      socket.write(message('p', cstring(proxy.token)));
      assert.equal((await until(socket, 'Z')).some((f) => f.type === 'E'), false);
      socket.write(message('Q', cstring("select 'over direct tls' as said")));
      const answer = await until(socket, 'Z');
      assert.equal(answer.find((f) => f.type === 'D')?.body.subarray(6).toString(), 'over direct tls');
    } finally {
      socket.destroy();
    }
  });

  test('without ALPN postgresql the session is refused over TLS, naming why', async () => {
    const socket = await directTls(proxy.port, undefined);
    try {
      const frames = await until(socket, 'E');
      const error = parseNoticeFields(frames.at(-1)!.body);
      assert.equal(error.get('S'), 'FATAL');
      assert.equal(error.get('C'), '08P01');
      assert.match(error.get('M')!, /direct TLS connection without the ALPN protocol "postgresql"/);
    } finally {
      socket.destroy();
    }
  });
});

describe('PostgreSQL proxy: direct TLS on a listener without a certificate', async () => {
  const plain = await startTestProxy();
  if ('skip' in plain) return;
  after(() => plain.close());

  test('the socket is closed with nothing written (a plaintext error would read as a bad TLS record)', async () => {
    const error = await new Promise<string>((resolve) => {
      const socket = tlsConnect({ host: '127.0.0.1', port: plain.port, servername: 'localhost', ALPNProtocols: ['postgresql'] }, () => resolve('handshake completed'));
      socket.on('error', (e) => resolve(e.message));
    });
    assert.doesNotMatch(error, /wrong version number/);
    assert.match(error, /socket disconnected before secure TLS connection was established/);
  });
});
