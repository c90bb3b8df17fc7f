// The HTTP data plane adapter: `http(s)://HOST:PORT/c/<connection>/<upstream path>`.
// It decodes the request into an Exchange, hands it to the pipeline, and writes the
// answer (or an OpenAI-style error envelope) back. It knows nothing of policy.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { requestDigest } from '../../approvals/index.js';
import { recordableHeaders, recordablePath } from '../../audit/index.js';
import { redactPathCredentials } from '../../detect/index.js';
import { GatehouseError } from '../../errors/index.js';
import { newId, type Exchange, type Identity, type RecordedRequest, type RequestFacts } from '../../exchange/index.js';
import { ForwardAbort, mapUpstreamError } from '../../forward/index.js';
import type { ExchangeProgress } from '../../audit/index.js';
import type { Decision, ExchangeOutcome } from '../../exchange/index.js';
import { runExchange, type ExchangeIO, type Inspection, type OutcomeNeeds, type PipelineStages } from '../../pipeline/index.js';
import { captureWhole, isTextual } from './body-capture.js';
import { joinUpstreamPath, parseDataPlanePath, policyPath, type HttpConnection } from './connection.js';
import { bearerToken, upstreamRequestHeaders } from './headers.js';
import { httpOperation, openaiFacts, openaiOperation } from './openai-request.js';
import { readBody } from './read-body.js';
import type { ProgressOptions } from './record-progress.js';
import { relayResponse } from './relay-response.js';
import { resolveMasking, type DataPlaneMasking, type ExchangeMasking } from './masking-options.js';
import { withCredentialHint } from './misplaced-credential.js';
import { asksForJsonArrayStream, errorShapeOf, isNativeEmbeddingsPath, upstreamPathOf, type UpstreamPath } from './native-paths.js';
import { writeError } from './write-error.js';

export interface DataPlaneOptions {
  readonly connections: ReadonlyMap<string, HttpConnection>;
  readonly stages: PipelineStages;
  readonly maxRecordedBody: number;
  /** Masking profiles and the response guard (absent: answers pass as they are). */
  readonly masking?: DataPlaneMasking | undefined;
  /** Exchanges in flight, so a revocation can cut them (abort upstream, destroy socket). */
  readonly inFlight?: { register(id: string, identity: Identity, cut: (error: GatehouseError) => void): () => void; readonly ended?: GatehouseError | undefined } | undefined;
  /** Signs the identity assertion for connections with `identityAssertion`. */
  readonly assertIdentity?: ((identity: Identity, connection: string, ttlMs: number, exchangeId: string) => Promise<string>) | undefined;
  /** Cadence of progress writes while an answer streams (config audit.progress). */
  readonly progress?: ProgressOptions | undefined;
  /** Binds a re-execution token (`gatehouse-reexecution` header) to the new exchange (audit). */
  readonly bindReexecution?: ((exchangeId: string, token: string | string[] | undefined) => void) | undefined;
  /** Called for requests that never became an exchange (unknown route or connection). */
  readonly onUnrouted?: (error: GatehouseError) => void;
  /**
   * The exchanges are recorded (default true). False (`recording.enabled: false`, a
   * benchmark switch) skips what only the record reads: recordable headers, the body
   * text, chunk timings, progress writes, and the answer's text and usage (read all
   * the same when a token limit counts the usage).
   */
  readonly recording?: boolean | undefined;
  /** audit.raw: keep the answer as the target sent it, beside the masked one, for sealing. */
  readonly keepRawAnswer?: boolean | undefined;
  /** Longest silence while a request body arrives (default 30 s): 408 beyond. */
  readonly bodyIdleTimeoutMs?: number | undefined;
}

