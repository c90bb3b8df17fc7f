// Progress of a streamed answer, for the recording: sees every relayed chunk (a hook in
// relay-response.ts), keeps chunk timings, and reports what the recording would keep
// (the bounded body and the SSE answer text the relay is already collecting) at most
// every `intervalMs` or `bytes`, and never while the previous report is still being
// written. So a gateway killed mid-stream leaves a record at most that far behind what
// the client received. A report that fails (the store went away) cuts the answer at the
// next chunk: relaying on unrecorded would let a kill lose everything sent since.

import { ChunkTimings, type ExchangeProgress } from '../../audit/index.js';
import { GatehouseError } from '../../errors/index.js';
import type { BodyCapture } from './body-capture.js';
import type { SseAnswerReader } from './openai-response.js';

export interface ProgressOptions {
  readonly intervalMs: number;
  readonly bytes: number;
}

export interface ProgressSources {
  /** The relay's capture of the answer body (undefined: not textual). */
  readonly capture: BodyCapture | undefined;
  /** The relay's reader of the streamed answer text (undefined: not SSE). */
  readonly sse: SseAnswerReader | undefined;
  readonly elapsedMs: () => number;
  readonly report: (progress: ExchangeProgress) => Promise<void>;
  /** The answer's status, its first byte and the request's size, for a record cut off mid-stream. */
  readonly status: number;
  readonly ttfbMs: number;
  readonly bytesIn: number;
}

export class ProgressTracker {
  readonly timings = new ChunkTimings();
  readonly #capture: BodyCapture | undefined;
  readonly #sse: SseAnswerReader | undefined;
  readonly #intervalMs: number;
  readonly #bytes: number;
  readonly #elapsedMs: () => number;
  readonly #report: (progress: ExchangeProgress) => Promise<void>;
  readonly #status: number;
  readonly #ttfbMs: number;
  readonly #bytesIn: number;
  #bytesOut = 0;
  #reportedAt = 0;
  #reportedBytes = 0;
  #writing = false;
  #failed: unknown = undefined;

  constructor(options: ProgressOptions & ProgressSources) {
    this.#intervalMs = options.intervalMs;
    this.#bytes = options.bytes;
    this.#elapsedMs = options.elapsedMs;
    this.#report = options.report;
    this.#capture = options.capture;
    this.#sse = options.sse;
    this.#status = options.status;
    this.#ttfbMs = options.ttfbMs;
    this.#bytesIn = options.bytesIn;
    this.#reportedAt = options.elapsedMs();
  }

  /** Before a chunk is counted and sent: `recording_failed` once a report has failed. */
  throwIfFailed(): void {
    if (this.#failed === undefined) return;
    throw new GatehouseError('recording_failed', { detail: `the answer's progress could not be recorded, so the answer was cut: ${String(this.#failed)}`, cause: this.#failed });
  }

  /** Called after the capture and the SSE reader have seen the chunk. */
  push(chunk: Buffer): void {
    const now = this.#elapsedMs();
    this.#bytesOut += chunk.length;
    this.timings.add(now, chunk.length);
    if (this.#writing) return;
    if (now - this.#reportedAt < this.#intervalMs && this.#bytesOut - this.#reportedBytes < this.#bytes) return;
    this.#reportedAt = now;
    this.#reportedBytes = this.#bytesOut;
    this.#writing = true;
    void this.#report({
      status: this.#status,
      ttfbMs: this.#ttfbMs,
      bytesIn: this.#bytesIn,
      bytesOut: this.#bytesOut,
      responseBody: this.#capture?.text(),
      responseTruncated: this.#capture?.truncated ?? false,
      responseText: this.#sse?.textSoFar(),
      chunkTimings: this.timings.toJSON(),
      durationMs: now,
    })
      .catch((error: unknown) => (this.#failed = error ?? new Error('progress write failed')))
      .finally(() => (this.#writing = false));
  }
}
