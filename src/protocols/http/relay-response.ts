// Streams the target's answer to the client as it arrives, through at most one
// response filter (masking, response guard, embeddings; see response-filters.ts):
// write backpressure honoured, client aborts propagated upstream (via the abort signal
// the forwarder was given), the response size limit enforced per upstream chunk. The
// outcome is recorded (finish) before the last byte is released, and what is recorded
// is what the client got (masked), with counts of masked entities by type.
//
// Before any filter, the answer of a connection with a credential is scanned for that
// credential (credential-echo.ts): what the filter, the client and the record see is
// the scrubbed answer. A compressed answer that must be read is decoded first
// (decode-answer.ts) and sent as it was decoded.
//
// Fail closed: a filter error ends the answer with an error — a proper error answer
// when the filter buffers (nothing was sent yet), an SSE `error` event followed by the
// end of the stream otherwise — never with the unfiltered bytes.

import type { ServerResponse } from 'node:http';
import { GatehouseError } from '../../errors/index.js';
import type { ExchangeOutcome, UnreadAnswerFormat } from '../../exchange/index.js';
import { recordableHeaders } from '../../audit/index.js';
import type { ForwardResponse } from '../../forward/index.js';
import type { EntityCounts, MaskPlan } from '../../mask/index.js';
import type { ExchangeProgress } from '../../audit/index.js';
import { BodyCapture, isOpaque, isTextual } from './body-capture.js';
import { CredentialEchoScrubber, scrubHeaders, type CredentialEchoForms } from './credential-echo.js';
import { answerDecoder, forEachDecodedChunk } from './decode-answer.js';
import { downstreamResponseHeaders, maskResponseHeaders } from './headers.js';
import { SseAnswerReader, summarizeJsonAnswer, type AnswerSummary } from './openai-response.js';
import { ProgressTracker, type ProgressOptions } from './record-progress.js';
import { answerCharset, chooseResponseFilter, utf8ContentType, type ResponseFilter, type ResponseGuard } from './response-filters.js';
import { forEachChunk } from './stream-chunks.js';
import { writeError, type ErrorShape } from './write-error.js';

/** The last chunk of a Content-Length answer up to this size is held whole (see send). */
const holdWholeBytes = 64 * 1024;

export interface RelayOptions {
  readonly res: ServerResponse;
  readonly upstream: ForwardResponse;
  readonly connection: string;
  /** Sent as `gatehouse-exchange-id` with the answer (an upstream's own value never passes). */
  readonly exchangeId: string;
  readonly readAnswer: boolean;
  /**
   * A plain JSON answer's text and usage are needed on this thread (a token limit);
   * otherwise, when it is recorded whole, the recorder reads them off this thread.
   */
  readonly readAnswerNow: boolean;
  readonly maxResponseBody: number;
  readonly maxRecordedBody: number;
  readonly bytesIn: number;
  readonly ttfbMs: number;
  readonly elapsedMs: () => number;
  readonly finish: (outcome: ExchangeOutcome) => Promise<void>;
  /** The connection's credential, looked for in the answer (undefined: none injected). */
  readonly credentialEcho?: CredentialEchoForms | undefined;
  /** Response-side masking for this exchange (undefined: none). */
  readonly maskPlan?: MaskPlan | undefined;
  /** Response-side guardrail check over the answer text (undefined: none). */
  readonly responseGuard?: ResponseGuard | undefined;
  readonly isEmbeddings?: boolean | undefined;
  /** How an error answer before the headers is written (Ollama's native API: its own shape). */
  readonly errorShape?: ErrorShape | undefined;
  /** The request is an embeddings call of a native API (Ollama, Gemini, Cohere, Bedrock): an embeddings rule applies. */
  readonly nativeEmbeddings?: boolean | undefined;
  /** The request asked for a JSON array streamed element by element (Gemini's `:streamGenerateContent` without `alt=sse`). */
  readonly jsonArrayStream?: boolean | undefined;
  /** Largest non-streamed answer held for masking. */
  readonly maxMaskBuffer?: number | undefined;
  /** Entities already masked in the request (scrubbing), added to the recorded counts. */
  readonly requestCounts?: EntityCounts | undefined;
  /**
   * The exchange is recorded (default true). Without a recording, what only the record
   * reads is not kept: the body, the recordable headers, chunk timings, progress.
   */
  readonly record?: boolean | undefined;
  /** audit.raw: when a filter changes the answer, keep the target's own bytes too (rawResponseBody). */
  readonly keepRawAnswer?: boolean | undefined;
  /** Why the gateway cut the exchange itself (a revocation), if it did: recorded instead of client_closed. */
  readonly cutBy?: (() => GatehouseError | undefined) | undefined;
  /** Progress writes while the answer streams (audit progress), and chunk timings. */
  readonly progress?: (ProgressOptions & { readonly report: (progress: ExchangeProgress) => Promise<void> }) | undefined;
}