export function createDataPlaneHandler(options: DataPlaneOptions) {
  const { connections } = options;

  /**
   * The request declares a body (Content-Length) over its connection's limit: with
   * `Expect: 100-continue` the gateway then answers without `100 Continue` (server/gateway.ts),
   * so the client does not upload a body only to be refused with 413.
   */
  function declaresTooLarge(req: IncomingMessage): boolean {
    const declared = req.headers['content-length'];
    const route = declared === undefined ? undefined : parseDataPlanePath(req.url ?? '/');
    const connection = route ? connections.get(route.connection) : undefined;
    return connection !== undefined && Number(declared) > connection.maxRequestBody;
  }

  return Object.assign(handleDataPlane, { declaresTooLarge });

  function handleDataPlane(req: IncomingMessage, res: ServerResponse): void {
    const startedAt = Date.now();
    const started = performance.now();
    const route = parseDataPlanePath(req.url ?? '/');
    if (!route) return unrouted(res, new GatehouseError('route_not_found', { message: 'Not found. Data-plane requests go to /c/<connection>/<path>.' }));
    const path = policyPath(route.rest);
    if ('error' in path) return unrouted(res, new GatehouseError('invalid_path', { message: path.error }));
    const override = methodOverride(req);
    if (override !== undefined) return unrouted(res, new GatehouseError('method_not_allowed', { message: `The request is ${req.method} but asks the target to treat it as ${override} (a method-override header); policy decides on the request's own method, so the gateway does not forward an override that changes it. Send the request as ${override}.` }));
    const connection = connections.get(route.connection);
    if (!connection) {
      // The name is echoed back, so a credential pasted in its place is not.
      return unrouted(res, new GatehouseError('connection_not_found', { message: `No connection named "${redactPathCredentials(route.connection)}" is configured on this gateway.` }));
    }
    void runExchange(new HttpExchangeIO(options, req, res, connection, route.rest, path.path, startedAt, started), options.stages);
  }

  function unrouted(res: ServerResponse, error: GatehouseError): void {
    options.onUnrouted?.(error);
    writeError(res, error);
  }
}

/**
 * One HTTP exchange as the pipeline sees it. A class, so that the per-request state
 * lives in one object and the steps are shared methods, not a set of closures made for
 * every request; the caller's signal and the recordable request line are made only
 * when a stage reads them.
 */
class HttpExchangeIO implements ExchangeIO {
  readonly exchange: Exchange;
  readonly credential: string | undefined;
  readonly #options: DataPlaneOptions;
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  readonly #connection: HttpConnection;
  readonly #rest: string;
  readonly #pathname: string;
  #upstreamPathParts: UpstreamPath | undefined;
  readonly #started: number;
  #requestLine: RecordedRequest | undefined;
  #body: Buffer | undefined;
  /** The request as inspected (recorded unless masking scrubs it). */
  #recorded: RecordedRequest | undefined;
  /** This exchange's masking, resolved once from the decision (recordedRequest, then relay). */
  #masking: ExchangeMasking | undefined;
  /** The body to forward once request masking has run. */
  #forwardBody: Buffer | undefined;
  /** Ends an approval hold when the caller goes away before the answer (made when read). */
  #callerGone: AbortController | undefined;
  /** Aborts the upstream request when the caller goes away. */
  #upstream: ForwardAbort | undefined;
  #releaseInFlight: (() => void) | undefined;
  /** The client connection closed before the answer was complete. */
  #gone = false;
  /** Why the gateway itself cut the exchange (a revocation), so it is not recorded as the client's doing. */
  #cutBy: GatehouseError | undefined;

