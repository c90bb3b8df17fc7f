// Reads a stream chunk by chunk with plain events instead of `for await`: an async
// iterator costs an async generator, an end-of-stream watcher and a promise per chunk,
// which on the data plane's small bodies cost more than the bytes themselves.
// Same contract as the loop it replaces: chunks in order; backpressure (a chunk handler
// that returns a promise pauses the stream until it settles); the first error — from
// the stream, a premature close, or the handler — rejects, and no chunk follows it.

import type { Readable } from 'node:stream';

export type ChunkHandler = (chunk: Buffer) => void | Promise<void>;

/** A stream closed before its end, as `for await` reports it. */
export class PrematureCloseError extends Error {
  readonly code = 'ERR_STREAM_PREMATURE_CLOSE';
  constructor() {
    super('Premature close');
  }
}

export function forEachChunk(stream: Readable, onChunk: ChunkHandler): Promise<void> {
  if (stream.readableEnded) return Promise.resolve();
  if (stream.errored) return Promise.reject(stream.errored);
  if (stream.destroyed) return Promise.reject(new PrematureCloseError());
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const stop = () => {
      settled = true;
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.off('close', onClose);
    };
    const fail = (error: unknown) => {
      if (settled) return;
      stop();
      // No data listener any more: keep the stream from flowing into the void.
      stream.pause();
      reject(error);
    };
    const onData = (chunk: Buffer) => {
      if (settled) return;
      let pending: void | Promise<void>;
      try {
        pending = onChunk(chunk);
      } catch (error) {
        fail(error);
        return;
      }
      if (pending !== undefined) {
        stream.pause();
        pending.then(() => {
          if (!settled) stream.resume();
        }, fail);
      }
    };
    const onEnd = () => {
      if (settled) return;
      stop();
      resolve();
    };
    const onError = (error: Error) => fail(error);
    // 'close' after 'end' is normal; before it, the stream was cut.
    const onClose = () => {
      if (!stream.readableEnded) fail(stream.errored ?? new PrematureCloseError());
    };
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', onError);
    stream.on('close', onClose);
  });
}
