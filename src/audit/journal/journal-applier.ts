// The applying end of the record journal: reads the lines of every segment that are
// not applied yet and applies them to the SQLite store, in transactions of a bounded
// size. Each transaction inserts and updates the exchange rows, chains one event per
// operation (the same events the direct recorder writes: record-columns.ts), and moves
// the segment's applied offset (table record_journal), so a line is applied exactly
// once whichever process applies it: the gateway's journal worker, or a CLI command
// that opens the store while the gateway is down.
//
// A segment's position row stays after the segment is deleted (one small row per
// segment): an applier that opened the file just before it was deleted must still find
// it done rather than start it again from the beginning.
//
// A segment deleted before it is applied in full is found and chained as
// recording.journal_missing: the gateway's writer registers each segment it begins (a
// position row at 0, through its worker: register()), so a row not done whose file is
// gone is one; and a writer numbers its segments, so a segment whose predecessor has
// neither a file nor a row shows one deleted before anything registered it.
// The last segment of a writer deleted with its row shows in `audit verify`: the chain
// has recording.journal_begun for every segment (with the row that registers it) and
// recording.journal_applied once it is applied in full, and verify names a begun segment
// with neither that, nor journal_missing, nor a row still pending (verify-journal.ts).
//
// Within one transaction, an exchange opened and finished in the same batch is
// inserted once with its final columns and vouched for by one event
// (exchange.finished), as the store never held it in its opened state. An exchange
// still streaming when its batch is applied has exchange.opened (or .progress) first.

import { closeSync, existsSync, fstatSync, openSync, readSync, unlinkSync } from 'node:fs';
import type SQLite from 'better-sqlite3';
import type { Kysely } from 'kysely';
import type { Database } from '../../store/index.js';
import type { AuditEvent } from '../audit-event.js';
import type { ChainOptions } from '../append-events.js';
import { rowWithDefaults, type ExchangeState } from '../exchange-state.js';
import type { ExchangeWrite, RecordWrite } from '../group-commit.js';
import { answerColumns, eventFor, type ExchangeEventKind } from '../record-columns.js';
import { SqliteBatch } from '../sqlite-batch.js';
import { journalDirOf, listSegments, previousSegmentName, processAlive, segmentPath, segmentPid, type JournalOp } from './segments.js';

export interface JournalApplierOptions {
  readonly chain: ChainOptions;
  /** Most operations per transaction: bounds how long the store's write lock is held. */
  readonly maxOpsPerTransaction?: number | undefined;
  /** This process's own live segments (the journal writer's), never treated as a dead writer's. */
  readonly ownSegmentPrefix?: string | undefined;
  /**
   * A gateway holds the store (its lock, store-lock.ts; a CLI command asks): every
   * segment is a live writer's, whatever its pid looks like from here (another
   * container's), since the gateway took over earlier writers' segments when it started.
   */
  readonly gatewayHoldsStore?: boolean | undefined;
}

interface Position {
  readonly applied: number;
  readonly done: number;
}

interface Applied {
  readonly events: AuditEvent[];
  readonly more: boolean;
  readonly finished: boolean;
}

/** One exchange write of a batch and the event that will vouch for the row it leaves. */
interface Step {
  kind: ExchangeEventKind;
  readonly row: ExchangeState;
  readonly write: ExchangeWrite;
}

const newline = 0x0a;
/**
 * Bytes read per transaction: a little more than maxOps lines of a plain chat exchange
 * (about 1 KB each). The buffer is kept between reads: a fresh 4 MiB per transaction
 * (as before) cost page faults and a copy of far more than was applied.
 */
const readSize = 1024 * 1024;
/** Rows of exchanges opened and not yet finished kept for digests; past this, read back instead. */
const maxRowsInMemory = 50_000;
/** How often, at most, the chain is told how far a segment its applier is behind on was written. */
const witnessIntervalMs = 1_000;

