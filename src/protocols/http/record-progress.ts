// Progress of a streamed answer, for the recording: sees every relayed chunk (a hook in
// relay-response.ts), keeps what the recording would keep (bounded body, SSE answer
// text, chunk timings), and reports it at most every `intervalMs` or `bytes`, and
// never while the previous report is still being written. So a gateway killed
// mid-stream leaves a record at most that far behind what the client received.

import { ChunkTimings, type ExchangeProgress } from '../../audit/index.js';
import { BodyCapture } from './body-capture.js';
import { SseAnswerReader } from './openai-response.js';

export interface ProgressOptions {
  readonly intervalMs: number;
  readonly bytes: number;
}

export class ProgressTracker {
  readonly timings = new ChunkTimings();
  readonly #capture: BodyCapture | undefined;
  readonly #sse: SseAnswerReader | undefined;
  readonly #options: ProgressOptions;
  readonly #elapsedMs: () => number;
  readonly #report: (progress: ExchangeProgress) => Promise<void>;
  #bytesOut = 0;
  #reportedAt = 0;
  #reportedBytes = 0;
  #writing = false;

  constructor(options: ProgressOptions & { textual: boolean; sse: boolean; maxRecordedBody: number; elapsedMs: () => number; report: (progress: ExchangeProgress) => Promise<void> }) {
    this.#options = options;
    this.#elapsedMs = options.elapsedMs;
    this.#report = options.report;
    this.#capture = options.textual ? new BodyCapture(options.maxRecordedBody) : undefined;
    this.#sse = options.sse ? new SseAnswerReader({ maxTextBytes: options.maxRecordedBody }) : undefined;
    this.#reportedAt = options.elapsedMs();
  }

  readonly push = (chunk: Buffer): void => {
    const now = this.#elapsedMs();
    this.#bytesOut += chunk.length;
    this.timings.add(now, chunk.length);
    this.#capture?.push(chunk);
    this.#sse?.push(chunk);
    if (this.#writing) return;
    if (now - this.#reportedAt < this.#options.intervalMs && this.#bytesOut - this.#reportedBytes < this.#options.bytes) return;
    this.#reportedAt = now;
    this.#reportedBytes = this.#bytesOut;
    this.#writing = true;
    void this.#report({
      bytesOut: this.#bytesOut,
      responseBody: this.#capture?.text(),
      responseTruncated: this.#capture?.truncated ?? false,
      responseText: this.#sse?.textSoFar(),
      chunkTimings: this.timings.toJSON(),
      durationMs: now,
    }).finally(() => (this.#writing = false));
  };
}
