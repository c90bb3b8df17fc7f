// An agent's control stream (POST on the connect path): the agent is admitted only
// with an API key of kind `agent` in the group `agent:<name>` for the name its hello
// announces, one live link per key. Once welcomed it is heartbeaten, its key is read
// again every heartbeat (a key revoked or expired later drops it), and an agent that
// goes silent or stops reading its control stream is dropped.

import { randomUUID } from 'node:crypto';
import type { Http2Session, IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { namePattern } from '../config/fields.js';
import { GatehouseError, isGatehouseError } from '../errors/index.js';
import type { Identity } from '../exchange/index.js';
import type { Dispatcher, Session } from './agent-dispatch.js';
import type { AgentHubOptions } from './agent-hub-types.js';
import { reply } from './agent-reply.js';
import { encodeFrame, protocolVersion, readFrames, type HelloFrame } from './protocol.js';

export async function acceptAgent(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, options: AgentHubOptions, dispatcher: Dispatcher): Promise<void> {
  const { logger } = options;
  const { drop, pump } = dispatcher;
  if (headers[':method'] !== 'POST') return reply(stream, 405, 'method_not_allowed', 'Use POST.');
  const token = bearer(headers.authorization);
  let identity: Identity;
  try {
    if (token === undefined) throw new GatehouseError('unauthenticated', { message: 'No agent key was presented.' });
    identity = await options.verify(token, stream.session?.socket?.remoteAddress);
  } catch (error) {
    const failure = isGatehouseError(error) ? error : new GatehouseError('invalid_credential');
    logger.warn({ code: failure.code, detail: failure.detail }, 'agent refused');
    // A refused agent key is a failed authentication on record, in the chain.
    if (failure.status === 401) await options.recordRefusal?.({ listener: 'agents', request: 'POST agent link', error: failure, client: stream.session?.socket?.remoteAddress }).catch((cause: unknown) => logger.error({ code: failure.code, detail: String(cause) }, 'agent refusal not recorded'));
    return reply(stream, failure.status, failure.code, failure.message, failure.retryAfterSeconds);
  }
  const frames = readFrames(stream);
  const first = await Promise.race([frames.next(), new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 10_000).unref())]).catch(() => undefined);
  const hello = first && !first.done ? parseHello(first.value) : undefined;
  if (!hello) return reply(stream, 400, 'invalid_request_body', 'The first control frame must be a valid hello.');
  // The key binds the agent names it may serve: kind `agent` and the group `agent:<name>`.
  if (identity.kind !== 'agent' || !identity.groups.includes(`agent:${hello.name}`)) {
    logger.warn({ subject: identity.subject, name: hello.name }, 'agent refused: key may not serve this agent name');
    return reply(stream, 403, 'access_denied', `${identity.subject} may not serve as agent "${hello.name}" (needs kind agent and group agent:${hello.name}).`);
  }

  // One live link per key: a copy of an agent's key used elsewhere (stolen, or shared
  // by mistake) gets no traffic while the agent is connected, and shows in the log.
  // An agent reconnecting after a network cut finds its old link still here: when that
  // link no longer answers a PING, it is dropped and the new one taken.
  const holder = [...dispatcher.sessions.values()].find((s) => s.identity.credentialId === identity.credentialId);
  if (holder && !(await answersPing(holder.h2session, Math.min(options.heartbeatMs, 1000)))) {
    logger.warn({ agent: holder.hello.name, session: holder.id, subject: identity.subject }, 'agent key reconnected; its old link does not answer, dropping it');
    drop(holder);
  } else if (holder) {
    logger.warn({ agent: hello.name, subject: identity.subject, connected: holder.h2session.socket?.remoteAddress, refused: stream.session?.socket?.remoteAddress }, 'agent key already connected; refusing a second connection with it');
    return reply(stream, 409, 'agent_key_in_use', `${identity.subject} is already connected as agent "${holder.hello.name}"; each agent needs its own key.`);
  }
  if (dispatcher.sessionOf(stream.session!)) return reply(stream, 400, 'invalid_request_body', 'This link already carries an agent: open one control stream per link.');

  const session: Session = {
    id: `ag_${randomUUID()}`,
    hello,
    identity,
    token,
    expiresAt: identity.expiresAt,
    checking: false,
    h2session: stream.session!,
    control: stream,
    connectedAt: Date.now(),
    lastSeenAt: Date.now(),
    offered: new Map(),
    taken: new Map(),
    heartbeat: undefined,
    expiry: undefined,
    closed: false,
    draining: false,
    backedUpSince: undefined,
  };
  stream.respond({ ':status': 200, 'content-type': 'application/x-ndjson' });
  stream.write(encodeFrame({ type: 'welcome', session: session.id, heartbeatMs: options.heartbeatMs, protocol: protocolVersion }));
  dispatcher.add(session);
  const served = hello.connections.filter((c) => options.routes.get(c) === hello.name);
  logger.info({ agent: hello.name, session: session.id, subject: identity.subject, connections: served, ignored: hello.connections.filter((c) => !served.includes(c)) }, 'agent connected');

  // Offers held back while the control stream is backed up go out when it drains.
  stream.on('drain', pump);
  session.heartbeat = setInterval(() => {
    if (Date.now() - session.lastSeenAt > 3 * options.heartbeatMs) {
      logger.warn({ agent: hello.name, session: session.id }, 'agent missed heartbeats; dropping it');
      drop(session);
      return;
    }
    // An agent that sends heartbeats but reads nothing would have the gateway buffer
    // every frame for it: backed up for 3 intervals, it is dropped like a silent one.
    if (!stream.writableNeedDrain) session.backedUpSince = undefined;
    else if (session.backedUpSince === undefined) session.backedUpSince = Date.now();
    else if (Date.now() - session.backedUpSince >= 3 * options.heartbeatMs) {
      logger.warn({ agent: hello.name, session: session.id, buffered: stream.writableLength }, 'agent is not reading its control stream; dropping it');
      drop(session);
      return;
    }
    if (keyExpired()) return;
    stream.write(encodeFrame({ type: 'heartbeat', at: Date.now() }));
    recheckKey();
  }, options.heartbeatMs);
  // The key may change while its agent is connected: a rotation gives it an expiry, a
  // revocation in a store this gateway was not told of. Read it again each heartbeat.
  const recheckKey = (): void => {
    if (session.checking) return;
    session.checking = true;
    options.verify(token).then(
      (current) => {
        session.checking = false;
        if (session.closed || current.expiresAt === session.expiresAt) return;
        session.expiresAt = current.expiresAt;
        clearTimeout(session.expiry);
        if (!keyExpired() && current.expiresAt !== undefined) armExpiry(current.expiresAt);
      },
      (error: unknown) => {
        session.checking = false;
        if (session.closed) return;
        // The store not answering is no verdict on the key: the next heartbeat asks again.
        if (!isGatehouseError(error)) return void logger.warn({ agent: hello.name, session: session.id, err: String(error) }, 'agent key could not be checked');
        logger.warn({ agent: hello.name, session: session.id, subject: identity.subject, code: error.code, detail: error.detail }, error.code === 'credential_expired' ? 'agent key expired; dropping the agent' : 'agent key no longer valid; dropping the agent');
        drop(session);
      },
    );
  };
  // A key that expires while its agent is connected ends the link, as its reconnect
  // would be refused: at the expiry (the heartbeat looks too).
  const keyExpired = (): boolean => {
    if (session.expiresAt === undefined || session.expiresAt > Date.now()) return false;
    logger.warn({ agent: hello.name, session: session.id, subject: identity.subject }, 'agent key expired; dropping the agent');
    drop(session);
    return true;
  };
  // A timer may fire a little before the wall clock reaches the expiry (timers run on
  // a monotonic clock), or at its 24.8-day cap: then it is set again for what is left.
  const armExpiry = (expiresAt: number): void => {
    session.expiry = setTimeout(() => {
      if (!keyExpired() && !session.closed) armExpiry(expiresAt);
    }, Math.min(Math.max(expiresAt - Date.now(), 0) + 1, 2 ** 31 - 1)).unref();
  };
  if (identity.expiresAt !== undefined) armExpiry(identity.expiresAt);
  session.h2session.once('close', () => drop(session));
  stream.once('close', () => drop(session));
  pump();

  try {
    for await (const frame of frames) {
      session.lastSeenAt = Date.now();
      if (frame['type'] === 'drain' && !session.draining) {
        session.draining = true;
        logger.info({ agent: hello.name, session: session.id, inFlight: session.offered.size + session.taken.size }, 'agent draining');
      }
    }
  } catch (error) {
    logger.warn({ agent: hello.name, session: session.id, err: String(error) }, 'agent control stream failed');
  }
  drop(session);
}

