// Streams the target's answer to the client as it arrives, through at most one
// response filter (masking, response guard, embeddings; see response-filters.ts):
// write backpressure honoured, client aborts propagated upstream (via the abort signal
// the forwarder was given), the response size limit enforced per upstream chunk. The
// outcome is recorded (finish) before the last byte is released, and what is recorded
// is what the client got (masked), with counts of masked entities by type.
//
// Fail closed: a filter error ends the answer with an error — a proper error answer
// when the filter buffers (nothing was sent yet), an SSE `error` event followed by the
// end of the stream otherwise — never with the unfiltered bytes.

import type { ServerResponse } from 'node:http';
import { GatehouseError } from '../../errors/index.js';
import type { ExchangeOutcome } from '../../exchange/index.js';
import { recordableHeaders } from '../../audit/index.js';
import type { ForwardResponse } from '../../forward/index.js';
import type { EntityCounts, MaskPlan } from '../../mask/index.js';
import { BodyCapture, isTextual } from './body-capture.js';
import { downstreamResponseHeaders } from './headers.js';
import { SseAnswerReader, summarizeJsonAnswer, type AnswerSummary } from './openai-response.js';
import { chooseResponseFilter, type ResponseFilter, type ResponseGuard } from './response-filters.js';
import { errorEnvelope, writeError } from './write-error.js';

/** The last chunk of a Content-Length answer up to this size is held whole (see send). */
const holdWholeBytes = 64 * 1024;

export interface RelayOptions {
  readonly res: ServerResponse;
  readonly upstream: ForwardResponse;
  readonly connection: string;
  readonly readAnswer: boolean;
  readonly maxResponseBody: number;
  readonly maxRecordedBody: number;
  readonly bytesIn: number;
  readonly ttfbMs: number;
  readonly elapsedMs: () => number;
  readonly finish: (outcome: ExchangeOutcome) => Promise<void>;
  /** Response-side masking for this exchange (undefined: none). */
  readonly maskPlan?: MaskPlan | undefined;
  /** Response-side guardrail check over the answer text (undefined: none). */
  readonly responseGuard?: ResponseGuard | undefined;
  readonly isEmbeddings?: boolean | undefined;
  /** Largest non-streamed answer held for masking. */
  readonly maxMaskBuffer?: number | undefined;
  /** Entities already masked in the request (scrubbing), added to the recorded counts. */
  readonly requestCounts?: EntityCounts | undefined;
  /** Sees each chunk as it is relayed (audit progress writes, chunk timings). */
  readonly onChunk?: ((chunk: Buffer) => void) | undefined;
}

