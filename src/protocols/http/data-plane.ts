// The HTTP data plane adapter: `http(s)://HOST:PORT/c/<connection>/<upstream path>`.
// It decodes the request into an Exchange, hands it to the pipeline, and writes the
// answer (or an OpenAI-style error envelope) back. It knows nothing of policy.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { requestDigest } from '../../approvals/index.js';
import { recordableHeaders } from '../../audit/index.js';
import { GatehouseError } from '../../errors/index.js';
import { newId, type Exchange, type Identity, type RecordedRequest } from '../../exchange/index.js';
import { mapUpstreamError } from '../../forward/index.js';
import { runExchange, type ExchangeIO, type Inspection, type PipelineStages } from '../../pipeline/index.js';
import { captureWhole, isTextual } from './body-capture.js';
import { hasDotSegment, joinUpstreamPath, parseDataPlanePath, type HttpConnection } from './connection.js';
import { bearerToken, upstreamRequestHeaders } from './headers.js';
import { httpOperation, openaiFacts, openaiOperation } from './openai-request.js';
import { readBody } from './read-body.js';
import { ProgressTracker, type ProgressOptions } from './record-progress.js';
import { relayResponse } from './relay-response.js';
import { resolveMasking, type DataPlaneMasking } from './masking-options.js';
import { writeError } from './write-error.js';

export interface DataPlaneOptions {
  readonly connections: ReadonlyMap<string, HttpConnection>;
  readonly stages: PipelineStages;
  readonly maxRecordedBody: number;
  /** Masking profiles and the response guard (absent: answers pass as they are). */
  readonly masking?: DataPlaneMasking | undefined;
  /** Exchanges in flight, so a revocation can cut them (abort upstream, destroy socket). */
  readonly inFlight?: { register(id: string, identity: Identity, cut: () => void): () => void } | undefined;
  /** Signs the identity assertion for connections with `identityAssertion`. */
  readonly assertIdentity?: ((identity: Identity, connection: string, ttlMs: number, exchangeId: string) => Promise<string>) | undefined;
  /** Cadence of progress writes while an answer streams (config audit.progress). */
  readonly progress?: ProgressOptions | undefined;
  /** Binds a re-execution token (`gatehouse-reexecution` header) to the new exchange (audit). */
  readonly bindReexecution?: ((exchangeId: string, token: string | string[] | undefined) => void) | undefined;
  /** Called for requests that never became an exchange (unknown route or connection). */
  readonly onUnrouted?: (error: GatehouseError) => void;
}