export async function relayResponse(options: RelayOptions): Promise<void> {
  const { res, upstream } = options;
  const upstreamHeaders = upstream.headers;
  const declaredLength = Number(headerValue(upstreamHeaders['content-length']) ?? 0);
  if (declaredLength > options.maxResponseBody) {
    // Known before a byte is sent: refuse with a proper error instead of a cut answer.
    discard(upstream);
    throw new GatehouseError('response_too_large', { detail: `connection ${options.connection}: content-length ${declaredLength} > limit ${options.maxResponseBody}` });
  }
  const record = options.record ?? true;
  const contentType = headerValue(upstreamHeaders['content-type']);
  const isSse = contentType !== undefined && sseType.test(contentType);
  // Ollama streams NDJSON: masked line by line as it streams (a declared non-UTF-8 charset is held whole instead).
  const isNdjson = !isSse && contentType !== undefined && ndjsonType.test(contentType) && answerCharset(contentType) === undefined;
  // Bedrock's streams: binary frames around the model's JSON, masked frame by frame (as bytes, they passed raw).
  const isAwsEventStream = contentType !== undefined && awsEventStreamType.test(contentType);
  // Gemini's streamGenerateContent without alt=sse: one JSON array, an element per chunk, masked element by element as it streams.
  const isJsonArrayStream = options.jsonArrayStream === true && !isSse && contentType !== undefined && jsonType.test(contentType) && answerCharset(contentType) === undefined;
  const textual = isTextual(contentType);
  const filterWanted = options.maskPlan !== undefined || options.responseGuard !== undefined;
  // A filter (or the credential scan) adds the answer's masked entities to the request's; without one they are read only.
  const counts: EntityCounts = filterWanted || options.credentialEcho ? { ...options.requestCounts } : (options.requestCounts ?? noCounts);
  const scrubber = options.credentialEcho ? new CredentialEchoScrubber(options.credentialEcho, counts) : undefined;
  const encoding = headerValue(upstreamHeaders['content-encoding']);
  // An opaque answer (application/octet-stream …) may be text all the same, e.g. a
  // JSONL file of model answers: with masking it is held and masked if it is UTF-8.
  const opaque = !isSse && options.maskPlan !== undefined && isOpaque(contentType);
  const filter: ResponseFilter | undefined =
    filterWanted && (isSse || textual || opaque || isAwsEventStream)
      ? chooseResponseFilter({
          isSse,
          isNdjson,
          ndjsonStream: isNdjson && streamJsonType.test(contentType),
          isAwsEventStream,
          isJsonArrayStream,
          isEmbeddings: options.isEmbeddings ?? false,
          isNativeEmbeddings: options.nativeEmbeddings,
          plan: options.maskPlan,
          guard: options.responseGuard,
          counts,
          maxBufferBytes: Math.min(options.maxMaskBuffer ?? 16 * 1024 * 1024, options.maxResponseBody),
          maxGuardTextBytes: options.maxRecordedBody,
          charset: isSse ? undefined : answerCharset(contentType),
          opaque,
          mayBeStream: opaque || contentType === undefined || contentType.trim() === '' || jsonType.test(contentType),
        })
      : undefined;

  // An answer that is read (scanned or filtered) and compressed all the same is decoded;
  // one in a coding the gateway cannot decode is refused below.
  const coding = answerDecoder(encoding);
  const decoder = scrubber || filter ? coding : undefined;
  // A compressed answer passed as it is (an `http` connection's with nothing to read
  // it, when the client accepts gzip) is recorded by size only, as a binary one, not as
  // its compressed bytes read for text; a decoded one is read as it was decoded.
  const readable = coding === undefined || typeof decoder === 'function';
  const sse = options.readAnswer && isSse && readable ? new SseAnswerReader({ maxTextBytes: options.maxRecordedBody }) : undefined;
  // Without a recording the body is kept only to read a JSON answer's usage from it.
  const capture = textual && readable && (record || (options.readAnswer && sse === undefined)) ? new BodyCapture(options.maxRecordedBody) : undefined;
  const progress = options.progress;
  const tracker = record && progress ? new ProgressTracker({ intervalMs: progress.intervalMs, bytes: progress.bytes, report: progress.report, capture, sse, elapsedMs: options.elapsedMs, status: upstream.status, ttfbMs: options.ttfbMs, bytesIn: options.bytesIn }) : undefined;
  // Headers carry values as the body does: scrubbed, then masked with the same plan, for the client and the record.
  const scrubbedHeaders = options.credentialEcho ? scrubHeaders(upstreamHeaders, options.credentialEcho, counts) : upstreamHeaders;
  let shownHeaders = options.maskPlan ? maskResponseHeaders(scrubbedHeaders, options.maskPlan, counts) : scrubbedHeaders;
  if (decoder) {
    shownHeaders = { ...shownHeaders };
    delete shownHeaders['content-encoding'];
    delete shownHeaders['content-length'];
  }
  const headers = downstreamResponseHeaders(shownHeaders);
  headers['gatehouse-exchange-id'] = options.exchangeId;
  if (filter) delete headers['content-length'];
  // A buffered answer in another charset is decoded from it and written in UTF-8.
  if (filter?.buffered && contentType !== undefined && answerCharset(contentType) !== undefined) headers['content-type'] = utf8ContentType(contentType);
  let failure: GatehouseError | undefined;
  if (decoder === false) {
    const what = filter ? `mask a ${encoding}-encoded answer` : `scan a ${encoding}-encoded answer for the target credential`;
    failure = new GatehouseError('masking_failed', { detail: `connection ${options.connection}: cannot ${what}` });
    discard(upstream);
  }
  // Writes made in one turn of the event loop leave in one system call: the socket is
  // corked at the first and uncorked on the next turn (or by res.end()). So a stream's
  // headers go out with the events that came with them, and the last events with the
  // end of the answer, instead of one write each.
  let corked = false;
  const uncork = () => {
    if (!corked) return;
    corked = false;
    if (!res.writableEnded) res.uncork();
  };
  const batch = () => {
    if (corked) return;
    corked = true;
    res.cork();
    setImmediate(uncork);
  };
  // The Content-Length the client was promised (NaN: none, the answer is chunked).
  let declared = Number.NaN;
  if (!failure && !filter?.buffered) {
    res.writeHead(upstream.status, headers);
    declared = contentLengthOf(headers);
    if (isSse) {
      // An event stream's headers leave now (a model may take seconds to its first token).
      batch();
      res.flushHeaders();
    }
  }

  // The answer as the target sent it, for sealing (audit.raw), bounded like the recorded one.
  const rawCapture = filter && options.keepRawAnswer ? new BodyCapture(options.maxRecordedBody) : undefined;
  let bytesOut = 0;
  let upstreamBytes = 0;
  // With a Content-Length, the client has the whole answer once the last byte arrives,
  // before res.end(): the chunk that completes it is held until the record is committed
  // (finish), so the record is durable before the answer is complete for the client.
  // Held whole when small, so a typical JSON answer leaves in one write with its
  // headers; otherwise only its last byte is held.
  let heldLastByte: Buffer | undefined;
  const send = (data: string | Buffer): Promise<void> | undefined => {
    if (data.length === 0) return undefined;
    tracker?.throwIfFailed();
    let chunk = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    bytesOut += chunk.length;
    capture?.push(chunk);
    sse?.push(chunk);
    tracker?.push(chunk);
    if (bytesOut >= declared) {
      const held = chunk.length <= holdWholeBytes ? 0 : chunk.length - 1;
      heldLastByte = chunk.subarray(held);
      chunk = chunk.subarray(0, held);
      if (chunk.length === 0) return undefined;
    }
    batch();
    if (!res.write(chunk)) return drained(res).then(checkOpen);
    checkOpen();
    return undefined;
  };
  const checkOpen = () => {
    if (res.destroyed) throw new GatehouseError('client_closed');
  };
  try {
    if (failure) throw failure;
    const onChunk = (chunk: Buffer) => {
      upstreamBytes += chunk.length;
      if (upstreamBytes > options.maxResponseBody) {
        throw new GatehouseError('response_too_large', { detail: `connection ${options.connection}: answer exceeds ${options.maxResponseBody} bytes` });
      }
      // The length-preserving scrub keeps the limit and a Content-Length true.
      const scrubbed = scrubber ? scrubber.push(chunk) : chunk;
      rawCapture?.push(scrubbed);
      return send(filter ? filterStep(() => filter.push(scrubbed), options.connection) : scrubbed);
    };
    if (decoder) await forEachDecodedChunk(upstream, decoder(), onChunk);
    else await (upstream.readChunks ? upstream.readChunks(onChunk) : forEachChunk(upstream.body, onChunk));
    if (scrubber) {
      const rest = scrubber.end();
      rawCapture?.push(rest);
      await send(filter ? filterStep(() => filter.push(rest), options.connection) : rest);
    }
    if (filter) {
      const tail = filterStep(() => filter.end(), options.connection);
      if (filter.buffered) {
        headers['content-length'] = String(Buffer.byteLength(tail));
        res.writeHead(upstream.status, headers);
        declared = Buffer.byteLength(tail);
      }
      await send(tail);
    }
  } catch (error) {
    failure = options.cutBy?.() ?? (res.destroyed ? new GatehouseError('client_closed') : toRelayError(error, options.connection));
    discard(upstream);
  }

  let answer: AnswerSummary | undefined;
  let unreadAnswer: UnreadAnswerFormat | undefined;
  if (sse) answer = sse.summary();
  else if (options.readAnswer && capture && !capture.truncated && failure === undefined) {
    if (options.readAnswerNow || !record) answer = summarizeJsonAnswer(capture.text());
    else unreadAnswer = 'openai-json';
  }

  const outcome: ExchangeOutcome = {
    status: res.headersSent ? upstream.status : (failure?.status ?? upstream.status),
    complete: failure === undefined,
    bytesIn: options.bytesIn,
    bytesOut,
    ttfbMs: options.ttfbMs,
    durationMs: options.elapsedMs(),
    responseHeaders: record ? recordableHeaders(shownHeaders) : undefined,
    responseBody: record ? capture?.text() : undefined,
    responseTruncated: record ? (capture?.truncated ?? false) : false,
    responseText: answer?.text,
    usage: answer?.usage,
    unreadAnswer,
    errorCode: failure?.code,
    errorDetail: failure?.detail,
    maskCounts: hasKeys(counts) ? counts : undefined,
    chunkTimings: tracker?.timings.toJSON(),
    rawResponseBody: rawCapture?.text(),
  };

  try {
    await options.finish(outcome);
  } catch {
    // The answer could not be recorded: fail closed by not completing it.
    res.destroy();
    return;
  }
  if (!failure) res.end(heldLastByte);
  else if (!res.headersSent) writeError(res, failure, options.exchangeId, options.errorShape);
  else if (filter?.failureTail && !res.destroyed && (failure.code === 'masking_failed' || failure.code === 'response_blocked')) {
    // Mid-stream: an error in the answer's own framing (an SSE `error` event the OpenAI
    // clients raise as an APIError, an Ollama error line, a Bedrock exception), then the end.
    res.end(filter.failureTail(failure));
  } else res.destroy();
}