export async function relayResponse(options: RelayOptions): Promise<void> {
  const { res, upstream } = options;
  const declaredLength = Number(headerValue(upstream.headers['content-length']) ?? 0);
  if (declaredLength > options.maxResponseBody) {
    // Known before a byte is sent: refuse with a proper error instead of a cut answer.
    discard(upstream);
    throw new GatehouseError('response_too_large', { detail: `connection ${options.connection}: content-length ${declaredLength} > limit ${options.maxResponseBody}` });
  }
  const contentType = headerValue(upstream.headers['content-type']);
  const isSse = contentType?.toLowerCase().startsWith('text/event-stream') ?? false;
  const capture = isTextual(contentType) ? new BodyCapture(options.maxRecordedBody) : undefined;
  const sse = options.readAnswer && isSse ? new SseAnswerReader({ maxTextBytes: options.maxRecordedBody }) : undefined;
  const counts: EntityCounts = { ...options.requestCounts };
  const filterWanted = options.maskPlan !== undefined || options.responseGuard !== undefined;
  const encoding = headerValue(upstream.headers['content-encoding']);
  const filter: ResponseFilter | undefined =
    filterWanted && (isSse || isTextual(contentType))
      ? chooseResponseFilter({
          isSse,
          isEmbeddings: options.isEmbeddings ?? false,
          plan: options.maskPlan,
          guard: options.responseGuard,
          counts,
          maxBufferBytes: Math.min(options.maxMaskBuffer ?? 16 * 1024 * 1024, options.maxResponseBody),
          maxGuardTextBytes: options.maxRecordedBody,
        })
      : undefined;

  const headers = downstreamResponseHeaders(upstream.headers);
  if (filter) delete headers['content-length'];
  let failure: GatehouseError | undefined;
  if (filter && encoding !== undefined && encoding.toLowerCase() !== 'identity') {
    failure = new GatehouseError('masking_failed', { detail: `connection ${options.connection}: cannot mask a ${encoding}-encoded answer` });
    discard(upstream);
  }
  if (!failure && !filter?.buffered) {
    res.writeHead(upstream.status, headers);
    if (isSse) res.flushHeaders();
  }

  let bytesOut = 0;
  let upstreamBytes = 0;
  // With a Content-Length, the client has the whole answer once the last byte arrives,
  // before res.end(): the chunk that completes it is held until the record is committed
  // (finish), so the record is durable before the answer is complete for the client.
  // Held whole when small, so a typical JSON answer leaves in one write with its
  // headers; otherwise only its last byte is held.
  let heldLastByte: Buffer | undefined;
  const send = async (data: string | Buffer) => {
    if (data.length === 0) return;
    let chunk = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    bytesOut += chunk.length;
    capture?.push(chunk);
    sse?.push(chunk);
    options.onChunk?.(chunk);
    const declared = Number(res.getHeader('content-length') ?? Number.NaN);
    if (bytesOut >= declared) {
      const held = chunk.length <= holdWholeBytes ? 0 : chunk.length - 1;
      heldLastByte = chunk.subarray(held);
      chunk = chunk.subarray(0, held);
      if (chunk.length === 0) return;
    }
    if (!res.write(chunk)) await drained(res);
    if (res.destroyed) throw new GatehouseError('client_closed');
  };
  try {
    if (failure) throw failure;
    for await (const chunk of upstream.body as AsyncIterable<Buffer>) {
      upstreamBytes += chunk.length;
      if (upstreamBytes > options.maxResponseBody) {
        throw new GatehouseError('response_too_large', { detail: `connection ${options.connection}: answer exceeds ${options.maxResponseBody} bytes` });
      }
      await send(filter ? filterStep(() => filter.push(chunk), options.connection) : chunk);
    }
    if (filter) {
      const tail = filterStep(() => filter.end(), options.connection);
      if (filter.buffered) {
        headers['content-length'] = String(Buffer.byteLength(tail));
        res.writeHead(upstream.status, headers);
      }
      await send(tail);
    }
  } catch (error) {
    failure = res.destroyed ? new GatehouseError('client_closed') : toRelayError(error, options.connection);
    discard(upstream);
  }

  let answer: AnswerSummary | undefined;
  if (sse) answer = sse.summary();
  else if (options.readAnswer && capture && !capture.truncated && failure === undefined) answer = summarizeJsonAnswer(capture.text());

  const outcome: ExchangeOutcome = {
    status: res.headersSent ? upstream.status : (failure?.status ?? upstream.status),
    complete: failure === undefined,
    bytesIn: options.bytesIn,
    bytesOut,
    ttfbMs: options.ttfbMs,
    durationMs: options.elapsedMs(),
    responseHeaders: recordableHeaders(upstream.headers),
    responseBody: capture?.text(),
    responseTruncated: capture?.truncated ?? false,
    responseText: answer?.text,
    usage: answer?.usage,
    errorCode: failure?.code,
    errorDetail: failure?.detail,
    maskCounts: Object.keys(counts).length > 0 ? counts : undefined,
  };

  try {
    await options.finish(outcome);
  } catch {
    // The answer could not be recorded: fail closed by not completing it.
    res.destroy();
    return;
  }
  if (!failure) res.end(heldLastByte);
  else if (!res.headersSent) writeError(res, failure, res.getHeader('gatehouse-exchange-id') as string | undefined);
  else if (isSse && filter && !res.destroyed && (failure.code === 'masking_failed' || failure.code === 'response_blocked')) {
    // Mid-stream: an error event the OpenAI clients raise as an APIError, then the end.
    res.end(`event: error\ndata: ${errorEnvelope(failure)}\n\n`);
  } else res.destroy();
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
  return new GatehouseError('upstream_failed', { detail: `connection ${connection}: answer interrupted: ${(error as Error).message}`, cause: error });
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
