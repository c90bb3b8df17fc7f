// Streams the target's answer to the client as it arrives: no buffering, write
// backpressure honoured, client aborts propagated upstream (via the abort signal the
// forwarder was given), the response size limit enforced per chunk. The outcome is
// recorded (finish) before the last byte is released.

import type { ServerResponse } from 'node:http';
import { GatehouseError } from '../../errors/index.js';
import type { ExchangeOutcome } from '../../exchange/index.js';
import { recordableHeaders } from '../../audit/index.js';
import type { ForwardResponse } from '../../forward/index.js';
import { BodyCapture, isTextual } from './body-capture.js';
import { downstreamResponseHeaders } from './headers.js';
import { SseAnswerReader, summarizeJsonAnswer, type AnswerSummary } from './openai-response.js';

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
  /** Sees each chunk as it is relayed (audit progress writes, chunk timings). */
  readonly onChunk?: ((chunk: Buffer) => void) | undefined;
}

export async function relayResponse(options: RelayOptions): Promise<void> {
  const { res, upstream } = options;
  const declaredLength = Number(headerValue(upstream.headers['content-length']) ?? 0);
  if (declaredLength > options.maxResponseBody) {
    // Known before a byte is sent: refuse with a proper error instead of a cut answer.
    upstream.body.destroy();
    throw new GatehouseError('response_too_large', { detail: `connection ${options.connection}: content-length ${declaredLength} > limit ${options.maxResponseBody}` });
  }
  const contentType = headerValue(upstream.headers['content-type']);
  const isSse = contentType?.toLowerCase().startsWith('text/event-stream') ?? false;
  const capture = isTextual(contentType) ? new BodyCapture(options.maxRecordedBody) : undefined;
  const sse = options.readAnswer && isSse ? new SseAnswerReader({ maxTextBytes: options.maxRecordedBody }) : undefined;

  res.writeHead(upstream.status, downstreamResponseHeaders(upstream.headers));
  if (isSse) res.flushHeaders();

  let bytesOut = 0;
  let failure: GatehouseError | undefined;
  try {
    for await (const chunk of upstream.body as AsyncIterable<Buffer>) {
      bytesOut += chunk.length;
      if (bytesOut > options.maxResponseBody) {
        throw new GatehouseError('response_too_large', { detail: `connection ${options.connection}: answer exceeds ${options.maxResponseBody} bytes` });
      }
      capture?.push(chunk);
      sse?.push(chunk);
      options.onChunk?.(chunk);
      if (!res.write(chunk)) await drained(res);
      if (res.destroyed) throw new GatehouseError('client_closed');
    }
  } catch (error) {
    failure = res.destroyed ? new GatehouseError('client_closed') : toRelayError(error, options.connection);
    upstream.body.destroy();
  }

  let answer: AnswerSummary | undefined;
  if (sse) answer = sse.summary();
  else if (options.readAnswer && capture && !capture.truncated && failure === undefined) answer = summarizeJsonAnswer(capture.text());

  const outcome: ExchangeOutcome = {
    status: upstream.status,
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
  };

  try {
    await options.finish(outcome);
  } catch {
    // The answer could not be recorded: fail closed by not completing it.
    res.destroy();
    return;
  }
  if (failure) res.destroy();
  else res.end();
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
