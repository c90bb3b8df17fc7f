// The local forwarder's answer, fed by undici's dispatch handler: the body's chunks go
// straight to whoever reads them (`readChunks`, the data plane's relay), without the
// Readable stream, async resource and abort-signal plumbing of undici's `request()`,
// which cost about as much per exchange as the rest of the gateway's own relay work.
// `body` is still a Readable for those that want one (the agent pipes it into its
// tunnel); it is made on first use. Either way, backpressure reaches the upstream
// socket (the dispatch controller is paused), and one reading mode is used per answer.

import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { ChunkReader, ForwardResponse, ForwardSignal } from './forwarder.js';

type Headers = Record<string, string | string[] | undefined>;

/** Chunks held while nobody reads yet; past this the upstream is paused. */
const queueLimit = 64 * 1024;

interface Reader {
  readonly onChunk: ChunkReader;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

export class UpstreamAnswer implements ForwardResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly #controller: Dispatcher.DispatchController;
  #queue: Buffer[] | undefined;
  #queued = 0;
  #ended = false;
  #error: Error | undefined;
  /** Read to its end, failed, or cancelled: no more chunks are wanted. */
  #done = false;
  #cancelled = false;
  #reader: Reader | undefined;
  /** The reader's last chunk returned a promise that has not settled. */
  #waiting = false;
  #stream: Readable | undefined;

  constructor(controller: Dispatcher.DispatchController, status: number, headers: Headers) {
    this.#controller = controller;
    this.status = status;
    this.headers = headers;
  }

  /** Hands every chunk to `onChunk` in order; a returned promise pauses the upstream until it settles. */
  readChunks(onChunk: ChunkReader): Promise<void> {
    if (this.#reader || this.#stream) return Promise.reject(new Error('the answer body is already being read'));
    return new Promise<void>((resolve, reject) => {
      this.#reader = { onChunk, resolve, reject };
      this.#flush();
    });
  }

  get body(): Readable {
    if (!this.#stream) {
      if (this.#reader) throw new Error('the answer body is already being read');
      const stream = new Readable({
        read: () => this.#controller.resume(),
        destroy: (error, callback) => {
          this.cancel();
          callback(error);
        },
      });
      // As with undici's own body: a stream destroyed before its end emits 'error';
      // readers see it through their own listeners or iterators.
      stream.on('error', () => undefined);
      this.#stream = stream;
      const queue = this.#queue;
      this.#queue = undefined;
      this.#queued = 0;
      if (queue) for (const chunk of queue) stream.push(chunk);
      if (this.#error) stream.destroy(this.#error);
      else if (this.#ended) stream.push(null);
      else this.#controller.resume();
    }
    return this.#stream;
  }

  /** Drops the answer: aborts the upstream request if it is still running. */
  cancel(): void {
    if (this.#cancelled) return;
    this.#cancelled = true;
    this.#done = true;
    this.#queue = undefined;
    if (!this.#ended && !this.#error && !this.#controller.aborted) this.#controller.abort(new Error('answer discarded'));
  }

  // ---- from the dispatch handler

  push(chunk: Buffer): void {
    if (this.#done) return;
    const stream = this.#stream;
    if (stream) {
      if (!stream.push(chunk)) this.#controller.pause();
      return;
    }
    if (this.#reader && !this.#waiting) {
      this.#deliver(chunk);
      return;
    }
    (this.#queue ??= []).push(chunk);
    this.#queued += chunk.length;
    if (this.#queued > queueLimit || this.#waiting) this.#controller.pause();
  }

  end(): void {
    this.#ended = true;
    if (this.#stream) this.#stream.push(null);
    else this.#flush();
  }

  fail(error: Error): void {
    if (this.#ended) return;
    this.#error = error;
    if (this.#stream) this.#stream.destroy(error);
    else this.#flush();
  }

  // ---- delivery to a chunk reader

  #deliver(chunk: Buffer): void {
    let pending: void | Promise<void>;
    try {
      pending = this.#reader!.onChunk(chunk);
    } catch (error) {
      this.#finish(error);
      return;
    }
    if (pending !== undefined) {
      this.#waiting = true;
      this.#controller.pause();
      pending.then(
        () => {
          this.#waiting = false;
          this.#flush();
          if (!this.#done && !this.#waiting) this.#controller.resume();
        },
        (error: unknown) => this.#finish(error),
      );
    }
  }

  /** Delivers what is queued, then the end or the error, while the reader is not waiting. */
  #flush(): void {
    if (!this.#reader || this.#done) return;
    while (this.#queue && this.#queue.length > 0 && !this.#waiting && !this.#done) {
      const chunk = this.#queue.shift()!;
      this.#queued -= chunk.length;
      this.#deliver(chunk);
    }
    if (this.#waiting || this.#done) return;
    if (this.#error) this.#finish(this.#error);
    else if (this.#ended) this.#finish(undefined);
    else if (this.#queued <= queueLimit) this.#controller.resume();
  }

  #finish(error: unknown): void {
    if (this.#done) return;
    this.#done = true;
    this.#queue = undefined;
    const reader = this.#reader!;
    if (error === undefined) reader.resolve();
    else reader.reject(error);
  }
}

/**
 * The dispatch handler of one forwarded request: settles `forward()` with the answer's
 * status and headers (or the error), then feeds the answer's body; the caller's abort
 * signal aborts the request at any point.
 */
export class ForwardHandler implements Dispatcher.DispatchHandler {
  readonly #resolve: (answer: UpstreamAnswer) => void;
  readonly #reject: (error: Error) => void;
  readonly #signal: ForwardSignal;
  #controller: Dispatcher.DispatchController | undefined;
  #answer: UpstreamAnswer | undefined;
  #listening = false;

  constructor(signal: ForwardSignal, resolve: (answer: UpstreamAnswer) => void, reject: (error: Error) => void) {
    this.#signal = signal;
    this.#resolve = resolve;
    this.#reject = reject;
    if (!signal.aborted) {
      signal.addEventListener('abort', this.#onAbort, { once: true });
      this.#listening = true;
    }
  }

  readonly #onAbort = (): void => {
    this.#listening = false;
    // Before the request has a connection, onRequestStart sees the signal and aborts.
    this.#controller?.abort(abortReason(this.#signal));
  };

  #stopListening(): void {
    if (!this.#listening) return;
    this.#listening = false;
    this.#signal.removeEventListener('abort', this.#onAbort);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#signal.aborted) controller.abort(abortReason(this.#signal));
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Headers): void {
    // 1xx informational answers are not the answer.
    if (statusCode < 200) return;
    this.#answer = new UpstreamAnswer(controller, statusCode, headers);
    this.#resolve(this.#answer);
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#answer?.push(chunk);
  }

  onResponseEnd(): void {
    this.#stopListening();
    this.#answer?.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.#stopListening();
    if (this.#answer) this.#answer.fail(error);
    else this.#reject(error);
  }
}

function abortReason(signal: ForwardSignal): Error {
  const reason = signal.reason;
  return reason instanceof Error ? reason : new DOMException('This operation was aborted', 'AbortError');
}
