// Reads a stream chunk by chunk with plain events instead of `for await`: an async
// iterator costs an async generator, an end-of-stream watcher and a promise per chunk,
// which on the data plane's small bodies cost more than the bytes themselves.
// Same contract as the loop it replaces: what is buffered is handed over as one chunk
// (read()), in order; backpressure (a chunk handler that returns a promise stops the
// reading until it settles); the first error — from the stream, a premature close, or
// the handler — rejects, and no chunk follows it.

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
    /** A handler's promise is pending: read nothing until it settles. */
    let waiting = false;
    const stop = () => {
      settled = true;
      stream.off('readable', drain);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.off('close', onClose);
    };
    const fail = (error: unknown) => {
      if (settled) return;
      stop();
      reject(error);
    };
    const resume = () => {
      waiting = false;
      drain();
    };
    // read() hands over everything buffered as one chunk, as `for await` does: pieces
    // that arrived together are relayed together (one write, not one per piece).
    function drain(): void {
      if (settled || waiting) return;
      let chunk: Buffer | null;
      while ((chunk = stream.read() as Buffer | null) !== null) {
        let pending: void | Promise<void>;
        try {
          pending = onChunk(chunk);
        } catch (error) {
          fail(error);
          return;
        }
        if (pending !== undefined) {
          waiting = true;
          pending.then(resume, fail);
          return;
        }
        if (settled) return;
      }
    }
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
    stream.on('readable', drain);
    stream.on('end', onEnd);
    stream.on('error', onError);
    stream.on('close', onClose);
  });
}
