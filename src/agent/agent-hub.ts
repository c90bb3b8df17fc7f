// The gateway's side of the agent tunnel: an HTTP/2 TLS listener agents dial in to.
// It authenticates each agent (an API key of kind `agent` in the group
// `agent:<name>`, not revoked; an agent whose key is revoked later is dropped),
// keeps its announced connections, heartbeats it, and hands it
// exchanges: least outstanding first, queued while every agent is busy, handed to
// another agent when the one they were given to dies before taking them. Two kinds:
// HTTP exchanges (forward) and raw byte streams to a target (openStream, for the
// PostgreSQL adapter), each its own HTTP/2 stream.

import { randomUUID } from 'node:crypto';
import {
  constants as h2,
  createSecureServer,
  type Http2SecureServer,
  type Http2Session,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { namePattern } from '../config/fields.js';
import { GatehouseError, isGatehouseError } from '../errors/index.js';
import type { Identity } from '../exchange/index.js';
import type { ForwardResponse } from '../forward/forwarder.js';
import { decodeURIComponentSafe } from '../protocols/http/connection.js';
import { destroySession, resetStream } from './h2-teardown.js';
import { completeTrailer, connectPath, encodeFrame, exchangePathPrefix, protocolVersion, ProtocolError, readFrames, readHead, splitHead, type ExchangeFrame, type HelloFrame } from './protocol.js';
import { TunnelSocket } from './tunnel-socket.js';
import type { AgentExchange, AgentHub, AgentHubOptions, AgentHubStatus, AgentStreamRequest } from './agent-hub-types.js';

export type { AgentExchange, AgentHub, AgentHubOptions, AgentHubStatus, AgentSessionStatus, AgentStreamRequest } from './agent-hub-types.js';

/**
 * How long an offered exchange waits for its agent to take it before another agent of
 * the same name may have it. A working agent opens the stream as it reads the offer;
 * one that reads offers and takes none would otherwise hold them until queueTimeout.
 * Moving it is safe: the agent reaches its target only after the gateway's 200 on the
 * take, and a late take of a moved offer gets 404.
 */
const offerTakeMs = 2_000;

/** agent_unavailable's public message when agents are connected but none had room in time (the registry's says none is connected). */
const queueTimeoutMessage = 'Every agent serving this connection was busy: none took the request within the queue timeout.';

interface Session {
  readonly id: string;
  readonly hello: HelloFrame;
  readonly identity: Identity;
  /** The key it connected with: checked again every heartbeat (an expiry set by a rotation, say). */
  readonly token: string;
  /** When its key expires, as last read. */
  expiresAt: number | undefined;
  /** A check of the key is running. */
  checking: boolean;
  readonly h2session: Http2Session;
  readonly control: ServerHttp2Stream;
  readonly connectedAt: number;
  lastSeenAt: number;
  /** Sent on the control stream, not yet taken: these go back to the queue if it dies. */
  readonly offered: Map<string, Job>;
  /** Taken (its exchange stream is open): these fail with agent_disconnected if it dies. */
  readonly taken: Map<string, Job>;
  heartbeat: NodeJS.Timeout | undefined;
  /** Fires when the agent's key expires. */
  expiry: NodeJS.Timeout | undefined;
  closed: boolean;
  draining: boolean;
  /** Since when the control stream has been backed up (the agent is not reading it). */
  backedUpSince: number | undefined;
}

interface JobBase {
  readonly id: string;
  readonly agent: string;
  readonly connection: string;
  /** Only this agent session may take it (and it may exceed its concurrency). */
  readonly pinned: string | undefined;
  session: Session | undefined;
  timer: NodeJS.Timeout | undefined;
  /** Fires when the agent it was offered to has not taken it in offerTakeMs. */
  offerTimer: NodeJS.Timeout | undefined;
  /** The agent session that left it untaken: not offered it again while another has room. */
  passedOver: Session | undefined;
  settled: boolean;
  reject(error: GatehouseError): void;
}
interface HttpJob extends JobBase {
  readonly kind: 'http';
  readonly exchange: AgentExchange;
  resolve(response: ForwardResponse): void;
}
interface StreamJob extends JobBase {
  readonly kind: 'tcp';
  readonly request: AgentStreamRequest;
  resolve(socket: Duplex): void;
}
type Job = HttpJob | StreamJob;

export async function startAgentHub(options: AgentHubOptions): Promise<AgentHub> {
  const { logger } = options;
  const sessions = new Map<string, Session>();
  const byH2 = new WeakMap<Http2Session, Session>();
  const queue: Job[] = [];

  const server: Http2SecureServer = createSecureServer({ cert: options.tls.cert, key: options.tls.key, allowHTTP1: false });
  server.on('stream', (stream, headers) => {
    // A stream reset with an error code (the agent's RST_STREAM when its target cut an
    // answer, or ours on a bad head) emits 'error'; unheard, that is an uncaught
    // exception that ends the gateway. Its handlers see it as 'close' without the trailer.
    stream.on('error', () => undefined);
    const path = headers[':path'] ?? '';
    // Async, so that a throw in a handler is a rejection caught below, not an uncaught exception.
    const handle = async () => (path === connectPath ? onConnect(stream, headers) : path.startsWith(exchangePathPrefix) ? onExchange(stream, path.slice(exchangePathPrefix.length)) : reply(stream, 404, 'route_not_found', 'No such agent route.'));
    void handle().catch((error: unknown) => {
      logger.warn({ err: String(error) }, 'agent stream failed');
      resetStream(stream, h2.NGHTTP2_INTERNAL_ERROR);
    });
  });
  // A session that never authenticates is not kept open.
  server.on('session', (h2session) => {
    const timer = setTimeout(() => {
      if (!byH2.has(h2session)) destroySession(h2session);
    }, 15_000);
    h2session.once('close', () => clearTimeout(timer));
    h2session.on('error', () => undefined);
  });
  server.on('sessionError', () => undefined);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.listen.port, options.listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { address, port } = server.address() as AddressInfo;
  const url = `https://${address.includes(':') ? `[${address}]` : address}:${port}`;

  async function onConnect(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): Promise<void> {
    if (headers[':method'] !== 'POST') return reply(stream, 405, 'method_not_allowed', 'Use POST.');
    const token = bearer(headers.authorization);
    let identity: Identity;
    try {
      if (token === undefined) throw new GatehouseError('unauthenticated', { message: 'No agent key was presented.' });
      identity = await options.verify(token);
    } catch (error) {
      const failure = isGatehouseError(error) ? error : new GatehouseError('invalid_credential');
      logger.warn({ code: failure.code, detail: failure.detail }, 'agent refused');
      // A refused agent key is a failed authentication on record, in the chain.
      if (failure.status === 401) await options.recordRefusal?.({ listener: 'agents', request: 'POST agent link', error: failure, client: stream.session?.socket?.remoteAddress }).catch((cause: unknown) => logger.error({ code: failure.code, detail: String(cause) }, 'agent refusal not recorded'));
      return reply(stream, failure.status, failure.code, failure.message);
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
    const holder = [...sessions.values()].find((s) => s.identity.credentialId === identity.credentialId);
    if (holder && !(await answersPing(holder.h2session, Math.min(options.heartbeatMs, 1000)))) {
      logger.warn({ agent: holder.hello.name, session: holder.id, subject: identity.subject }, 'agent key reconnected; its old link does not answer, dropping it');
      drop(holder);
    } else if (holder) {
      logger.warn({ agent: hello.name, subject: identity.subject, connected: holder.h2session.socket?.remoteAddress, refused: stream.session?.socket?.remoteAddress }, 'agent key already connected; refusing a second connection with it');
      return reply(stream, 409, 'agent_key_in_use', `${identity.subject} is already connected as agent "${holder.hello.name}"; each agent needs its own key.`);
    }
    if (byH2.has(stream.session!)) return reply(stream, 400, 'invalid_request_body', 'This link already carries an agent: open one control stream per link.');

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
    sessions.set(session.id, session);
    byH2.set(session.h2session, session);
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

  function onExchange(stream: ServerHttp2Stream, id: string): void {
    const session = stream.session ? byH2.get(stream.session) : undefined;
    if (!session || session.closed) return reply(stream, 401, 'unauthenticated', 'Open the control stream first.');
    const job = session.offered.get(decodeURIComponentSafe(id) ?? '');
    if (!job) return reply(stream, 404, 'route_not_found', 'No such exchange offered to this agent.');
    session.offered.delete(job.id);
    session.taken.set(job.id, job);
    clearTimeout(job.timer);
    clearTimeout(job.offerTimer);
    const headMs = job.kind === 'http' ? job.exchange.headersTimeoutMs : job.request.acceptTimeoutMs;
    job.timer = setTimeout(() => fail(job, new GatehouseError('upstream_timeout', { detail: `connection ${job.connection}: agent ${session.hello.name} gave no answer head within ${headMs} ms` })), headMs);
    if (job.kind === 'tcp') return takeStream(job, stream, session);

    const body = job.exchange.request.body;
    stream.respond({ ':status': 200, 'content-length': String(body?.length ?? 0) });
    stream.end(body ?? Buffer.alloc(0));
    // 'end' alone does not prove END_STREAM: node:http2 also ends a stream's readable
    // side when the link dies. The agent's trailer does (protocol.ts, completeTrailer).
    let complete = false;
    let ended = false;
    stream.once('trailers', (trailers: IncomingHttpHeaders) => (complete = trailers[completeTrailer] === '1'));

    splitHead(stream).then(
      ({ head, body: answer }) => {
        if (job.settled) {
          answer.destroy();
          return resetStream(stream, h2.NGHTTP2_CANCEL);
        }
        if ('error' in head) {
          resetStream(stream, h2.NGHTTP2_NO_ERROR);
          return fail(job, agentError(head.error.code, `connection ${job.exchange.connection} via agent ${session.hello.name}: ${head.error.detail}`));
        }
        const cut = () =>
          // RST_STREAM INTERNAL_ERROR on a link still up is the agent saying its target cut
          // the answer (agent-client.ts, upstreamFailedRstCode): the target failed, as a
          // local forward records it. A link that died closes its streams otherwise.
          stream.rstCode === h2.NGHTTP2_INTERNAL_ERROR && !session.closed && !session.h2session.destroyed
            ? new GatehouseError('upstream_failed', { detail: `connection ${job.connection}: the target cut its answer (reported by agent ${session.hello.name}, ${session.id})` })
            : new GatehouseError('agent_disconnected', { detail: `agent ${session.hello.name} (${session.id}) cut the answer` });
        stream.pipe(answer, { end: false });
        // The trailer may be reported just after 'end' under load: decide at 'end' when
        // it is already here, otherwise at 'close', when it surely would have been.
        const endAnswer = () => {
          if (ended) return;
          ended = true;
          answer.end();
        };
        stream.once('end', () => {
          if (complete) endAnswer();
        });
        stream.once('close', () => {
          finished(job);
          if (ended) return;
          if (!complete) return void answer.destroy(cut());
          if (stream.readableEnded) return endAnswer();
          // The agent finished (trailer seen) and closed at once, e.g. when draining:
          // let the data still buffered here reach the caller before ending.
          const timer = setTimeout(() => {
            if (!ended) answer.destroy(cut());
          }, 5_000);
          stream.once('end', () => {
            clearTimeout(timer);
            endAnswer();
          });
        });
        // The caller went away (relay destroyed the body): cancel the agent's stream too.
        answer.once('close', () => {
          if (!ended) resetStream(stream, h2.NGHTTP2_CANCEL);
        });
        job.settled = true;
        clearTimeout(job.timer);
        job.resolve({ status: head.status, headers: head.headers, body: answer });
      },
      (error: unknown) => {
        resetStream(stream, h2.NGHTTP2_PROTOCOL_ERROR);
        fail(job, headFailure(error, job, session));
      },
    );
  }

  /**
   * A stream of kind tcp: the gateway answers 200 and writes toward the target; the
   * agent's head (200 once it accepted) comes first on its side, then the target's bytes.
   */
  function takeStream(job: StreamJob, stream: ServerHttp2Stream, session: Session): void {
    stream.respond({ ':status': 200 });
    let complete = false;
    stream.once('trailers', (trailers: IncomingHttpHeaders) => (complete = trailers[completeTrailer] === '1'));
    stream.once('close', () => finished(job));
    readHead(stream).then(
      ({ head, rest }) => {
        if (job.settled) return resetStream(stream, h2.NGHTTP2_CANCEL);
        if ('error' in head) {
          resetStream(stream, h2.NGHTTP2_NO_ERROR);
          return fail(job, agentError(head.error.code, `connection ${job.connection} via agent ${session.hello.name}: ${head.error.detail}`));
        }
        // A byte stream is accepted with 200 or refused with an error head, nothing else.
        if (head.status !== 200) {
          resetStream(stream, h2.NGHTTP2_PROTOCOL_ERROR);
          return fail(job, new GatehouseError('upstream_failed', { detail: `connection ${job.connection} via agent ${session.hello.name} (${session.id}): status ${head.status} on a byte stream (only 200 accepts it)` }));
        }
        const socket = new TunnelSocket(stream, rest, {
          agentSession: session.id,
          complete: () => complete,
          cut: () => new GatehouseError('agent_disconnected', { detail: `agent ${session.hello.name} (${session.id}) cut the stream for connection ${job.connection}` }),
        });
        job.settled = true;
        clearTimeout(job.timer);
        job.resolve(socket);
      },
      (error: unknown) => {
        resetStream(stream, h2.NGHTTP2_PROTOCOL_ERROR);
        fail(job, headFailure(error, job, session));
      },
    );
  }

  function submit(exchange: AgentExchange): Promise<ForwardResponse> {
    return enqueue<ForwardResponse>((resolve, reject) => {
      const job: HttpJob = { kind: 'http', id: `x_${randomUUID()}`, agent: exchange.agent, connection: exchange.connection, pinned: undefined, exchange, session: undefined, timer: undefined, offerTimer: undefined, passedOver: undefined, settled: false, resolve, reject };
      exchange.request.signal.addEventListener('abort', () => fail(job, new GatehouseError('client_closed')), { once: true });
      return job;
    });
  }

  function openStream(request: AgentStreamRequest): Promise<Duplex> {
    const pinned = request.near instanceof TunnelSocket ? request.near.agentSession : undefined;
    return enqueue<Duplex>((resolve, reject) => ({ kind: 'tcp', id: `x_${randomUUID()}`, agent: request.agent, connection: request.connection, pinned, request, session: undefined, timer: undefined, offerTimer: undefined, passedOver: undefined, settled: false, resolve, reject }));
  }

  /** Queues the job `make` builds (refused at once when no agent serves its connection). */
  function enqueue<T>(make: (resolve: (value: T) => void, reject: (error: GatehouseError) => void) => Job): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const job = make(resolve, reject);
      if (!eligible(job).length) {
        job.settled = true;
        return reject(new GatehouseError('agent_unavailable', { detail: `connection ${job.connection}: no agent "${job.agent}" serving it is connected` }));
      }
      job.timer = setTimeout(() => fail(job, new GatehouseError('agent_unavailable', { message: queueTimeoutMessage, detail: `connection ${job.connection}: no agent "${job.agent}" took the request within ${options.queueTimeoutMs} ms` })), options.queueTimeoutMs);
      queue.push(job);
      pump();
    });
  }

  function eligible(job: Job): Session[] {
    if (job.pinned !== undefined) {
      const session = sessions.get(job.pinned);
      return session && !session.closed && session.hello.connections.includes(job.connection) ? [session] : [];
    }
    return [...sessions.values()].filter((s) => !s.closed && !s.draining && s.hello.name === job.agent && s.hello.connections.includes(job.connection));
  }

  /** Room for one more offer: under its concurrency, and reading its control stream. */
  function hasRoom(s: Session): boolean {
    return s.offered.size + s.taken.size < s.hello.concurrency && !s.control.writableNeedDrain;
  }

  /** Hands queued jobs, oldest first, to the least-busy agent with room. */
  function pump(): void {
    for (let i = 0; i < queue.length; ) {
      const job = queue[i]!;
      const candidates = eligible(job);
      if (candidates.length === 0) {
        queue.splice(i, 1);
        fail(job, new GatehouseError('agent_unavailable', { detail: `connection ${job.connection}: no agent "${job.agent}" serving it is connected` }), false);
        continue;
      }
      let best: Session | undefined = job.pinned !== undefined ? candidates[0] : undefined;
      for (const s of best ? [] : candidates) {
        const load = s.offered.size + s.taken.size;
        if (s !== job.passedOver && hasRoom(s) && (!best || load < best.offered.size + best.taken.size)) best = s;
      }
      if (!best) {
        i++;
        continue;
      }
      queue.splice(i, 1);
      offer(best, job);
    }
  }

  function offer(session: Session, job: Job): void {
    job.session = session;
    session.offered.set(job.id, job);
    session.control.write(encodeFrame(frameOf(job)));
    if (job.pinned === undefined) job.offerTimer = setTimeout(() => offerUntaken(job), offerTakeMs);
  }

  /** Not taken in time: to another agent with room now, if there is one (else it stays). */
  function offerUntaken(job: Job): void {
    const from = job.session;
    if (job.settled || !from || !from.offered.has(job.id)) return;
    if (!eligible(job).some((s) => s !== from && hasRoom(s))) return;
    logger.warn({ agent: from.hello.name, session: from.id, exchange: job.id }, `agent took no offer in ${offerTakeMs} ms; offering it to another`);
    from.offered.delete(job.id);
    if (!from.control.writableNeedDrain) from.control.write(encodeFrame({ type: 'cancel', id: job.id }));
    job.session = undefined;
    job.passedOver = from;
    queue.unshift(job);
    pump();
  }

  function frameOf(job: Job): ExchangeFrame {
    if (job.kind === 'tcp') return { type: 'exchange', id: job.id, kind: 'tcp', connection: job.connection, credential: job.request.credential };
    const { request, connection, credential } = job.exchange;
    return {
      type: 'exchange',
      id: job.id,
      kind: 'http',
      connection,
      method: request.method,
      path: request.path,
      headers: request.headers,
      credential,
      bodyLength: request.body?.length ?? 0,
    };
  }

  function fail(job: Job, error: GatehouseError, dequeue = true): void {
    if (job.settled) return;
    job.settled = true;
    clearTimeout(job.timer);
    clearTimeout(job.offerTimer);
    if (dequeue) {
      const at = queue.indexOf(job);
      if (at >= 0) queue.splice(at, 1);
    }
    const session = job.session;
    if (session?.offered.delete(job.id) && !session.closed) session.control.write(encodeFrame({ type: 'cancel', id: job.id }));
    session?.taken.delete(job.id);
    job.reject(error);
    pump();
  }

  function finished(job: Job): void {
    job.session?.taken.delete(job.id);
    pump();
  }

  function drop(session: Session): void {
    if (session.closed) return;
    session.closed = true;
    clearInterval(session.heartbeat);
    clearTimeout(session.expiry);
    sessions.delete(session.id);
    logger.info({ agent: session.hello.name, session: session.id, requeued: session.offered.size, cut: session.taken.size }, 'agent disconnected');
    // Offered but not taken: nothing reached the agent's target, so another agent may take it.
    const requeue = [...session.offered.values()];
    session.offered.clear();
    for (const job of requeue) {
      clearTimeout(job.offerTimer);
      job.session = undefined;
    }
    queue.unshift(...requeue);
    for (const job of [...session.taken.values()]) {
      fail(job, new GatehouseError('agent_disconnected', { detail: `agent ${session.hello.name} (${session.id}) disconnected before answering` }));
    }
    destroySession(session.h2session);
    pump();
  }

  return {
    url,
    forward: submit,
    openStream,
    dropRevoked() {
      let dropped = 0;
      for (const session of [...sessions.values()]) {
        const why = options.revoked?.(session.identity);
        if (why === undefined) continue;
        logger.warn({ agent: session.hello.name, session: session.id, subject: session.identity.subject, reason: why }, 'agent key revoked; dropping the agent');
        drop(session);
        dropped++;
      }
      return dropped;
    },
    status(): AgentHubStatus {
      const agents = [...sessions.values()].map((s) => ({
        session: s.id,
        name: s.hello.name,
        subject: s.identity.subject,
        keyId: s.identity.credentialId,
        connections: [...s.hello.connections],
        concurrency: s.hello.concurrency,
        inFlight: s.offered.size + s.taken.size,
        draining: s.draining,
        remoteAddress: s.h2session.socket?.remoteAddress,
        version: s.hello.version,
        connectedAt: new Date(s.connectedAt).toISOString(),
        lastHeartbeatAt: new Date(s.lastSeenAt).toISOString(),
      }));
      const routes = [...options.routes].map(([connection, agent]) => ({
        connection,
        agent,
        connectedAgents: agents.filter((a) => a.name === agent && a.connections.includes(connection)).length,
      }));
      return { agents, routes, queued: queue.length };
    },
    async close() {
      for (const job of [...queue]) fail(job, new GatehouseError('agent_unavailable', { detail: 'gateway shutting down' }));
      for (const session of [...sessions.values()]) drop(session);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function parseHello(frame: Record<string, unknown>): HelloFrame | undefined {
  const { type, name, connections, concurrency, version } = frame;
  if (type !== 'hello' || typeof name !== 'string' || !namePattern.test(name)) return undefined;
  // Connection names as the config allows them: what an agent announces reaches status, logs and terminals.
  if (!Array.isArray(connections) || connections.length > 1000 || !connections.every((c) => typeof c === 'string' && namePattern.test(c))) return undefined;
  const limit = typeof concurrency === 'number' && Number.isInteger(concurrency) && concurrency >= 1 && concurrency <= 10_000 ? concurrency : 64;
  return { type, name, connections: connections as string[], concurrency: limit, version: typeof version === 'string' ? version.slice(0, 64).replace(/[^\x20-\x7e]/g, '?') : 'unknown' };
}

/**
 * No usable head: a head the agent got wrong (ProtocolError: too large, not JSON,
 * malformed) is upstream_failed and logged; the stream ending first is agent_disconnected.
 */
function headFailure(error: unknown, job: Job, session: Session): GatehouseError {
  const detail = `connection ${job.connection} via agent ${session.hello.name} (${session.id}): ${(error as Error).message}`;
  return new GatehouseError(error instanceof ProtocolError ? 'upstream_failed' : 'agent_disconnected', { detail });
}

/** An agent-reported failure keeps its code when it is one of the upstream codes. */
function agentError(code: string, detail: string): GatehouseError {
  const known = ['upstream_unreachable', 'upstream_timeout', 'upstream_failed', 'connection_not_found'] as const;
  const match = known.find((k) => k === code);
  if (match === 'connection_not_found') return new GatehouseError('agent_unavailable', { detail });
  return new GatehouseError(match ?? 'upstream_failed', { detail });
}

function reply(stream: ServerHttp2Stream, status: number, code: string, message: string): void {
  if (stream.destroyed) return;
  if (!stream.headersSent) stream.respond({ ':status': status, 'content-type': 'application/json' });
  stream.end(JSON.stringify({ error: { code, message } }));
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
