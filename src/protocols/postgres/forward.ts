// The upstream side: the gateway's own connection to the database, with the
// connection's credential (the caller never sees it). Enforces:
// - TLS toward the database per `tls.mode`: `require` encrypts, `verify-full` also
//   checks the certificate chain (against `tls.ca`) and the host name;
// - bytes arriving after the server's 'S' and before the TLS handshake are refused
//   (CVE-2021-23222: they would be unauthenticated plaintext spliced into the stream);
// - authentication by AuthenticationSASL (SCRAM-SHA-256), AuthenticationMD5Password or
//   AuthenticationCleartextPassword; anything else is refused;
// - the whole login is bounded by the connect timeout.

import { connect as netConnect } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { GatehouseError } from '../../errors/index.js';
import { BodyReader, cancelRequest, passwordMessage, saslInitialResponse, saslResponse, sslRequest, startupMessage, terminateMessage, parseNoticeFields, type Frame } from './codec.js';
import { FrameSource } from './frame-source.js';
import { createScramClient, md5Password } from './scram.js';

export type UpstreamTlsMode = 'disable' | 'require' | 'verify-full';

export interface UpstreamTarget {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly password: string;
  readonly tls: { readonly mode: UpstreamTlsMode; readonly ca?: string | undefined };
  readonly connectTimeoutMs: number;
  readonly maxMessageBytes: number;
  /**
   * Opens the byte stream to the database instead of TCP (and TLS) from here: a
   * connection routed `via: agent:<name>` gets a stream through that agent, which does
   * TCP and TLS on its side. `near`: the stream of the session a CancelRequest is for,
   * so the cancel takes the same route.
   */
  readonly dial?: ((near?: Duplex) => Promise<Duplex>) | undefined;
}

export interface UpstreamSession {
  readonly socket: Duplex;
  readonly source: FrameSource;
  /** ParameterStatus messages from the login, as raw frames to relay. */
  readonly parameterStatus: readonly Buffer[];
  readonly processId: number;
  readonly secretKey: number;
  /** Transaction status from the first ReadyForQuery. */
  readonly status: string;
  close(): void;
}

export async function connectUpstream(target: UpstreamTarget, params: Readonly<Record<string, string>>): Promise<UpstreamSession> {
  let socket: Duplex | undefined;
  const timer = setTimeout(() => socket?.destroy(new Error(`login to ${target.host}:${target.port} timed out`)), target.connectTimeoutMs);
  try {
    socket = await openSocket(target);
    const source = new FrameSource(socket, target.maxMessageBytes);
    socket.write(startupMessage({ ...params, user: target.user, database: target.database }));
    const parameterStatus: Buffer[] = [];
    let processId = 0;
    let secretKey = 0;
    let scram: ReturnType<typeof createScramClient> | undefined;
    for (;;) {
      const frame = await source.read();
      switch (frame.type) {
        case 'R':
          scram = authenticate(frame, socket, target, scram);
          break;
        case 'S': // ParameterStatus
          parameterStatus.push(frame.raw);
          break;
        case 'K': {
          // BackendKeyData: kept here, replaced by the gateway's own key toward the client.
          const r = new BodyReader(frame.body);
          processId = r.int32();
          secretKey = r.int32();
          break;
        }
        case 'N': // NoticeResponse during login: dropped
          break;
        case 'E': {
          const fields = parseNoticeFields(frame.body);
          throw new GatehouseError('upstream_unreachable', { detail: `login refused by ${target.host}:${target.port}: ${fields.get('C') ?? ''} ${fields.get('M') ?? ''}`.trim() });
        }
        case 'Z': {
          const s = socket;
          return {
            socket: s,
            source,
            parameterStatus,
            processId,
            secretKey,
            status: frame.body.toString('latin1', 0, 1),
            close() {
              if (!s.destroyed) s.end(terminateMessage());
              setTimeout(() => s.destroy(), 1000).unref();
            },
          };
        }
        default:
          throw new GatehouseError('upstream_failed', { detail: `unexpected message '${frame.type}' during login` });
      }
    }
  } catch (error) {
    socket?.destroy();
    if (error instanceof GatehouseError) throw error;
    throw new GatehouseError('upstream_unreachable', { detail: `${target.host}:${target.port}: ${(error as Error).message}`, cause: error });
  } finally {
    clearTimeout(timer);
  }
}

