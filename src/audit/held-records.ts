// Records the PostgreSQL store did not take because it could not be reached (it went
// away mid-traffic): the exchange was forwarded or refused all the same, so its record
// is held in memory and written, in order, once the store answers again (retried every
// second). Bounded: past maxHeld the oldest are dropped, and a gateway that stops while
// the store is still away says how many it could not write (or kept, below).
//
// With a spill file (the gateway's: held-records-<pid>-<file id>.jsonl in its data
// directory) each held record is also appended to it, one JSON line, mode 0600, up to
// maxSpillBytes; the file is rewritten with what is still held after each retry that
// wrote some, and removed when nothing is. A gateway killed during an outage (even
// SIGKILL) leaves it, and the next start holds its records again and writes them when
// the store answers. The files of gateways still running (others sharing the folder, in
// this container or another) are left to them: a gateway holds a kernel lock beside its
// file while it exists (held-records-takeover.ts). A record
// written just before a kill may be in the file still: written again, it is recognised
// by its row already holding the state its event records, and skipped.
//
// Each line is authenticated (held-records-file.ts): a line that does not verify (edited
// or added by whoever could write the data directory) is not written; its place in the
// chain is taken by recording.held_rejected, naming the file and the line, and the file
// is copied aside (`<name>.rejected`) for the operator. Lines removed from the middle
// show as recording.held_missing.