export class JournalApplier {
  readonly #dir: string;
  readonly #batch: SqliteBatch;
  readonly #chain: ChainOptions;
  readonly #maxOps: number;
  readonly #ownPrefix: string | undefined;
  readonly #gatewayHoldsStore: boolean;
  readonly #getPosition: SQLite.Statement;
  readonly #setPosition: SQLite.Statement;
  readonly #readRow: SQLite.Statement;
  readonly #register: SQLite.Statement;
  readonly #unfinished: SQLite.Statement;
  /** Segments whose predecessor was found present or accounted for (checked once each). */
  readonly #predecessorChecked = new Set<string>();
  /** Bytes a writer of this process wrote to a segment it found deleted (noteUnlinked). */
  readonly #written = new Map<string, number>();
  /** The row as last applied, per exchange still open: each event hashes the whole row. */
  readonly #rows = new Map<string, ExchangeState>();
  /** The offset this applier last committed, per segment: another applier moving it makes #rows stale. */
  readonly #known = new Map<string, number>();
  /** The last recording.journal_written chained per segment (#witness). */
  readonly #witnessed = new Map<string, { at: number; bytes: number }>();
  #readBuffer: Buffer | undefined;

  constructor(sqlitePath: string, options: JournalApplierOptions) {
    this.#dir = journalDirOf(sqlitePath);
    this.#batch = new SqliteBatch(sqlitePath);
    this.#chain = options.chain;
    this.#maxOps = options.maxOpsPerTransaction ?? 512;
    this.#ownPrefix = options.ownSegmentPrefix;
    this.#gatewayHoldsStore = options.gatewayHoldsStore === true;
    const db = this.#batch.connection;
    this.#getPosition = db.prepare('select applied, done from record_journal where segment = ?');
    this.#setPosition = db.prepare('insert into record_journal (segment, applied, done) values (@segment, @applied, @done) on conflict (segment) do update set applied = excluded.applied, done = excluded.done');
    this.#readRow = db.prepare('select * from exchanges where id = ?');
    this.#register = db.prepare('insert into record_journal (segment, applied, done) values (?, 0, 0) on conflict (segment) do nothing');
    this.#unfinished = db.prepare('select segment from record_journal where done = 0');
  }