function parseHello(frame: Record<string, unknown>): HelloFrame | undefined {
  const { type, name, connections, concurrency, version } = frame;
  if (type !== 'hello' || typeof name !== 'string' || !namePattern.test(name)) return undefined;
  // Connection names as the config allows them: what an agent announces reaches status, logs and terminals.
  if (!Array.isArray(connections) || connections.length > 1000 || !connections.every((c) => typeof c === 'string' && namePattern.test(c))) return undefined;
  const limit = typeof concurrency === 'number' && Number.isInteger(concurrency) && concurrency >= 1 && concurrency <= 10_000 ? concurrency : 64;
  return { type, name, connections: connections as string[], concurrency: limit, version: typeof version === 'string' ? version.slice(0, 64).replace(/[^\x20-\x7e]/g, '?') : 'unknown' };
}

function bearer(value: string | undefined): string | undefined {
  const match = value === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(value);
  return match?.[1];
}

/** Whether an HTTP/2 link answers a PING within `timeoutMs`. */
function answersPing(h2session: Http2Session, timeoutMs: number): Promise<boolean> {
  if (h2session.destroyed || h2session.closed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    timer.unref();
    try {
      h2session.ping((error) => {
        clearTimeout(timer);
        resolve(error === null);
      });
    } catch {
      clearTimeout(timer);
      resolve(false);
    }
  });
}
