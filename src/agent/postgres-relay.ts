// The agent's side of a `type: postgres` connection: each session the gateway opens is
// a raw byte stream (exchange kind `tcp`). The gateway has already authenticated the
// caller and decides, masks and records every statement; the agent logs in to the
// database and then relays bytes both ways. Enforces:
// - the gateway's first packet is a StartupMessage or a CancelRequest, at most
//   10 000 bytes, with nothing after it before the login completes;
// - the login is forward.ts's connectUpstream, the gateway's own: TCP, TLS per
//   `tls.mode` (verify-full by default), SCRAM-SHA-256 / md5 / cleartext;
// - the role is the agent's `credential`, else the one the gateway sent with the
//   exchange; with neither the session is refused (FATAL 28000);
// - user and database are the agent's; of the gateway's startup parameters only the
//   listener's allow-list reaches the database;
// - the gateway then sees a session that needs no authentication (AuthenticationOk,
//   ParameterStatus, the database's BackendKeyData, ReadyForQuery): it never needs
//   the password, and the caller's credential never reaches the agent;
// - a CancelRequest is sent on only for a backend this agent opened and still holds.

import { constants as h2, type ClientHttp2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';
import { GatehouseError } from '../errors/index.js';
import type { Logger } from '../observability/index.js';
import {
  authentication,
  backendKeyData,
  BodyReader,
  cancelRequestCode,
  errorResponse,
  parseStartupParams,
  protocolVersion3,
  ProtocolViolation,
  readyForQuery,
  type Frame,
} from '../protocols/postgres/codec.js';
import { sqlstateOf } from '../protocols/postgres/errors.js';
import { FrameSource } from '../protocols/postgres/frame-source.js';
import { cancelUpstream, connectUpstream, type UpstreamTarget } from '../protocols/postgres/forward.js';
import { passedStartupParams } from '../protocols/postgres/startup.js';
import { resetStream } from './h2-teardown.js';
import type { StreamExchangeFrame } from './protocol.js';

export interface PostgresRelayConfig {
  readonly name: string;
  readonly target: string;
  readonly credential?: { readonly user: string; readonly secret: string } | undefined;
  readonly tls: { readonly mode: UpstreamTarget['tls']['mode']; readonly ca?: string | undefined };
  readonly timeouts: { readonly connect: number };
}

export interface PostgresRelay {
  /** Serves one stream (the agent already sent the accepting head); resolves when it is over. */
  serve(stream: ClientHttp2Stream, frame: StreamExchangeFrame, signal: AbortSignal): Promise<void>;
}

const maxStartupBytes = 10_000;

export function createPostgresRelay(config: PostgresRelayConfig, agentName: string, logger: Logger): PostgresRelay {
  const url = new URL(config.target);
  const base = {
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port === '' ? 5432 : Number(url.port),
    database: decodeURIComponent(url.pathname.slice(1)),
    tls: { mode: config.tls.mode, ca: config.tls.ca },
    connectTimeoutMs: config.timeouts.connect,
    // Only the login's messages are read here; the session's bytes are relayed unread.
    maxMessageBytes: 1024 * 1024,
  };
  const backends = new Set<string>();

  /** A FATAL ErrorResponse toward the gateway, then a clean end (the gateway reports it as a refused login). */
  const refuse = (stream: ClientHttp2Stream, error: GatehouseError) => {
    if (stream.destroyed || stream.writableEnded) return;
    stream.end(errorResponse({ severity: 'FATAL', code: sqlstateOf(error), message: `agent ${agentName}: ${error.detail ?? error.message}` }));
  };

  return {
    async serve(stream, frame, signal) {
      const source = new FrameSource(stream, maxStartupBytes);
      let first: Frame;
      try {
        first = await source.read(true);
      } catch (error) {
        source.detach();
        if (error instanceof ProtocolViolation) return refuse(stream, new GatehouseError('protocol_violation', { detail: error.message }));
        throw error;
      }
      const r = new BodyReader(first.body);
      const code = r.int32();
      if (code === cancelRequestCode) {
        source.detach();
        const processId = r.int32();
        const secretKey = r.int32();
        if (backends.has(`${processId}:${secretKey}`)) {
          await cancelUpstream({ ...base, user: '', password: '' }, processId, secretKey).catch((error: unknown) => logger.warn({ connection: config.name, err: String(error) }, 'cancel request failed'));
        } else {
          logger.warn({ connection: config.name }, 'cancel request for a backend this agent does not hold: ignored');
        }
        if (!stream.destroyed) stream.end();
        return;
      }
      if (code !== protocolVersion3) return refuse(stream, new GatehouseError('protocol_violation', { detail: `expected a StartupMessage or CancelRequest, got code ${code}` }));
      const params = parseStartupParams(r);
      if (source.detach().length > 0) return refuse(stream, new GatehouseError('protocol_violation', { detail: 'bytes after the StartupMessage before the login completed' }));
      const credential = config.credential ?? frame.credential;
      if (!credential) {
        return refuse(stream, new GatehouseError('upstream_unreachable', { detail: `holds no credential for connection ${config.name} and the gateway sent none` }));
      }
      // The same allow-list as the gateway's listener: the caller cannot set server options.
      const passed = passedStartupParams(params);

      let upstream;
      try {
        upstream = await connectUpstream({ ...base, user: credential.user, password: credential.secret }, passed);
      } catch (error) {
        const failure = error instanceof GatehouseError ? error : new GatehouseError('upstream_unreachable', { detail: String(error) });
        logger.warn({ connection: config.name, code: failure.code, detail: failure.detail }, 'database login failed');
        return refuse(stream, failure);
      }
      if (signal.aborted || stream.destroyed) return upstream.close();

      const key = `${upstream.processId}:${upstream.secretKey}`;
      backends.add(key);
      stream.write(Buffer.concat([authentication(0), ...upstream.parameterStatus, backendKeyData(upstream.processId, upstream.secretKey), readyForQuery(upstream.status)]));
      const early = upstream.source.detach();
      if (early.length > 0) stream.write(early);
      try {
        await relay(stream, upstream.socket);
      } finally {
        backends.delete(key);
      }
    },
  };
}

/**
 * Bytes both ways with backpressure (pipe), until both sides are closed. The gateway's
 * END_STREAM half-closes toward the database; the database closing its side ends the
 * stream cleanly (the completion trailer); the database failing resets it (a cut).
 */
function relay(stream: ClientHttp2Stream, db: Duplex): Promise<void> {
  return new Promise<void>((resolve) => {
    let dbEnded = false;
    let open = 2;
    const closed = () => {
      if (--open === 0) resolve();
    };
    db.on('error', () => undefined);
    stream.pipe(db);
    db.pipe(stream, { end: false });
    db.once('end', () => {
      dbEnded = true;
      if (!stream.destroyed && !stream.writableEnded) stream.end();
    });
    db.once('close', () => {
      if (!dbEnded) resetStream(stream, h2.NGHTTP2_INTERNAL_ERROR);
      closed();
    });
    stream.once('close', () => {
      // Ended by the gateway (Terminate, END_STREAM): let the database see it and close;
      // reset or cut: the database session goes too.
      if (db.writableEnded) setTimeout(() => db.destroy(), 5_000).unref();
      else db.destroy();
      closed();
    });
  });
}