export function createDataPlaneHandler(options: DataPlaneOptions) {
  const { connections, stages, maxRecordedBody } = options;

  return function handleDataPlane(req: IncomingMessage, res: ServerResponse): void {
    const startedAt = Date.now();
    const started = performance.now();
    const elapsedMs = () => performance.now() - started;
    const method = req.method ?? 'GET';
    const route = parseDataPlanePath(req.url ?? '/');
    if (!route) return unrouted(res, new GatehouseError('route_not_found', { message: 'Not found. Data-plane requests go to /c/<connection>/<path>.' }));
    if (hasDotSegment(route.rest)) return unrouted(res, new GatehouseError('invalid_path'));
    const connection = connections.get(route.connection);
    if (!connection) {
      return unrouted(res, new GatehouseError('connection_not_found', { message: `No connection named "${route.connection}" is configured on this gateway.` }));
    }

    const id = newId('ex', startedAt);
    res.setHeader('gatehouse-exchange-id', id);
    options.bindReexecution?.(id, req.headers['gatehouse-reexecution']);
    const pathname = route.rest.split('?', 1)[0]!;
    const upstreamPath = joinUpstreamPath(connection.basePath, route.rest);
    const isOpenai = connection.type === 'openai';
    const requestLine: RecordedRequest = { method, path: route.rest, headers: recordableHeaders(req.headers), body: undefined, truncated: false };

    const exchange: Exchange = {
      id,
      sessionId: id,
      protocol: 'http',
      connection: connection.name,
      operation: isOpenai ? openaiOperation(method, pathname) : httpOperation(method, pathname),
      startedAt,
      client: { address: req.socket.remoteAddress, userAgent: req.headers['user-agent'] },
      facts: { stream: false },
    };

    let body: Buffer | undefined;
    // Ends an approval hold when the caller goes away before the answer.
    const callerGone = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) callerGone.abort();
    });
    const io: ExchangeIO = {
      exchange,
      credential: bearerToken(req.headers.authorization),
      requestLine,
      approval: { justification: singleHeader(req.headers['gatehouse-justification']), reviewId: singleHeader(req.headers['gatehouse-review'])?.trim() },
      signal: callerGone.signal,
      elapsedMs,
      async inspect(): Promise<Inspection> {
        body = await readBody(req, connection.maxRequestBody);
        const recorded = isTextual(req.headers['content-type']) ? captureWhole(body, maxRecordedBody) : { text: undefined, truncated: false };
        return {
          operation: exchange.operation,
          facts: { ...(isOpenai ? openaiFacts(exchange.operation, body) : { stream: false }), method, path: pathname, bytes: body.length },
          request: { ...requestLine, body: body.length > 0 ? recorded.text : undefined, truncated: recorded.truncated },
          // Hashing the canonical body costs; only an approval hold reads it.
          get digest() {
            return requestDigest(body!);
          },
        };
      },
      async relay(admitted, finish, decision, progress) {
        const masking = resolveMasking(options.masking, connection, decision, admitted.operation);
        let forwardBody = body;
        if (masking.request && body) forwardBody = masking.scrub(body, req.headers['content-type']);
        const controller = new AbortController();
        const abortUpstream = () => {
          if (!res.writableFinished) controller.abort();
        };
        res.once('close', abortUpstream);
        if (admitted.identity && options.inFlight) {
          const release = options.inFlight.register(id, admitted.identity, () => {
            controller.abort();
            res.destroy();
          });
          res.once('close', release);
        }
        const headers = upstreamRequestHeaders(req.headers, { identityEncoding: isOpenai || masking.response !== undefined, bodyLength: forwardBody && forwardBody.length > 0 ? forwardBody.length : undefined });
        const assertion = connection.identityAssertion;
        if (assertion) {
          // Never pass on a caller's own value of the header; without an identity or a signer, send none.
          delete headers[assertion.header];
          if (admitted.identity && options.assertIdentity) headers[assertion.header] = await options.assertIdentity(admitted.identity, connection.name, assertion.ttlMs, id);
        }
        let upstream;
        try {
          upstream = await connection.forwarder.forward({
            method,
            path: upstreamPath,
            headers,
            body: forwardBody && forwardBody.length > 0 ? forwardBody : undefined,
            signal: controller.signal,
          });
        } catch (error) {
          throw res.destroyed ? new GatehouseError('client_closed') : mapUpstreamError(error, connection.name);
        }
        const contentType = upstream.headers['content-type'];
        const tracker = new ProgressTracker({
          intervalMs: options.progress?.intervalMs ?? 250,
          bytes: options.progress?.bytes ?? 64 * 1024,
          textual: isTextual(Array.isArray(contentType) ? contentType[0] : contentType),
          sse: isOpenai && admitted.operation !== 'embeddings' && /^text\/event-stream/i.test(String(contentType ?? '')),
          maxRecordedBody,
          elapsedMs,
          report: progress,
        });
        await relayResponse({
          res,
          upstream,
          onChunk: tracker.push,
          connection: connection.name,
          readAnswer: isOpenai && admitted.operation !== 'embeddings',
          // A policy or limit obligation may only lower the connection's cap.
          maxResponseBody: Math.min(connection.maxResponseBody, decision.obligations?.maxResponseBytes ?? Infinity),
          maxRecordedBody,
          bytesIn: body?.length ?? 0,
          ttfbMs: elapsedMs(),
          elapsedMs,
          finish: (outcome) => finish({ ...outcome, chunkTimings: tracker.timings.toJSON() }),
          maskPlan: masking.response,
          responseGuard: options.masking?.responseGuard?.(decision),
          isEmbeddings: admitted.operation === 'embeddings',
          maxMaskBuffer: options.masking?.maxBufferBytes,
          requestCounts: masking.requestCounts,
        });
      },
      fail: (error) => writeError(res, error, id),
    };

    void runExchange(io, stages);
  };

  function singleHeader(value: string | string[] | undefined): string | undefined {
    return Array.isArray(value) ? value[0] : value;
  }

  function unrouted(res: ServerResponse, error: GatehouseError): void {
    options.onUnrouted?.(error);
    writeError(res, error);
  }
}