import { appendFileSync, constants, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { isStoreUnreachable, tryFileLock, type FileLock } from '../store/index.js';
import { lockPathOf, removeStaleLocks, takeOver, type Taken } from './held-records-takeover.js';
import { lockHead } from './append-events.js';
import { stateDigest } from './exchange-state.js';
import { newSpillFileId, openLine, sealLine } from './held-records-file.js';
import type { GroupCommitWriter, RecordWrite, Write } from './group-commit.js';

export interface HeldRecordsReport {
  /** Records held now. */
  readonly held: number;
  /** Written by this retry. */
  readonly written?: number | undefined;
  /** Dropped: over the bound, or refused by the store for another reason than being away. */
  readonly lost?: number | undefined;
  /** Left in the spill file at stop, for the next start to write. */
  readonly kept?: number | undefined;
  /** Held again from the spill file a previous run left (at start). */
  readonly recovered?: number | undefined;
  /** Lines of a previous run's spill file that were not written: they did not verify, or lines before them were removed (which, where). */
  readonly rejected?: string | undefined;
  /** Held in memory only: the spill file reached its bound, or could not be written (said once per outage). */
  readonly notSpilled?: string | undefined;
  /**
   * What the spill file holds now (at most once a second while it grows, and after a retry that wrote some): the log is
   * the only witness outside the data directory of how many lines a process wrote, to be
   * compared with what the next start finds (`found`).
   */
  readonly onDisk?: SpillFileCount | undefined;
  /** The lines of each previous run's spill file as the start found them (with `recovered`). */
  readonly found?: readonly SpillFileCount[] | undefined;
  readonly error?: string | undefined;
}

const retryMs = 1_000;
/** How often, at most, the spill file's line count is logged while it grows. */
const sayEveryMs = 1_000;
const maxHeld = 10_000;
const batchSize = 256;
/** The spill file's bound: past it, records are held in memory only. */
export const maxSpillBytes = 256 * 1024 * 1024;

/** A spill file, its id (in every line) and how many lines it holds. */
export interface SpillFileCount {
  readonly file: string;
  readonly fileId: string;
  readonly lines: number;
}

export interface SpillOptions {
  /** The folder of the spill files: each process writes `held-records-<pid>.jsonl` there. */
  readonly dir: string;
  /** Authenticates each line (the audit signing key's deriveKey(heldRecordsKeyPurpose)). */
  readonly key: Buffer;
  readonly maxBytes?: number | undefined;
}

export class HeldRecords {
  readonly #writer: GroupCommitWriter;
  readonly #report: (report: HeldRecordsReport) => void;
  #queue: RecordWrite[] = [];
  #timer: NodeJS.Timeout | undefined;
  #retrying: Promise<void> | undefined;
  #closed = false;
  /** Dropped over the bound since the last report: said once a retry (a second), not once a request. */
  #dropped = 0;
  readonly #spill: { readonly path: string; readonly lockPath: string; readonly key: Buffer; readonly fileId: string; readonly maxBytes?: number | undefined } | undefined;
  /** Held while this process's spill file exists: a start takes over only a file whose lock it can take. */
  #lock: FileLock | undefined;
  /** The data directory's file system gives no locks: spilled without one. */
  #lockless = false;
  #spilledBytes = 0;
  /** Lines in the spill file: the number of the next one is this plus one. */
  #spilledLines = 0;
  #spillFailed = false;
  /** The spill file's line count last said in the log (onDisk). */
  #saidLines = 0;
  #sayTimer: NodeJS.Timeout | undefined;
  /** Records read back from a previous run's spill file: written only if their row does not hold their state yet. */
  readonly #recovered = new WeakSet<RecordWrite>();

  constructor(writer: GroupCommitWriter, report: ((report: HeldRecordsReport) => void) | undefined, spill?: SpillOptions) {
    this.#writer = writer;
    this.#report = report ?? (() => undefined);
    const fileId = newSpillFileId();
    const name = `held-records-${process.pid}-${fileId}.jsonl`;
    this.#spill = spill && { path: join(spill.dir, name), lockPath: lockPathOf(spill.dir, name), key: spill.key, fileId, maxBytes: spill.maxBytes };
    if (spill) this.#recover(spill.dir, spill.key);
  }

  get size(): number {
    return this.#queue.length;
  }

  /** Holds the write `later()` builds when `error` says the store could not be reached; any other error is the caller's. */
  holdIfUnreachable(error: unknown, later: () => RecordWrite): void {
    if (!isStoreUnreachable(error)) return;
    if (this.#queue.length >= maxHeld) this.#dropped += this.#queue.splice(0, this.#queue.length - maxHeld + 1).length;
    const write = later();
    this.#queue.push(write);
    // Said once per outage (the first record held); losses with the next retry.
    if (this.#queue.length === 1) this.#report({ held: 1, error: (error as Error).message });
    this.#spillOne(write);
    this.#schedule();
  }

  /** One last try to write what is held; what the store still does not take is reported lost. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    clearTimeout(this.#sayTimer);
    this.#sayTimer = undefined;
    await this.#retrying;
    try {
      await this.#closeQueue();
    } finally {
      // The process ends: a file kept is the next start's to take over (its lock then free).
      if (this.#spill && !existsSync(this.#spill.path)) this.#releaseLock();
      this.#lock?.release();
      this.#lock = undefined;
    }
  }

  async #closeQueue(): Promise<void> {
    if (this.#queue.length === 0) return;
    await this.#retry();
    // Kept in the spill file, they are not lost: the next start writes them.
    const spilled = this.#spill !== undefined && !this.#spillFailed && existsSync(this.#spill.path);
    if (this.#queue.length > 0) {
      if (spilled) this.#report({ held: 0, kept: this.#queue.length, lost: this.#dropped || undefined, onDisk: this.#onDisk(), error: `the gateway stopped before the store answered again: kept in ${this.#spill!.path} for the next start` });
      else this.#report({ held: 0, lost: this.#queue.length + this.#dropped, error: 'the gateway stopped before the store answered again' });
    }
    this.#queue.splice(0);
    this.#dropped = 0;
  }

  /**
   * Holds again what processes no longer running left in their spill files (a last line
   * without its newline is skipped: a write cut by a kill). They are written to this
   * process's own file before theirs are removed, so a crash meanwhile loses none.
   */
  #recover(dir: string, key: Buffer): void {
    let listed: string[];
    let names: Taken[];
    try {
      listed = readdirSync(dir).sort();
      names = listed.flatMap((name) => takeOver(dir, name));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') this.#report({ held: 0, error: `held records left by a previous run cannot be read: ${(error as Error).message}` });
      return;
    }
    removeStaleLocks(dir, listed);
    let recovered = 0;
    const taken: Taken[] = [];
    const found: SpillFileCount[] = [];
    for (const name of names) {
      try {
        recovered += this.#holdAgain(dir, name.name, key, found);
        taken.push(name);
      } catch (error) {
        name.lock?.release();
        this.#report({ held: 0, error: `held records left by a previous run cannot be read: ${(error as Error).message}` });
      }
    }
    // Also when every line was rejected: the events that say so are to be written.
    if (this.#queue.length > 0) {
      this.#rewriteSpill();
      this.#schedule();
    }
    // Said for every file, an empty one too: the log of the run that wrote it said how many lines it had.
    if (found.length > 0) this.#report({ held: this.#queue.length, recovered, found });
    for (const { name, lock } of taken) {
      // Not when this process's own file could not be written: they stay for the next start.
      if (!this.#spillFailed) {
        rmSync(join(dir, name), { force: true });
        if (lock) rmSync(lockPathOf(dir, name), { force: true });
      }
      lock?.release();
    }
  }

  /**
   * Queues the records of one spill file whose lines verify, in order; a line that does
   * not is replaced by recording.held_rejected (and a gap in the numbering by
   * recording.held_missing), and the file is copied aside. Returns how many records.
   */
  #holdAgain(dir: string, name: string, key: Buffer, found: SpillFileCount[]): number {
    const lines = readFileSync(join(dir, name), 'utf8').split('\n');
    // Every write ends with its newline: text after the last one is a write cut by a kill.
    lines.pop();
    const count = { file: name, fileId: '', lines: lines.length };
    found.push(count);
    const writes: RecordWrite[] = [];
    const problems: { details: Record<string, unknown>; said: string }[] = [];
    const problem = (kind: string, details: Record<string, unknown>, said: string) => {
      problems.push({ details, said });
      writes.push({ event: { kind, actor: 'gatehouse', target: null, details } });
    };
    let previous: { fileId: string; n: number } | undefined;
    lines.forEach((line, i) => {
      const opened = openLine(key, line);
      if (!opened.ok) {
        // It takes a place in the numbering (an edited line still has its number): not counted
        // removed too. Its file id is not to be trusted: '' goes with whichever comes next.
        previous = { fileId: previous?.fileId ?? '', n: (previous?.n ?? 0) + 1 };
        return problem('recording.held_rejected', { file: name, line: i + 1, reason: opened.reason }, `line ${i + 1}: ${opened.reason}`);
      }
      // Numbered from 1 in the file it was written to: a line from another file starts a run of its own.
      const expected = previous !== undefined && (previous.fileId === opened.fileId || previous.fileId === '') ? previous.n + 1 : 1;
      if (opened.n > expected) problem('recording.held_missing', { file: name, line: i + 1, missing: opened.n - expected }, `line ${i + 1}: ${opened.n - expected} line(s) before it removed`);
      previous = { fileId: opened.fileId, n: opened.n };
      count.fileId = opened.fileId;
      this.#recovered.add(opened.write);
      writes.push(opened.write);
    });
    if (problems.length > 0) {
      const keptAs = keepAside(dir, name);
      for (const { details } of problems) details.keptAs = keptAs;
      this.#report({ held: 0, rejected: `${name} ${problems.map((p) => p.said).join('; ')}: not written (chained as recording.held_rejected / held_missing); the file is kept as ${keptAs ?? '(it could not be copied)'}` });
    }
    let recovered = 0;
    for (const write of writes) {
      if (this.#queue.length >= maxHeld) break;
      this.#queue.push(write);
      if (this.#recovered.has(write)) recovered++;
    }
    return recovered;
  }

  #spillOne(write: RecordWrite): void {
    const spill = this.#spill;
    if (!spill || this.#spillFailed) return;
    const line = sealLine(spill.key, spill.fileId, this.#spilledLines + 1, write);
    const bytes = Buffer.byteLength(line);
    if (this.#spilledBytes + bytes > (spill.maxBytes ?? maxSpillBytes)) return this.#notSpilled(`the file ${spill.path} reached its bound (${spill.maxBytes ?? maxSpillBytes} bytes): further records are held in memory only`);
    try {
      if (this.#spilledBytes === 0) mkdirSync(dirname(spill.path), { recursive: true, mode: 0o700 });
      this.#holdLock();
      appendFileSync(spill.path, line, { mode: 0o600 });
      this.#spilledBytes += bytes;
      this.#spilledLines++;
      this.#scheduleSay();
    } catch (error) {
      this.#notSpilled(`${spill.path} cannot be written (${(error as Error).message}): records are held in memory only`);
    }
  }

  /** Takes this process's lock before its spill file exists (it is never another's: the name has this writer's id). */
  #holdLock(): void {
    if (this.#lock || this.#lockless) return;
    let lock: FileLock | undefined;
    try {
      lock = tryFileLock(this.#spill!.lockPath);
    } catch {
      // A file system without locks: the file is kept all the same, and a start goes by its pid (held-records-takeover.ts).
      this.#lockless = true;
      return;
    }
    if (!lock) throw new Error(`its lock ${this.#spill!.lockPath} is held by another process`);
    this.#lock = lock;
  }

  /** Once the spill file is gone: the lock file too, then the lock. */
  #releaseLock(): void {
    if (!this.#lock) return;
    rmSync(this.#spill!.lockPath, { force: true });
    this.#lock.release();
    this.#lock = undefined;
  }

  #notSpilled(reason: string): void {
    if (this.#spillFailed) return;
    this.#spillFailed = true;
    this.#report({ held: this.#queue.length, notSpilled: reason });
  }

  /** The spill file holds what is still held (written whole, then renamed over): removed when nothing is. */
  #rewriteSpill(): void {
    const spill = this.#spill;
    if (!spill) return;
    try {
      if (this.#queue.length === 0) {
        rmSync(spill.path, { force: true });
        this.#releaseLock();
        this.#spilledBytes = 0;
        this.#spilledLines = 0;
        this.#spillFailed = false;
        return;
      }
      mkdirSync(dirname(spill.path), { recursive: true, mode: 0o700 });
      this.#holdLock();
      const text = this.#queue.map((write, i) => sealLine(spill.key, spill.fileId, i + 1, write)).join('');
      writeFileSync(`${spill.path}.tmp`, text, { mode: 0o600 });
      renameSync(`${spill.path}.tmp`, spill.path);
      this.#spilledBytes = Buffer.byteLength(text);
      this.#spilledLines = this.#queue.length;
    } catch (error) {
      this.#notSpilled(`${spill.path} cannot be rewritten (${(error as Error).message}): records are held in memory only`);
    }
  }

  #schedule(): void {
    if (this.#timer || this.#retrying || this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#retrying = this.#retry().finally(() => {
        this.#retrying = undefined;
        if (this.#queue.length > 0) this.#schedule();
      });
    }, retryMs);
    this.#timer.unref();
  }

  async #retry(): Promise<void> {
    let written = 0;
    let lost = this.#dropped;
    let lastError: unknown = lost > 0 ? new Error(`more than ${maxHeld} records held: the oldest were dropped`) : undefined;
    this.#dropped = 0;
    while (this.#queue.length > 0) {
      // Taken out while it is written: a record dropped over the bound meanwhile is one of the rest.
      const batch = this.#queue.splice(0, batchSize);
      // Queued in the same turn, the batch shares one transaction (group commit).
      const results = await Promise.allSettled(batch.map((write) => (this.#recovered.has(write) ? this.#writer.write(writeUnlessDone(write)) : this.#writer.record(write))));
      const still: RecordWrite[] = [];
      results.forEach((result, i) => {
        if (result.status === 'fulfilled') written++;
        else if (isStoreUnreachable(result.reason)) still.push(batch[i]!);
        else {
          lost++;
          lastError = result.reason;
        }
      });
      this.#queue.unshift(...still);
      // Still away: the rest waits for the next try.
      if (still.length > 0) break;
    }
    if (written === 0 && lost === 0) return;
    this.#rewriteSpill();
    // What the file holds after the rewrite goes with it: a later start finding fewer lines than said is a cut.
    const onDisk = this.#spill && !this.#spillFailed && this.#spilledLines > 0 ? this.#onDisk() : undefined;
    this.#saidLines = this.#spilledLines;
    this.#report({ held: this.#queue.length, written: written || undefined, lost: lost || undefined, ...(onDisk && { onDisk }), error: lost > 0 ? String((lastError as Error | undefined)?.message ?? lastError) : undefined });
  }

  /** The spill file as this process has written it: its name, id and lines. */
  #onDisk(): SpillFileCount {
    return { file: basename(this.#spill!.path), fileId: this.#spill!.fileId, lines: this.#spilledLines };
  }

  /**
   * Logs how many lines the spill file holds, at most once a second, a second after a line
   * was added: nothing outside the data directory knows it otherwise (the store is away
   * while the file is written), so a file cut at its end or deleted before the next start
   * shows only against this line (the next start logs what it found). Not the lines of
   * the last second before a kill. (A retry that wrote some says what is left at once.)
   */
  #scheduleSay(): void {
    if (this.#sayTimer || this.#closed) return;
    this.#sayTimer = setTimeout(() => {
      this.#sayTimer = undefined;
      this.#sayOnDisk();
    }, sayEveryMs);
    this.#sayTimer.unref();
  }

  #sayOnDisk(): void {
    if (!this.#spill || this.#spillFailed || this.#spilledLines === this.#saidLines) return;
    this.#saidLines = this.#spilledLines;
    if (this.#spilledLines > 0) this.#report({ held: this.#queue.length, onDisk: this.#onDisk() });
  }
}


/**
 * A copy of a spill file that held lines not written, for the operator to look into (not
 * read again: the name does not match). Its name, or undefined when it cannot be copied.
 */
function keepAside(dir: string, name: string): string | undefined {
  for (const kept of [`${name}.rejected`, `${name}.${Date.now()}.rejected`]) {
    try {
      copyFileSync(join(dir, name), join(dir, kept), constants.COPYFILE_EXCL);
      return kept;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') return undefined;
    }
  }
  return undefined;
}

/**
 * A record read back from a spill file, as a write that does nothing when its row already
 * holds the state its event records (it was written before the previous run stopped).
 */
function writeUnlessDone(write: RecordWrite): Write {
  return async (trx, emit) => {
    const exchange = write.exchange;
    const state = (write.event?.details as { state?: unknown } | undefined)?.state;
    if (exchange && typeof state === 'string') {
      const id = 'insert' in exchange ? exchange.insert.id : exchange.update;
      const row = await trx.selectFrom('exchanges').selectAll().where('id', '=', id).executeTakeFirst();
      if (row && stateDigest(row) === state) return;
    }
    if (exchange && 'insert' in exchange) {
      // As group commit does for an insert: the head first, so the row's seq follows the chain.
      await lockHead(trx);
      await trx.insertInto('exchanges').values(exchange.insert).execute();
    } else if (exchange) await trx.updateTable('exchanges').set(exchange.columns).where('id', '=', exchange.update).execute();
    if (write.event) emit(write.event);
  };
}
