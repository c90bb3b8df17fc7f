// Resetting an HTTP/2 stream or destroying a session, deferred to the next turn of the
// event loop. Why: node:http2 emits a stream's 'close' (and runs the promise and
// nextTick continuations it triggers) while nghttp2 is still inside its receive
// callbacks for the peer's RST_STREAM. Submitting RST_STREAM on another stream there
// with any code but CANCEL, or destroying the session (RST with NO_ERROR), makes node
// flush synchronously; nghttp2 still holds the closed stream's outbound data item,
// node no longer knows the stream, its data callback answers "0 bytes, not EOF", and
// nghttp2 emits empty DATA frames forever: the process spins and never yields
// (reproduced on Node 20.20 with two streams and a 'close' handler). From setImmediate
// nghttp2 has finished with the closed stream, so the same calls are safe.

import type { Http2Session, Http2Stream } from 'node:http2';

/** RST_STREAM `code` (RFC 9113 §6.4) on `stream`, unless it is already gone. */
export function resetStream(stream: Http2Stream, code: number): void {
  setImmediate(() => {
    if (!stream.destroyed && !stream.closed) stream.close(code);
  });
}

/** Destroys `session` (every open stream is reset), unless it is already gone. */
export function destroySession(session: Http2Session): void {
  setImmediate(() => {
    if (!session.destroyed) session.destroy();
  });
}
