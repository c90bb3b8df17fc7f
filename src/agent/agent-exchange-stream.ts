// An agent taking an offered exchange: it opens a stream on the exchange path with the
// offer's id on the link that was offered it. HTTP exchanges get the request body, then
// send the answer head and body, ended by the completion trailer; byte streams (kind
// tcp) get 200, then carry bytes both ways. An answer cut before the trailer fails the
// exchange: upstream_failed when the agent reports its target cut it, else
// agent_disconnected.

import { constants as h2, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { GatehouseError } from '../errors/index.js';
import { decodeURIComponentSafe } from '../protocols/http/connection.js';
import type { Dispatcher, Job, Session, StreamJob } from './agent-dispatch.js';
import { reply } from './agent-reply.js';
import { resetStream } from './h2-teardown.js';
import { completeTrailer, ProtocolError, readHead, splitHead } from './protocol.js';
import { TunnelSocket } from './tunnel-socket.js';

export function takeExchange(stream: ServerHttp2Stream, id: string, dispatcher: Dispatcher): void {
  const { fail, finished } = dispatcher;
  const session = stream.session ? dispatcher.sessionOf(stream.session) : undefined;
  if (!session || session.closed) return reply(stream, 401, 'unauthenticated', 'Open the control stream first.');
  const job = session.offered.get(decodeURIComponentSafe(id) ?? '');
  if (!job) return reply(stream, 404, 'route_not_found', 'No such exchange offered to this agent.');
  session.offered.delete(job.id);
  session.taken.set(job.id, job);
  clearTimeout(job.timer);
  clearTimeout(job.offerTimer);
  const headMs = job.kind === 'http' ? job.exchange.headersTimeoutMs : job.request.acceptTimeoutMs;
  job.timer = setTimeout(() => fail(job, new GatehouseError('upstream_timeout', { detail: `connection ${job.connection}: agent ${session.hello.name} gave no answer head within ${headMs} ms` })), headMs);
  if (job.kind === 'tcp') return takeStream(job, stream, session, dispatcher);

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
function takeStream(job: StreamJob, stream: ServerHttp2Stream, session: Session, dispatcher: Dispatcher): void {
  const { fail, finished } = dispatcher;
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
