// The writing end of the record journal, on the thread that relays traffic. A record
// operation is one JSON line; lines queued in one turn of the event loop go to the
// segment file in one write(2), and each caller's promise settles once that write has
// returned. The bytes are then in the kernel: a gateway killed at any later instant
// loses none of them (the same guarantee SQLite's WAL gives with synchronous=NORMAL,
// which the store used before). Applying them to the store, hashing them into the
// audit chain and indexing them happen later, in batches, on the journal's worker
// (journal-worker.ts).

import { closeSync, ftruncateSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { endLine, segmentName, segmentPath, segmentPrefix, type JournalOp } from './segments.js';

export class JournalWriteError extends Error {
  readonly code = 'recording_failed';
}

export interface JournalWriterOptions {
  /** A segment is closed (with an end line) and a new one begun past this size. */
  readonly maxSegmentBytes?: number | undefined;
}

interface Batch {
  readonly written: Promise<void>;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

function newBatch(): Batch {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const written = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { written, resolve, reject };
}

export class JournalWriter {
  readonly #dir: string;
  readonly #maxSegmentBytes: number;
  readonly #startedAt = Date.now();
  #segments = 0;
  #fd: number | undefined;
  #bytes = 0;
  #lines: string[] = [];
  /** Settles when this turn's lines are written: one promise for all of them. */
  #batch: Batch | undefined;
  #closed = false;
  /**
   * Shared with the journal's worker: [0] batches written so far (the worker polls it to
   * know when there is work), [1] the value of [0] the worker has applied through.
   */
  readonly progress = new Int32Array(new SharedArrayBuffer(8));

  /** The start of every segment name this writer uses (its own segments are never a dead writer's). */
  get segmentPrefix(): string {
    return segmentPrefix(this.#startedAt, process.pid);
  }

  constructor(dir: string, options: JournalWriterOptions = {}) {
    this.#dir = dir;
    this.#maxSegmentBytes = options.maxSegmentBytes ?? 16 * 1024 * 1024;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  /** Appends one operation; resolves when its line has been written. */
  append(op: JournalOp): Promise<void> {
    if (this.#closed) return Promise.reject(new JournalWriteError('the record journal is closed'));
    let line: string;
    try {
      line = `${JSON.stringify(op)}\n`;
    } catch (error) {
      return Promise.reject(new JournalWriteError(`record cannot be serialised: ${(error as Error).message}`));
    }
    this.#lines.push(line);
    if (this.#batch === undefined) {
      this.#batch = newBatch();
      setImmediate(() => this.flush());
    }
    return this.#batch.written;
  }

  /** Writes what is queued now (normally called at the end of the turn). */
  flush(): void {
    const batch = this.#batch;
    this.#batch = undefined;
    if (batch === undefined) return;
    const text = this.#lines.length === 1 ? this.#lines[0]! : this.#lines.join('');
    this.#lines = [];
    try {
      this.#write(text);
    } catch (error) {
      batch.reject(new JournalWriteError(`record journal write failed: ${(error as Error).message}`));
      return;
    }
    Atomics.add(this.progress, 0, 1);
    batch.resolve();
    if (this.#bytes >= this.#maxSegmentBytes) this.#endSegment();
  }

  /** Writes what is queued and ends the segment: nothing more is appended after. */
  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
    this.#endSegment();
  }

  #write(text: string): void {
    this.#fd ??= this.#openSegment();
    const fd = this.#fd;
    try {
      // The string straight to write(2) (no Buffer made for it on the JS heap); a short
      // write, which a regular file gives only when nearly full, goes on from its byte.
      const length = Buffer.byteLength(text);
      const written = writeSync(fd, text);
      if (written < length) {
        const data = Buffer.from(text).subarray(written);
        let offset = 0;
        while (offset < data.length) offset += writeSync(fd, data, offset, data.length - offset);
      }
      this.#bytes += length;
    } catch (error) {
      // Never leave half a line for the next batch to be glued onto.
      try {
        ftruncateSync(fd, this.#bytes);
      } catch {
        this.#abandonSegment();
      }
      throw error;
    }
  }

  #openSegment(): number {
    const name = segmentName(this.#startedAt, process.pid, ++this.#segments);
    this.#bytes = 0;
    return openSync(segmentPath(this.#dir, name), 'wx', 0o600);
  }

  #endSegment(): void {
    if (this.#fd === undefined) return;
    try {
      this.#write(endLine);
      Atomics.add(this.progress, 0, 1);
    } catch {
      // Left without its end line: it is finished off once this process is gone.
    }
    this.#abandonSegment();
  }

  #abandonSegment(): void {
    if (this.#fd === undefined) return;
    try {
      closeSync(this.#fd);
    } catch {
      // Already unusable.
    }
    this.#fd = undefined;
  }
}
