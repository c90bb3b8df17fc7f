// Backpressured reading of protocol frames from a socket: `read()` resolves with the
// next frame, or rejects when the socket ends, errors, or sends a malformed frame. A
// session reads without a promise per message: `tryRead()` takes what is buffered, and
// `wait(callback)` asks to be called once more bytes arrive or the socket ends.
// The socket is paused while a whole frame is buffered and nobody is reading, so a
// fast peer cannot make the gateway hold more than one message plus one chunk.

import type { Duplex } from 'node:stream';
import { isGatehouseError } from '../../errors/index.js';
import { FrameReader, ProtocolViolation, type Frame } from './codec.js';

export class SocketClosed extends Error {
  override readonly name = 'SocketClosed';
}

export class FrameSource {
  readonly #socket: Duplex;
  readonly #reader: FrameReader;
  #waiter: { startup: boolean; resolve: (f: Frame) => void; reject: (e: Error) => void } | undefined;
  /** A `wait()` in progress: called once, on the next chunk or the end. */
  #callback: (() => void) | undefined;
  #ended: Error | undefined;
  #detached = false;
  readonly #onData = (chunk: Buffer) => {
    this.#reader.push(chunk);
    this.#deliver();
  };
  readonly #onEnd = () => this.#fail(new SocketClosed('connection closed'));
  // An error that already carries a Gatehouse code (agent_disconnected from a stream through an agent) keeps it.
  readonly #onError = (error: Error) => this.#fail(isGatehouseError(error) ? error : new SocketClosed(error.message));

  constructor(socket: Duplex, maxMessageBytes: number) {
    this.#socket = socket;
    this.#reader = new FrameReader(maxMessageBytes);
    socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('close', this.#onEnd);
    socket.on('error', this.#onError);
  }

  /** Bytes received and not yet returned as a frame. */
  get buffered(): number {
    return this.#reader.buffered;
  }

  /** The next frame if it is already complete in the buffer (no waiting); throws ProtocolViolation. */
  tryRead(): Frame | undefined {
    if (this.#waiter || this.#callback) throw new Error('concurrent read');
    return this.#reader.next(false);
  }

  /** Why no more bytes will come (the socket ended or failed); undefined while it is open. */
  get ended(): Error | undefined {
    return this.#ended;
  }

  /**
   * Calls `callback` once, when more bytes arrive or the socket ends; the caller then
   * calls tryRead() (a frame may still be incomplete) and `ended`. Call it only after
   * tryRead() found no complete frame.
   */
  wait(callback: () => void): void {
    if (this.#waiter || this.#callback) throw new Error('concurrent read');
    if (this.#ended) {
      queueMicrotask(callback);
      return;
    }
    this.#callback = callback;
    if (!this.#detached) this.#socket.resume();
  }

  read(startup = false): Promise<Frame> {
    if (this.#waiter || this.#callback) return Promise.reject(new Error('concurrent read'));
    return new Promise((resolve, reject) => {
      this.#waiter = { startup, resolve, reject };
      this.#deliver();
    });
  }

  /** Stops reading from the socket (before handing it to TLS); returns the unread bytes. */
  detach(): Buffer {
    this.#detached = true;
    this.#socket.off('data', this.#onData);
    this.#socket.off('end', this.#onEnd);
    this.#socket.off('close', this.#onEnd);
    this.#socket.off('error', this.#onError);
    this.#socket.pause();
    return this.#reader.drain();
  }

  #deliver(): void {
    const callback = this.#callback;
    if (callback) {
      this.#callback = undefined;
      callback();
      return;
    }
    const waiter = this.#waiter;
    if (!waiter) {
      if (this.#reader.buffered > 0 && !this.#detached) this.#socket.pause();
      return;
    }
    let frame: Frame | undefined;
    try {
      frame = this.#reader.next(waiter.startup);
    } catch (error) {
      this.#waiter = undefined;
      waiter.reject(error as ProtocolViolation);
      return;
    }
    if (frame) {
      this.#waiter = undefined;
      waiter.resolve(frame);
      return;
    }
    if (this.#ended) {
      this.#waiter = undefined;
      waiter.reject(this.#ended);
      return;
    }
    if (!this.#detached) this.#socket.resume();
  }

  #fail(error: Error): void {
    this.#ended ??= error;
    this.#deliver();
  }
}