const sseType = /^text\/event-stream/i;
const ndjsonType = /^application\/(?:(?:x-)?ndjson|stream\+json)\s*(?:;|$)/i;
/** A stream by its type (Cohere v1's chat stream), not a file of records: its lines may continue each other's text. */
const streamJsonType = /^application\/stream\+json\s*(?:;|$)/i;
const jsonType = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;
const awsEventStreamType = /^application\/vnd\.amazon\.eventstream\s*(?:;|$)/i;
const noCounts: EntityCounts = Object.freeze({});

function contentLengthOf(headers: Record<string, string | string[]>): number {
  const value = headers['content-length'];
  return value === undefined ? Number.NaN : Number(Array.isArray(value) ? value[0] : value);
}

function hasKeys(object: object): boolean {
  for (const _ in object) return true;
  return false;
}

/** Runs a filter step; any failure that is not already typed is a masking failure. */
function filterStep<T>(step: () => T, connection: string): T {
  try {
    return step();
  } catch (error) {
    if (error instanceof GatehouseError) throw error;
    throw new GatehouseError('masking_failed', { detail: `connection ${connection}: ${(error as Error).message}`, cause: error });
  }
}

/** Drops the upstream body; the abort error its destruction emits is expected. */
function discard(upstream: ForwardResponse): void {
  if (upstream.cancel) {
    upstream.cancel();
    return;
  }
  upstream.body.on('error', () => undefined);
  upstream.body.destroy();
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

function toRelayError(error: unknown, connection: string): GatehouseError {
  if (error instanceof GatehouseError) return error;
  const detail = `connection ${connection}: answer interrupted: ${(error as Error).message}`;
  // the target went silent mid-answer for longer than timeouts.body (undici's BodyTimeoutError)
  if ((error as { code?: string }).code === 'UND_ERR_BODY_TIMEOUT') return new GatehouseError('upstream_timeout', { detail, cause: error });
  return new GatehouseError('upstream_failed', { detail, cause: error });
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
