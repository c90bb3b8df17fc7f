// Messages bound for one socket, gathered and sent in one write. A proxied statement
// costs one system call each way only if nothing is written before the answer is
// whole: the session pushes messages as it handles them and flushes when it would wait
// for more input (its source has no complete frame), or before it holds a statement for
// a long time (approvals). Enforces:
// - order: bytes leave in the order they were pushed, flushed or not;
// - a bound: past `maxBytes` the outbox flushes at once (large results); the session's
//   outbox toward the database has none, since its input is bounded (one client chunk)
//   and it must only be flushed through the session's cancel gate;
// - backpressure: a flush returns a promise when the socket asks to drain, and the caller
//   waits for it before reading more.

import type { Duplex } from 'node:stream';
import { ReadFrame, type Frame } from './codec.js';

export class Outbox {
  readonly #socket: Duplex;
  readonly #maxBytes: number;
  #chunks: Buffer[] = [];
  #bytes = 0;
  // The messages pushed last, as one run [#runFrom, #runTo) of an ArrayBuffer: messages
  // relayed as they came are ranges of one received chunk, side by side, and the run
  // grows over them without a copy (a statement's answer leaves as one view of it).
  #run: ArrayBufferLike | undefined;
  #runFrom = 0;
  #runTo = 0;
  /** The run is exactly this buffer (it needs no view of its own). */
  #runBuffer: Buffer | undefined;

  constructor(socket: Duplex, maxBytes = 64 * 1024) {
    this.#socket = socket;
    this.#maxBytes = maxBytes;
  }

  get pending(): number {
    return this.#bytes;
  }

  /** Queues a message; flushes when the bound is reached (the promise: wait for drain). */
  push(message: Buffer | Frame): Promise<void> | undefined {
    let buffer: ArrayBufferLike;
    let from: number;
    let length: number;
    let whole: Buffer | undefined;
    if (message instanceof ReadFrame) {
      buffer = message.chunk.buffer;
      from = message.chunk.byteOffset + message.start;
      length = message.end - message.start;
    } else {
      whole = Buffer.isBuffer(message) ? message : message.raw;
      buffer = whole.buffer;
      from = whole.byteOffset;
      length = whole.length;
    }
    if (buffer === this.#run && from === this.#runTo) {
      this.#runTo += length;
      this.#runBuffer = undefined;
    } else {
      this.#closeRun();
      this.#run = buffer;
      this.#runFrom = from;
      this.#runTo = from + length;
      this.#runBuffer = whole;
    }
    this.#bytes += length;
    return this.#bytes >= this.#maxBytes ? this.flush() : undefined;
  }

  /** Queues a message ahead of everything queued (and not yet written). */
  unshift(bytes: Buffer): void {
    this.#closeRun();
    this.#chunks.unshift(bytes);
    this.#bytes += bytes.length;
  }

  /** Writes everything queued in one write; a promise when the socket must drain first. */
  flush(): Promise<void> | undefined {
    if (this.#bytes === 0) return undefined;
    this.#closeRun();
    const chunks = this.#chunks;
    const data = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.#bytes);
    this.#chunks = [];
    this.#bytes = 0;
    if (this.#socket.destroyed) return undefined;
    return this.#socket.write(data) ? undefined : waitDrain(this.#socket);
  }

  /** Flushes, then ends the socket with a last message. */
  end(last: Buffer): void {
    this.flush();
    this.#socket.end(last);
  }

  #closeRun(): void {
    const run = this.#run;
    if (run === undefined) return;
    this.#run = undefined;
    this.#chunks.push(this.#runBuffer ?? Buffer.from(run, this.#runFrom, this.#runTo - this.#runFrom));
    this.#runBuffer = undefined;
  }
}

export function waitDrain(socket: Duplex): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve();
    const done = () => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}
