// The writing end of the record journal, on the thread that relays traffic. A record
// operation is one JSON line; lines queued in one turn of the event loop go to the
// segment file in one write(2), and each caller's promise settles once that write has
// returned. The bytes are then in the kernel: a gateway killed at any later instant
// loses none of them (the same guarantee SQLite's WAL gives with synchronous=NORMAL,
// which the store used before). Applying them to the store, hashing them into the
// audit chain and indexing them happen later, in batches, on the journal's worker
// (journal-worker.ts).
//
// Each line is encoded to UTF-8 once, as it is queued, into a buffer the writer keeps;
// the batch used to be one joined string, whose UTF-8 length and bytes were each
// another pass over the whole text.

import { closeSync, fstatSync, ftruncateSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { endLine, segmentName, segmentPath, segmentPrefix, type JournalOp } from './segments.js';

export class JournalWriteError extends Error {
  readonly code = 'recording_failed';
}

/** The batch buffer's usual size; one grown past it for a large batch is let go after the write. */
const bufferBytes = 64 * 1024;
const endBytes = Buffer.from(endLine);

export interface JournalWriterOptions {
  /** A segment is closed (with an end line) and a new one begun past this size. */
  readonly maxSegmentBytes?: number | undefined;
  /** A segment was begun (its file exists): the worker registers it, so its deletion is found (journal-applier.ts). */
  readonly onSegmentOpened?: ((name: string) => void) | undefined;
  /**
   * The segment being written was deleted (its file has no link left), after `written`
   * bytes went to it: what was not applied of them is lost. Writing goes on in a new segment.
   */
  readonly onSegmentUnlinked?: ((name: string, written: number) => void) | undefined;
  /** How often, at most, a batch first checks that its segment still has a name (default 250 ms). */
  readonly linkCheckIntervalMs?: number | undefined;
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
  #name = '';
  #bytes = 0;
  readonly #onSegmentOpened: ((name: string) => void) | undefined;
  readonly #onSegmentUnlinked: ((name: string, written: number) => void) | undefined;
  readonly #linkCheckIntervalMs: number;
  #nextLinkCheck = 0;
  /** This turn's lines, as UTF-8: `#buffer[0, #queued)`. */
  #buffer = Buffer.allocUnsafe(bufferBytes);
  #queued = 0;
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
    this.#onSegmentOpened = options.onSegmentOpened;
    this.#onSegmentUnlinked = options.onSegmentUnlinked;
    this.#linkCheckIntervalMs = options.linkCheckIntervalMs ?? 250;
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
    return this.appendLine(line);
  }

  /** Appends one line already serialised (one JSON op and its newline: journal-lines.ts); resolves when it has been written. */
  appendLine(line: string): Promise<void> {
    if (this.#closed) return Promise.reject(new JournalWriteError('the record journal is closed'));
    // At most 3 bytes of UTF-8 per UTF-16 code unit: with that much room the line fits.
    if (this.#buffer.length - this.#queued < line.length * 3) this.#grow(line.length * 3);
    this.#queued += this.#buffer.write(line, this.#queued);
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
    const buffer = this.#buffer;
    const length = this.#queued;
    this.#queued = 0;
    if (buffer.length > bufferBytes) this.#buffer = Buffer.allocUnsafe(bufferBytes);
    this.#checkLink();
    try {
      this.#write(buffer, length);
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

  /** Room for `more` bytes past what is queued (a batch larger than the buffer). */
  #grow(more: number): void {
    const grown = Buffer.allocUnsafe(Math.max(this.#buffer.length * 2, this.#queued + more));
    this.#buffer.copy(grown, 0, 0, this.#queued);
    this.#buffer = grown;
  }

  #write(data: Buffer, length: number): void {
    this.#fd ??= this.#openSegment();
    const fd = this.#fd;
    try {
      // A short write, which a regular file gives only when nearly full, goes on from its byte.
      let offset = 0;
      while (offset < length) offset += writeSync(fd, data, offset, length - offset);
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
    const fd = openSync(segmentPath(this.#dir, name), 'wx', 0o600);
    this.#name = name;
    this.#nextLinkCheck = Date.now() + this.#linkCheckIntervalMs;
    this.#onSegmentOpened?.(name);
    return fd;
  }

  /**
   * A segment deleted under a running writer took every line written after into a file
   * nobody can read: at most every linkCheckIntervalMs (one fstat, about a microsecond,
   * per interval, not per record), a batch first checks that its segment still has a
   * name, and begins a new one if not.
   */
  #checkLink(): void {
    if (this.#fd === undefined) return;
    const now = Date.now();
    if (now < this.#nextLinkCheck) return;
    this.#nextLinkCheck = now + this.#linkCheckIntervalMs;
    let unlinked: boolean;
    try {
      unlinked = fstatSync(this.#fd).nlink === 0;
    } catch {
      unlinked = false; // the write that follows reports what is wrong
    }
    if (!unlinked) return;
    const name = this.#name;
    const written = this.#bytes;
    this.#abandonSegment();
    this.#onSegmentUnlinked?.(name, written);
  }

  #endSegment(): void {
    if (this.#fd === undefined) return;
    try {
      this.#write(endBytes, endBytes.length);
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
