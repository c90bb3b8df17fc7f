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

interface Waiter {
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

export class JournalWriter {
  readonly #dir: string;
  readonly #maxSegmentBytes: number;
  readonly #startedAt = Date.now();
  #segments = 0;
  #fd: number | undefined;
  #bytes = 0;
  #lines: string[] = [];
  #waiters: Waiter[] = [];
  #scheduled = false;
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
    return new Promise<void>((resolve, reject) => {
      this.#lines.push(line);
      this.#waiters.push({ resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Writes what is queued now (normally called at the end of the turn). */
  flush(): void {
    this.#scheduled = false;
    if (this.#lines.length === 0) return;
    const text = this.#lines.length === 1 ? this.#lines[0]! : this.#lines.join('');
    const waiters = this.#waiters;
    this.#lines = [];
    this.#waiters = [];
    try {
      this.#write(Buffer.from(text, 'utf8'));
    } catch (error) {
      const failure = new JournalWriteError(`record journal write failed: ${(error as Error).message}`);
      for (const waiter of waiters) waiter.reject(failure);
      return;
    }
    Atomics.add(this.progress, 0, 1);
    for (const waiter of waiters) waiter.resolve();
    if (this.#bytes >= this.#maxSegmentBytes) this.#endSegment();
  }

  /** Writes what is queued and ends the segment: nothing more is appended after. */
  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
    this.#endSegment();
  }

  #write(data: Buffer): void {
    this.#fd ??= this.#openSegment();
    const fd = this.#fd;
    let offset = 0;
    try {
      while (offset < data.length) offset += writeSync(fd, data, offset, data.length - offset);
      this.#bytes += data.length;
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
      this.#write(Buffer.from(endLine));
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
