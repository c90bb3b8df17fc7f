// The gateway's end of a raw byte stream through an agent (an exchange of kind `tcp`),
// as a Duplex a protocol adapter uses like a socket to its target:
// - writes become DATA frames on the exchange stream; backpressure is the stream's own
//   (HTTP/2 per-stream flow control, RFC 9113 §5.2), so one slow stream holds back
//   only itself;
// - end() is a half-close (END_STREAM); the readable side ends only when the agent's
//   END_STREAM came with the completion trailer (the target closed its side);
// - the stream reset, or the link dying, destroys the socket with agent_disconnected;
// - destroy() resets the stream (deferred: src/agent/h2-teardown.ts).

import { constants as h2, type Http2Stream } from 'node:http2';
import { Duplex } from 'node:stream';
import { resetStream } from './h2-teardown.js';

export interface TunnelSocketOptions {
  /** The agent session carrying the stream (a cancel for its target goes the same way). */
  readonly agentSession: string;
  /** Whether the agent's completion trailer has arrived. */
  readonly complete: () => boolean;
  /** The error for a stream cut before its completion trailer. */
  readonly cut: () => Error;
}

export class TunnelSocket extends Duplex {
  readonly agentSession: string;
  readonly #stream: Http2Stream;
  #eof = false;

  constructor(stream: Http2Stream, rest: Buffer, options: TunnelSocketOptions) {
    super({ allowHalfOpen: true });
    this.agentSession = options.agentSession;
    this.#stream = stream;
    if (rest.length > 0) this.push(rest);
    stream.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) stream.pause();
    });
    // The trailer may be reported just after 'end': decide then if it is here, else at 'close'.
    stream.once('end', () => {
      if (options.complete()) this.#end();
    });
    stream.once('close', () => {
      if (!this.#eof && options.complete()) this.#end();
      if (!this.#eof) return void this.destroy(options.cut());
      // Both directions are over: let the reader take what is buffered, then close.
      if (this.readableEnded) this.destroy();
      else this.once('end', () => this.destroy());
    });
    stream.on('error', () => undefined); // reported as 'close' without the trailer
    // A cut reaches whoever reads (the adapter listens for 'error'); with nobody listening
    // yet (or any more), it must not become an uncaught exception in the gateway.
    this.on('error', () => undefined);
  }

  #end(): void {
    if (this.#eof) return;
    this.#eof = true;
    this.push(null);
  }

  override _read(): void {
    if (this.#stream.isPaused()) this.#stream.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#send(chunk, callback);
  }

  // Writes corked in one turn (the adapters cork per event-loop turn) leave as one frame.
  override _writev(chunks: { chunk: Buffer }[], callback: (error?: Error | null) => void): void {
    this.#send(chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk)), callback);
  }

  #send(chunk: Buffer, callback: (error?: Error | null) => void): void {
    if (this.#stream.destroyed || this.#stream.writableEnded) return callback(new Error('agent stream closed'));
    if (this.#stream.write(chunk)) return callback();
    this.#stream.once('drain', () => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.#stream.destroyed && !this.#stream.writableEnded) this.#stream.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    resetStream(this.#stream, h2.NGHTTP2_CANCEL);
    callback(error);
  }
}