function authenticate(frame: Frame, socket: Duplex, target: UpstreamTarget, scram: ReturnType<typeof createScramClient> | undefined) {
  const r = new BodyReader(frame.body);
  const code = r.int32();
  switch (code) {
    case 0: // AuthenticationOk
      return scram;
    case 3: // AuthenticationCleartextPassword
      if (target.tls.mode === 'disable' && !isLoopback(target.host)) throw new GatehouseError('upstream_unreachable', { detail: 'the database asks for a cleartext password over an unencrypted connection; set tls.mode' });
      socket.write(passwordMessage(target.password));
      return scram;
    case 5: // AuthenticationMD5Password: Byte4 salt
      socket.write(passwordMessage(md5Password(target.user, target.password, r.bytes(4))));
      return scram;
    case 10: {
      // AuthenticationSASL: list of mechanisms.
      const mechanisms: string[] = [];
      for (let m = r.cstring(); m !== ''; m = r.cstring()) mechanisms.push(m);
      if (!mechanisms.includes('SCRAM-SHA-256')) throw new GatehouseError('upstream_unreachable', { detail: `no supported SASL mechanism in ${mechanisms.join(', ')}` });
      const client = createScramClient(target.password);
      socket.write(saslInitialResponse('SCRAM-SHA-256', Buffer.from(client.clientFirst)));
      return client;
    }
    case 11: // AuthenticationSASLContinue: server-first-message
      if (!scram) throw new GatehouseError('upstream_failed', { detail: 'SASLContinue before SASL' });
      socket.write(saslResponse(Buffer.from(scram.clientFinal(frame.body.subarray(4).toString('utf8')))));
      return scram;
    case 12: // AuthenticationSASLFinal: server-final-message
      if (!scram) throw new GatehouseError('upstream_failed', { detail: 'SASLFinal before SASL' });
      scram.verifyServerFinal(frame.body.subarray(4).toString('utf8'));
      return scram;
    default:
      throw new GatehouseError('upstream_unreachable', { detail: `unsupported authentication request ${code} from the database` });
  }
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

function openSocket(target: UpstreamTarget, near?: Duplex): Promise<Duplex> {
  if (target.dial) return target.dial(near);
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: target.host, port: target.port, noDelay: true });
    socket.setNoDelay(true);
    socket.once('error', reject);
    socket.once('connect', () => {
      if (target.tls.mode === 'disable') {
        socket.off('error', reject);
        resolve(socket);
        return;
      }
      socket.write(sslRequest());
      socket.once('data', (chunk: Buffer) => {
        if (chunk[0] !== 0x53 /* 'S' */) {
          socket.destroy();
          reject(new Error(`the database refused TLS (answered '${String.fromCharCode(chunk[0] ?? 0)}') and tls.mode is ${target.tls.mode}`));
          return;
        }
        if (chunk.length > 1) {
          socket.destroy();
          reject(new Error('the database sent unencrypted bytes after agreeing to TLS (CVE-2021-23222)'));
          return;
        }
        const verify = target.tls.mode === 'verify-full';
        const tls = tlsConnect({ socket, host: target.host, servername: isIpLike(target.host) ? undefined : target.host, ca: target.tls.ca, rejectUnauthorized: verify, ...(verify ? {} : { checkServerIdentity: () => undefined }) });
        tls.once('secureConnect', () => {
          socket.off('error', reject);
          tls.off('error', reject);
          resolve(tls);
        });
        tls.once('error', reject);
      });
    });
  });
}

function isIpLike(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}

/** Sends a CancelRequest for an upstream backend on a new connection (PostgreSQL docs, "Canceling Requests in Progress"). */
export async function cancelUpstream(target: UpstreamTarget, processId: number, secretKey: number, near?: Duplex): Promise<void> {
  const socket = await openSocket(target, near);
  await new Promise<void>((resolve) => {
    socket.on('error', () => resolve());
    socket.on('close', () => resolve());
    socket.end(cancelRequest(processId, secretKey));
    setTimeout(() => {
      socket.destroy();
      resolve();
    }, 5000).unref();
  });
}
