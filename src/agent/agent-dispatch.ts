// The hub's dispatcher: the connected agent sessions and the queue of exchanges
// waiting for one. It hands exchanges out least outstanding first, keeps them queued
// while every agent is busy, moves an offer another agent may take when its agent
// leaves it untaken, and puts offers back in the queue when their agent dies before
// taking them (nothing reached the target); taken ones fail with agent_disconnected.

import { randomUUID } from 'node:crypto';
import type { Http2Session, ServerHttp2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';
import { GatehouseError } from '../errors/index.js';
import type { Identity } from '../exchange/index.js';
import type { ForwardResponse } from '../forward/forwarder.js';
import type { Logger } from '../observability/index.js';
import { destroySession } from './h2-teardown.js';
import { encodeFrame, type ExchangeFrame, type HelloFrame } from './protocol.js';
import { TunnelSocket } from './tunnel-socket.js';
import type { AgentExchange, AgentStreamRequest } from './agent-hub-types.js';

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

/** One connected agent: its authenticated link and the exchanges it holds. */
export interface Session {
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
export interface HttpJob extends JobBase {
  readonly kind: 'http';
  readonly exchange: AgentExchange;
  resolve(response: ForwardResponse): void;
}
export interface StreamJob extends JobBase {
  readonly kind: 'tcp';
  readonly request: AgentStreamRequest;
  resolve(socket: Duplex): void;
}
export type Job = HttpJob | StreamJob;

export interface Dispatcher {
  /** Connected sessions by id (a dropped one is removed). */
  readonly sessions: ReadonlyMap<string, Session>;
  /** The session an HTTP/2 link carries, if it authenticated. */
  sessionOf(h2session: Http2Session): Session | undefined;
  /** Registers a session that has just been welcomed. */
  add(session: Session): void;
  submit(exchange: AgentExchange): Promise<ForwardResponse>;
  openStream(request: AgentStreamRequest): Promise<Duplex>;
  /** Hands queued jobs, oldest first, to the least-busy agent with room. */
  pump(): void;
  fail(job: Job, error: GatehouseError): void;
  /** A taken job's stream closed: its agent has room again. */
  finished(job: Job): void;
  drop(session: Session): void;
  queued(): number;
  /** Fails every queued job and drops every session (gateway shutdown). */
  close(): void;
}

export function createDispatcher(options: { readonly queueTimeoutMs: number; readonly logger: Logger }): Dispatcher {
  const { logger } = options;
  const sessions = new Map<string, Session>();
  const byH2 = new WeakMap<Http2Session, Session>();
  const queue: Job[] = [];

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
    sessions,
    sessionOf: (h2session) => byH2.get(h2session),
    add(session) {
      sessions.set(session.id, session);
      byH2.set(session.h2session, session);
    },
    submit,
    openStream,
    pump,
    fail: (job, error) => fail(job, error),
    finished,
    drop,
    queued: () => queue.length,
    close() {
      for (const job of [...queue]) fail(job, new GatehouseError('agent_unavailable', { detail: 'gateway shutting down' }));
      for (const session of [...sessions.values()]) drop(session);
    },
  };
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