  /**
   * A writer began segment `name` (its file exists): from now on its deletion is found,
   * even before a line of it is applied. Returns the events chained (a predecessor missing).
   */
  register(name: string): AuditEvent[] {
    return this.#batch.immediate(() => {
      // Chained with the row that registers it (once: its first lines may have been applied already).
      const begun = this.#register.run(name).changes === 1 ? [segmentEvent('recording.journal_begun', { segment: name })] : [];
      return this.#chainMissing(this.#predecessorMissing(name) ? [previousSegmentName(name)!] : [], begun);
    });
  }

  /** This process's writer found `name` deleted under it, after writing `written` bytes to it: said in the event. */
  noteUnlinked(name: string, written: number): void {
    if (this.#written.size > 100) this.#written.clear();
    this.#written.set(name, written);
  }

  /**
   * Chains recording.journal_missing for each segment deleted before it was applied in
   * full: registered (or partly applied) and not done, with no file; or a writer's
   * segment before one that exists, with neither a file nor a row. Marks them done, so
   * each is chained once.
   */
  findMissing(listed: readonly string[] = listSegments(this.#dir)): AuditEvent[] {
    // The rows are read before the listing is trusted: a segment's file is created before
    // its row, so a row read earlier whose file is not listed was deleted (or finished:
    // re-checked under the write lock below).
    const candidates = new Set<string>();
    const present = new Set(listed);
    const rows = this.#unfinished.all() as { segment: string }[];
    const now = new Set(listSegments(this.#dir));
    for (const row of rows) if (!now.has(row.segment)) candidates.add(row.segment);
    for (const name of present) {
      if (this.#predecessorChecked.has(name)) continue;
      const previous = previousSegmentName(name);
      if (previous === undefined || present.has(previous) || now.has(previous)) this.#predecessorChecked.add(name);
      else candidates.add(`?${name}`);
    }
    if (candidates.size === 0) return [];
    return this.#batch.immediate(() => {
      const missing: string[] = [];
      for (const candidate of candidates) {
        if (candidate.startsWith('?')) {
          const name = candidate.slice(1);
          if (this.#predecessorMissing(name)) missing.push(previousSegmentName(name)!);
          this.#predecessorChecked.add(name);
          continue;
        }
        const position = this.#getPosition.get(candidate) as Position | undefined;
        // Done meanwhile (another applier finished it, then deleted it): not missing.
        if (position && !position.done && !existsSync(segmentPath(this.#dir, candidate))) missing.push(candidate);
      }
      return this.#chainMissing(missing);
    });
  }

  /** Whether the segment before `name` (by its writer's numbering) has neither a file nor a row; inside a transaction. */
  #predecessorMissing(name: string): boolean {
    const previous = previousSegmentName(name);
    return previous !== undefined && this.#getPosition.get(previous) === undefined && !existsSync(segmentPath(this.#dir, previous));
  }

  /** Chains one event per missing segment (and `then`) and marks it done; inside a transaction. */
  #chainMissing(names: readonly string[], then: readonly RecordWrite[] = []): AuditEvent[] {
    if (names.length === 0 && then.length === 0) return [];
    const writes: RecordWrite[] = [];
    for (const segment of [...new Set(names)]) {
      const applied = Number((this.#getPosition.get(segment) as Position | undefined)?.applied ?? 0);
      const written = this.#written.get(segment);
      writes.push({ event: { kind: 'recording.journal_missing', actor: 'gatehouse', target: null, details: written === undefined ? { segment, applied } : { segment, applied, written } } });
      this.#setPosition.run({ segment, applied, done: 1 });
    }
    writes.push(...then);
    return this.#batch.apply(writes, this.#chain);
  }

  /** Applies every complete line not applied yet, oldest segment first; returns the events chained. */
  applyPending(): AuditEvent[] {
    const listed = listSegments(this.#dir);
    const events: AuditEvent[] = this.findMissing(listed);
    for (const name of listed) {
      for (;;) {
        const step = this.#step(name);
        for (const event of step.events) events.push(event);
        if (step.finished) this.#remove(name);
        if (!step.more) break;
      }
    }
    return events;
  }

  close(): void {
    this.#batch.close();
  }

  /** One transaction: up to maxOps lines of one segment. */
  #step(name: string): Applied {
    let fd: number;
    try {
      fd = openSync(segmentPath(this.#dir, name), 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { events: [], more: false, finished: false };
      throw error;
    }
    try {
      // Nothing new since this applier's last pass: no need for the store's write lock.
      if (this.#known.get(name) === fstatSync(fd).size && !this.#writerGone(name)) return { events: [], more: false, finished: false };
      return this.#batch.immediate(() => {
        const position = this.#getPosition.get(name) as Position | undefined;
        const applied = Number(position?.applied ?? 0);
        if (position?.done) return { events: [], more: false, finished: true };
        // Another process applied part of this segment: rows kept here may be behind.
        if ((this.#known.get(name) ?? 0) !== applied) this.#rows.clear();
        const size = fstatSync(fd).size;
        const lines = this.#readLines(fd, applied, size);
        const { writes, consumed, ended } = this.#writesFor(lines.text, lines.complete, name, applied);
        const through = applied + consumed;
        // A writer that died leaves no end line (and perhaps half a line it never
        // acknowledged): once everything complete is applied, its segment is done.
        const finished = ended || (through + lines.partial >= size && consumed === lines.complete && this.#writerGone(name));
        // More to do: the op limit stopped this batch, or the read did not reach the end of the file.
        const more = !finished && (consumed < lines.complete || through + lines.partial < size);
        // The chain says when a segment began and when it was applied in full (`audit verify`
        // holds the one to the other: a segment deleted with its row shows), and whether
        // its writer ended it (`ended: false`: it died, and the end of what it wrote is
        // the file's as the applier found it).
        if (position === undefined) writes.unshift(segmentEvent('recording.journal_begun', { segment: name }));
        if (more) this.#witness(name, fd, size, { complete: applied + lines.complete, read: applied + lines.complete + lines.partial }, writes);
        if (finished) writes.push(segmentEvent('recording.journal_applied', { segment: name, bytes: through, ended }));
        const events = writes.length > 0 ? this.#batch.apply(writes, this.#chain) : [];
        if (through !== applied || finished || position === undefined) this.#setPosition.run({ segment: name, applied: through, done: finished ? 1 : 0 });
        this.#known.set(name, through);
        return { events, more, finished };
      });
    } finally {
      closeSync(fd);
    }
  }

  /**
   * The applier is behind its writer: lines are written that this transaction does not
   * apply. If the writer dies now, nothing but the file says how far it wrote, and
   * cutting the unapplied end off would leave no trace; so the chain is told, in this
   * transaction, where the segment's complete lines end (recording.journal_written), and
   * `audit verify` holds the segment's journal_applied to at least that (verify-journal.ts).
   * At most once a second per segment, and only while behind: nothing on the writer's path.
   */
  #witness(name: string, fd: number, size: number, readTo: { complete: number; read: number }, writes: RecordWrite[]): void {
    const now = Date.now();
    const last = this.#witnessed.get(name);
    if (last !== undefined && now - last.at < witnessIntervalMs) return;
    // The read stopped short of the end: the last complete line is found in the file's tail.
    const bytes = readTo.read >= size ? readTo.complete : Math.max(readTo.complete, lastLineEnd(fd, size, readTo.complete));
    if (last !== undefined && bytes <= last.bytes) return;
    if (this.#witnessed.size > 100) this.#witnessed.clear();
    this.#witnessed.set(name, { at: now, bytes });
    writes.push(segmentEvent('recording.journal_written', { segment: name, bytes }));
  }

  /** The complete lines from `offset` (bounded), and the bytes of a trailing partial line. */
  #readLines(fd: number, offset: number, size: number): { text: Buffer; complete: number; partial: number } {
    let length = Math.min(size - offset, readSize);
    if (length <= 0) return { text: Buffer.alloc(0), complete: 0, partial: 0 };
    this.#readBuffer ??= Buffer.allocUnsafe(readSize);
    let text = this.#readBuffer.subarray(0, length);
    readSync(fd, text, 0, length, offset);
    let end = text.lastIndexOf(newline);
    if (end < 0 && length < size - offset) {
      // One line longer than a read (a large body): read up to its end.
      length = size - offset;
      text = Buffer.allocUnsafe(length);
      readSync(fd, text, 0, length, offset);
      end = text.lastIndexOf(newline);
    }
    const complete = end + 1;
    return { text, complete, partial: length - complete };
  }

  /** Turns lines into record writes, up to maxOps; how many bytes they covered, and whether the end line was met. */
  #writesFor(text: Buffer, complete: number, segment: string, base: number): { writes: RecordWrite[]; consumed: number; ended: boolean } {
    const steps: (Step | RecordWrite)[] = [];
    // Rows this transaction inserts, by exchange: a later operation on the same exchange
    // changes that insert and its step instead of adding one.
    const inserting = new Map<string, Step>();
    let start = 0;
    let ops = 0;
    let ended = false;
    while (start < complete && ops < this.#maxOps) {
      const end = text.indexOf(newline, start);
      const line = text.toString('utf8', start, end);
      const at = base + start;
      start = end + 1;
      ops += 1;
      let op: JournalOp;
      try {
        op = JSON.parse(line) as JournalOp;
      } catch {
        steps.push(damaged(segment, at));
        continue;
      }
      if (op.op === 'end') {
        ended = true;
        break;
      }
      if (!this.#add(op, steps, inserting)) steps.push(damaged(segment, at));
    }
    // Digests last: an exchange opened and finished here is hashed once, as inserted.
    const writes = steps.map((step) => ('kind' in step ? { exchange: step.write, event: eventFor(step.kind, step.row, 'insert' in step.write) } : step));
    return { writes, consumed: start, ended };
  }

  /** Adds the step for one operation; false if the operation is malformed. */
  #add(op: Exclude<JournalOp, { op: 'end' }>, steps: (Step | RecordWrite)[], inserting: Map<string, Step>): boolean {
    switch (op.op) {
      case 'open':
      case 'refuse': {
        if (typeof op.row !== 'object' || op.row === null || typeof op.row.id !== 'string') return false;
        // An open line leaves out the columns at their default (journal-lines.ts); older lines have every column.
        const row = rowWithDefaults(op.row);
        const step: Step = { kind: op.op === 'open' ? 'exchange.opened' : 'exchange.refused', row, write: { insert: row } };
        inserting.set(row.id, step);
        if (op.op === 'open') this.#remember(row.id, row);
        steps.push(step);
        return true;
      }
      case 'progress':
      case 'finish': {
        if (typeof op.id !== 'string' || typeof op.columns !== 'object' || op.columns === null) return false;
        let columns = op.columns as Partial<ExchangeState>;
        if (op.op === 'finish' && op.answer !== undefined) columns = { ...columns, ...answerColumns(op.answer, columns.response_body) };
        const kind = op.op === 'finish' ? 'exchange.finished' : 'exchange.progress';
        const pending = inserting.get(op.id);
        let row: ExchangeState;
        if (pending) {
          // The store never holds the earlier state: one insert of this one, vouched for by one event.
          row = Object.assign(pending.row, columns);
          pending.kind = kind;
        } else {
          const previous = this.#rows.get(op.id) ?? (this.#readRow.get(op.id) as ExchangeState | undefined);
          // Progress of a row never opened (or pruned meanwhile) has nothing to vouch for.
          if (!previous) return true;
          row = { ...previous, ...columns };
          steps.push({ kind, row, write: { update: op.id, columns } });
        }
        if (op.op === 'finish') this.#rows.delete(op.id);
        else this.#remember(op.id, row);
        return true;
      }
      default:
        return false;
    }
  }

  #remember(id: string, row: ExchangeState): void {
    if (this.#rows.size >= maxRowsInMemory) this.#rows.clear();
    this.#rows.set(id, row);
  }

  #writerGone(name: string): boolean {
    if (this.#gatewayHoldsStore || (this.#ownPrefix !== undefined && name.startsWith(this.#ownPrefix))) return false;
    const pid = segmentPid(name);
    // This pid but not this writer's prefix: a previous run (a container's pid 1). Without
    // a prefix to tell, a segment of this process is assumed live.
    if (pid === process.pid) return this.#ownPrefix !== undefined;
    return pid !== undefined && !processAlive(pid);
  }

  #remove(name: string): void {
    try {
      unlinkSync(segmentPath(this.#dir, name));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
}

/** An event about a segment itself (journal_begun, journal_written, journal_applied). */
function segmentEvent(kind: string, details: { segment: string; bytes?: number; ended?: boolean }): RecordWrite {
  return { event: { kind, actor: 'gatehouse', target: null, details } };
}

/** A line that is not a record operation: chained as an event, so the gap is on record. */
function damaged(segment: string, offset: number): RecordWrite {
  return { event: { kind: 'recording.journal_damaged', actor: 'gatehouse', target: null, details: { segment, offset } } };
}

/**
 * Applies whatever the journal of this SQLite store holds that is not applied yet: a
 * CLI command does this before it reads, so records a stopped or crashed gateway left
 * in the journal are found. Safe beside a running gateway (positions are transactional).
 */
export function applyJournalOnce(sqlitePath: string, chain: ChainOptions, options: { gatewayHoldsStore?: boolean } = {}): void {
  // No early return when no segment is left: a deleted one is found by its row.
  const applier = new JournalApplier(sqlitePath, { chain, gatewayHoldsStore: options.gatewayHoldsStore });
  try {
    applier.applyPending();
  } finally {
    applier.close();
  }
}

/**
 * Waits (at most `timeoutMs`) until the running gateways whose journal segments are live
 * have applied every complete line written so far. A CLI command calls it before
 * applyJournalOnce: the events of lines a CLI applies itself are chained but never reach
 * the gateway's audit sinks, so a `sessions list` during traffic left silent gaps in the
 * SIEM. A gateway that does not catch up in time (stuck) is applied for, as before.
 */
export async function awaitLiveJournalWriters(db: Kysely<Database>, sqlitePath: string, options: { gatewayHoldsStore?: boolean; timeoutMs?: number } = {}): Promise<void> {
  const dir = journalDirOf(sqlitePath);
  const targets = new Map<string, number>();
  for (const name of listSegments(dir)) {
    const pid = segmentPid(name);
    // With a gateway holding the store every segment is its (JournalApplierOptions).
    if (!options.gatewayHoldsStore && (pid === undefined || pid === process.pid || !processAlive(pid))) continue;
    const through = completeLinesEnd(segmentPath(dir, name));
    if (through > 0) targets.set(name, through);
  }
  const deadline = Date.now() + (options.timeoutMs ?? 2000);
  while (targets.size > 0 && Date.now() < deadline) {
    const rows = await db.selectFrom('record_journal').select(['segment', 'applied', 'done']).where('segment', 'in', [...targets.keys()]).execute();
    for (const row of rows) if (row.done || Number(row.applied) >= targets.get(row.segment)!) targets.delete(row.segment);
    if (targets.size > 0) await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The end of the last complete line of a segment (0 when it is gone or has none). */
function completeLinesEnd(path: string): number {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return 0;
  }
  try {
    const size = fstatSync(fd).size;
    // No line end in the tail (one huge line being written): wait for the whole file.
    return lastLineEnd(fd, size, size);
  } finally {
    closeSync(fd);
  }
}

/** The end of the last line in the 64 KiB before `size`; `none` when no line ends there. */
function lastLineEnd(fd: number, size: number, none: number): number {
  const length = Math.min(size, 64 * 1024);
  const tail = Buffer.allocUnsafe(length);
  readSync(fd, tail, 0, length, size - length);
  const end = tail.lastIndexOf(newline);
  return end < 0 ? none : size - length + end + 1;
}