  /** `pathname`: the path as policy sees it (policyPath); the target gets `rest` as sent. */
  constructor(options: DataPlaneOptions, req: IncomingMessage, res: ServerResponse, connection: HttpConnection, rest: string, pathname: string, startedAt: number, started: number) {
    this.#options = options;
    this.#req = req;
    this.#res = res;
    this.#connection = connection;
    this.#rest = rest;
    this.#started = started;
    // The id goes out with whatever answer is written (relay or error), not through
    // setHeader: a response whose headers are all passed to writeHead skips Node's
    // per-header bookkeeping.
    const id = newId('ex', startedAt);
    const headers = req.headers;
    const reexecution = headers['gatehouse-reexecution'];
    if (reexecution !== undefined) options.bindReexecution?.(id, reexecution);
    const method = req.method ?? 'GET';
    this.#pathname = pathname;
    this.exchange = {
      id,
      sessionId: id,
      protocol: 'http',
      connection: connection.name,
      operation: connection.type === 'openai' ? openaiOperation(method, pathname) : httpOperation(method, pathname),
      startedAt,
      client: { address: req.socket.remoteAddress, userAgent: headers['user-agent'] },
      facts: { stream: false },
    };
    this.credential = bearerToken(headers.authorization);
    res.on('close', () => this.#closed());
  }

  /** What the request looks like before its body is read (recorded on early refusal). */
  get requestLine(): RecordedRequest {
    this.#requestLine ??= {
      method: this.#req.method ?? 'GET',
      path: recordablePath(this.#rest),
      headers: this.#options.recording === false ? {} : recordableHeaders(this.#req.headers),
      body: undefined,
      truncated: false,
    };
    return this.#requestLine;
  }

  get approval(): ExchangeIO['approval'] {
    const headers = this.#req.headers;
    return { justification: singleHeader(headers['gatehouse-justification']), reviewId: singleHeader(headers['gatehouse-review'])?.trim() };
  }

  /**
   * An `http` connection's body is not read as a prompt: its review shows the request
   * line with its query (`POST /jobs?dry_run=true`, credentials redacted as recorded) and
   * the body as recorded, so a reviewer sees what the approval is bound to.
   */
  reviewPreview(request: RecordedRequest): string | undefined {
    if (this.#connection.type !== 'http') return undefined;
    return request.body ? `${request.method} ${request.path}\n${request.body}` : `${request.method} ${request.path}`;
  }

  holdSignal(held: Exchange): AbortSignal {
    if (!this.#callerGone) {
      const controller = new AbortController();
      this.#callerGone = controller;
      if (this.#gone) controller.abort();
      // In flight while held, so a revocation of the identity (or a shutdown) ends the hold
      // at once; the relay's registration replaces this one.
      else if (held.identity && this.#options.inFlight) this.#releaseInFlight = this.#options.inFlight.register(held.id, held.identity, (error) => controller.abort(error));
    }
    return this.#callerGone.signal;
  }

  elapsedMs(): number {
    return performance.now() - this.#started;
  }

  #closed(): void {
    this.#releaseInFlight?.();
    if (this.#res.writableFinished) return;
    this.#gone = true;
    // Closed by the gateway at the end of a shutdown's grace period (an approval hold is
    // not registered in flight): the hold ends with that error, not client_closed.
    this.#callerGone?.abort(this.#options.inFlight?.ended);
    this.#upstream?.abort();
  }

  get requestRead(): RecordedRequest | undefined {
    return this.#recorded;
  }

  get bytesRead(): number | undefined {
    return this.#body?.length;
  }

  async inspect(): Promise<Inspection> {
    const req = this.#req;
    const body = await readBody(req, this.#connection.maxRequestBody, this.#options.bodyIdleTimeoutMs);
    this.#body = body;
    const operation = this.exchange.operation;
    const line = this.requestLine;
    let request: RecordedRequest = line;
    if (body.length > 0) {
      // A compressed body is recorded by size only, as a binary one: its bytes are not text.
      const requestEncoding = req.headers['content-encoding']?.trim().toLowerCase();
      const readable = requestEncoding === undefined || requestEncoding === '' || requestEncoding === 'identity';
      const recorded = this.#options.recording !== false && readable && isTextual(req.headers['content-type']) ? captureWhole(body, this.#options.maxRecordedBody) : undefined;
      request = { method: line.method, path: line.path, headers: line.headers, body: recorded?.text, truncated: recorded?.truncated ?? false };
    }
    // Before the body is decoded: a body refused as unreadable is recorded as it was sent.
    this.#recorded = request;
    // A compressed body cannot be read (the gateway does not decompress request bodies):
    // refused as unreadable, saying why rather than "not valid JSON".
    const encoding = req.headers['content-encoding']?.trim();
    if (this.#connection.type === 'openai' && !operation.startsWith('http.') && body.length > 0 && encoding && encoding.toLowerCase() !== 'identity') {
      throw new GatehouseError('invalid_request_body', { message: `The request body is compressed (Content-Encoding: ${encoding.replace(/[^\w ,.-]/g, '?').slice(0, 40)}); the gateway does not read compressed request bodies: send it uncompressed.` });
    }
    // Any other request with a compressed body: the target may decompress what the gateway
    // cannot read, so a rule on its text refuses it (fail closed) rather than not holding.
    const compressed = this.#connection.type === 'openai' && body.length > 0 && encoding !== undefined && encoding !== '' && encoding.toLowerCase() !== 'identity';
    const facts: RequestFacts =
      this.#connection.type === 'openai'
        ? withRequestLine(compressed ? { stream: false, textUnreadable: 'The request body is compressed (Content-Encoding); the gateway does not read compressed request bodies.' } : openaiFacts(operation, body, req.headers['content-type']), line.method, this.#pathname, body.length)
        : { stream: false, method: line.method, path: this.#pathname, bytes: body.length };
    const q = this.#rest.indexOf('?');
    return new HttpInspection(operation, facts, request, body, q < 0 ? '' : this.#rest.slice(q + 1));
  }

  #maskingFor(decision: Decision, operation: string): ExchangeMasking {
    this.#masking ??= resolveMasking(this.#options.masking, this.#connection, decision, operation);
    return this.#masking;
  }

  /** The scrubbed request, when request masking changed it: the record keeps masked content, the raw body is sealed only with audit.raw. */
  recordedRequest(exchange: Exchange, decision: Decision): { request: RecordedRequest; text: string | undefined } | undefined {
    const masking = this.#maskingFor(decision, exchange.operation);
    const body = this.#body;
    if (!masking.request || !body || body.length === 0) return undefined;
    const scrubbed = masking.scrub(body, this.#req.headers['content-type']);
    this.#forwardBody = scrubbed;
    const recorded = this.#recorded;
    if (scrubbed === body || !recorded || recorded.body === undefined) return undefined;
    return this.#scrubbedRecord(exchange.operation, scrubbed, recorded);
  }

  /**
   * The request as a refusal's record or a review's preview keeps it: scrubbed by the
   * request profiles that apply (the connection's, and the decision's when there is
   * one), as the model would have received it, so a refused request keeps no value an
   * allowed one would not. Nothing is forwarded or counted. A body that cannot be
   * scrubbed is not kept (only sealed, with audit.raw).
   */
  scrubbedForRecord(exchange: Exchange, decision: Decision | undefined, request: RecordedRequest): { request: RecordedRequest; text: string | undefined } | undefined {
    const body = this.#body;
    if (!body || body.length === 0 || request.body === undefined) return undefined;
    const unkept = { request: { ...request, body: undefined, truncated: false, rawBody: request.rawBody ?? request.body }, text: undefined };
    let masking: ExchangeMasking;
    try {
      masking = resolveMasking(this.#options.masking, this.#connection, decision, exchange.operation);
    } catch {
      // An obligation naming an unknown profile (the refusal itself): the connection's own still apply.
      try {
        masking = resolveMasking(this.#options.masking, this.#connection, undefined, exchange.operation);
      } catch {
        return unkept;
      }
    }
    if (!masking.request) return undefined;
    let scrubbed: Buffer;
    try {
      scrubbed = masking.scrub(body, this.#req.headers['content-type']);
    } catch {
      return unkept;
    }
    return scrubbed === body ? undefined : this.#scrubbedRecord(exchange.operation, scrubbed, request);
  }

  #scrubbedRecord(operation: string, scrubbed: Buffer, recorded: RecordedRequest): { request: RecordedRequest; text: string | undefined } {
    const masked = captureWhole(scrubbed, this.#options.maxRecordedBody);
    let text: string | undefined;
    try {
      text = this.#connection.type === 'openai' ? openaiFacts(operation, scrubbed, this.#req.headers['content-type']).text : undefined;
    } catch {
      text = undefined;
    }
    return { request: { ...recorded, body: masked.text, truncated: masked.truncated, rawBody: recorded.rawBody ?? recorded.body }, text };
  }

  async relay(admitted: Exchange, finish: (outcome: ExchangeOutcome) => Promise<void>, decision: Decision, progress: (progress: ExchangeProgress) => Promise<void>, needs: OutcomeNeeds): Promise<void> {
    const options = this.#options;
    const connection = this.#connection;
    const req = this.#req;
    const res = this.#res;
    const isOpenai = connection.type === 'openai';
    const masking = this.#maskingFor(decision, admitted.operation);
    const body = this.#body;
    const forwardBody = this.#forwardBody ?? (masking.request && body ? masking.scrub(body, req.headers['content-type']) : body);
    const controller = new ForwardAbort();
    this.#upstream = controller;
    // The caller went away while the request was being decided: nothing to forward to.
    if (this.#gone) controller.abort();
    if (admitted.identity && options.inFlight && !this.#gone) {
      this.#releaseInFlight = options.inFlight.register(admitted.id, admitted.identity, (error) => {
        this.#cutBy = error;
        controller.abort();
        res.destroy();
      });
    }
    const bodyLength = forwardBody && forwardBody.length > 0 ? forwardBody.length : undefined;
    // An answer that is read (OpenAI answers, masking, the credential scan) is asked for uncompressed.
    const identityEncoding = isOpenai || masking.response !== undefined || connection.credentialEcho !== undefined;
    const headers = upstreamRequestHeaders(req.headers, { identityEncoding, bodyLength, clientAddress: req.socket.remoteAddress, callerCredential: this.credential });
    const assertion = connection.identityAssertion;
    if (assertion) {
      // Never pass on a caller's own value of the header; without an identity or a signer, send none.
      delete headers[assertion.header];
      if (admitted.identity && options.assertIdentity) headers[assertion.header] = await options.assertIdentity(admitted.identity, connection.name, assertion.ttlMs, admitted.id);
    }
    let upstream;
    try {
      upstream = await connection.forwarder.forward({
        method: req.method ?? 'GET',
        path: joinUpstreamPath(connection.basePath, this.#rest, connection.baseQuery),
        headers,
        body: bodyLength === undefined ? undefined : forwardBody,
        signal: controller,
      });
    } catch (error) {
      throw this.#cutBy ?? (res.destroyed ? new GatehouseError('client_closed') : mapUpstreamError(error, connection.name));
    }
    const recording = options.recording !== false;
    // The answer's text and usage are read for the record, and for a token limit (an
    // embeddings answer has no text, but its usage counts as a chat answer's does).
    const readAnswer = isOpenai && (recording || needs.usage);
    await relayResponse({
      res,
      upstream,
      connection: connection.name,
      exchangeId: admitted.id,
      readAnswer,
      readAnswerNow: needs.usage,
      // A policy or limit obligation may only lower the connection's cap.
      maxResponseBody: Math.min(connection.maxResponseBody, decision.obligations?.maxResponseBytes ?? Infinity),
      maxRecordedBody: options.maxRecordedBody,
      bytesIn: body?.length ?? 0,
      ttfbMs: this.elapsedMs(),
      elapsedMs: () => this.elapsedMs(),
      finish,
      record: recording,
      keepRawAnswer: recording && options.keepRawAnswer === true,
      progress: recording ? { intervalMs: options.progress?.intervalMs ?? 250, bytes: options.progress?.bytes ?? 64 * 1024, report: progress } : undefined,
      credentialEcho: connection.credentialEcho,
      maskPlan: masking.response,
      responseGuard: options.masking?.responseGuard?.(decision),
      isEmbeddings: admitted.operation === 'embeddings',
      jsonArrayStream: asksForJsonArrayStream(this.#upstreamPath),
      nativeEmbeddings: admitted.operation !== 'embeddings' && isNativeEmbeddingsPath(this.#upstreamPath),
      errorShape: errorShapeOf(this.#upstreamPath),
      maxMaskBuffer: options.masking?.maxBufferBytes,
      requestCounts: masking.requestCounts,
      cutBy: () => this.#cutBy,
    });
  }

  /** The path the target gets (the target's path joined with the caller's): what it says about the answer. */
  get #upstreamPath(): UpstreamPath {
    this.#upstreamPathParts ??= upstreamPathOf(this.#connection, this.#rest);
    return this.#upstreamPathParts;
  }

  fail(error: GatehouseError): void {
    writeError(this.#res, withCredentialHint(error, this.#req.headers), this.exchange.id, errorShapeOf(this.#upstreamPath));
  }
}

/**
 * `{ ...facts, method, path, bytes }`, copied key by key: V8 (Node 20) gives every object
 * a spread with new keys makes a hidden class of its own (see run-exchange.ts).
 */
function withRequestLine(facts: RequestFacts, method: string, path: string, bytes: number): RequestFacts {
  const out: Record<string, unknown> = {};
  for (const key in facts) out[key] = facts[key as keyof RequestFacts];
  out['method'] = method;
  out['path'] = path;
  out['bytes'] = bytes;
  return out as unknown as RequestFacts;
}

class HttpInspection implements Inspection {
  readonly operation: string;
  readonly facts: RequestFacts;
  readonly request: RecordedRequest;
  readonly #body: Buffer;
  /** The query string as sent (after `?`): an approval is for it too. */
  readonly #query: string;

  constructor(operation: string, facts: RequestFacts, request: RecordedRequest, body: Buffer, query: string) {
    this.operation = operation;
    this.facts = facts;
    this.request = request;
    this.#body = body;
    this.#query = query;
  }

  /** Hashing the canonical body costs; only an approval hold reads it. */
  get digest(): string {
    return requestDigest(this.#body, this.#query);
  }
}

/**
 * Headers by which many frameworks (Express method-override, Rails, ASP.NET, Google
 * APIs) route a request as another method: `POST` + `X-HTTP-Method-Override: GET` would
 * be a GET to the target that a rule on `methods: [GET]` never saw.
 */
const methodOverrideHeaders = ['x-http-method-override', 'x-http-method', 'x-method-override'] as const;

/** The other method a method-override header asks for (sanitised for the message), or undefined. */
function methodOverride(req: IncomingMessage): string | undefined {
  for (const name of methodOverrideHeaders) {
    const value = req.headers[name];
    if (value === undefined) continue;
    const text = (Array.isArray(value) ? value.join(',') : value).trim();
    if (text.toUpperCase() !== (req.method ?? 'GET')) return text.replace(/[^\w-]/g, '?').slice(0, 20) || '?';
  }
  return undefined;
}

function singleHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
