// What the two loops of a PostgreSQL session share (client-messages.ts reads the
// client, database-messages.ts reads the database): the FIFO of answers the database
// owes, kept in step with the outbox of messages bound for it; the cancel gate between
// them; the client's outbox; the recording, the statement timer, the counters; and how
// the session ends. Enforces:
// - the FIFO and the bytes sent agree: an entry is pushed with its message, and what
//   the gateway inserts itself (after a cancel of ours) goes in ahead of the messages
//   not yet sent, in both;
// - after a cancel of ours nothing more is sent until the database has taken it, and
//   then a Bind to a statement that does not exist goes first (see `cancel`);
// - a statement timeout in COPY FROM STDIN ends the COPY with a CopyFail instead (a
//   backend waiting for the client's data does not take a cancel: see `#failCopy`);
// - after an error in extended mode the database discards every message until Sync,
//   and so does the gateway for the messages it has not sent yet: nothing but the Sync
//   goes, and each message is as never run (see `skipped`);
// - a statement the gateway stops (maxRows, rows it cannot mask) fails its transaction
//   on the database as it fails for the client: a Sync that would commit a batch waits
//   while an Execute of the batch may still be stopped (`holdsSync`), and a stop puts
//   the bogus Bind ahead of it (`failTransaction`);
// - the first side to end decides why the session ended.

import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { GatehouseError } from '../../errors/index.js';
import { bindMessage, copyFailMessage, syncMessage, type Frame } from './codec.js';
import { maskingFor } from './connection.js';
import { maskingActive } from './mask-rows.js';
import type { UpstreamSession } from './forward.js';
import { Outbox } from './outbox.js';
import type { SessionContext } from './session.js';
import type { Pending, Run } from './session-state.js';
import { StatementRecording } from './statement-recording.js';
import { runningStatement, StatementTimer } from './statement-timer.js';
import { SessionTables } from './table-catalog.js';

export class SessionCore {
  readonly ctx: SessionContext;
  readonly client: Duplex;
  readonly upstream: UpstreamSession;
  /** What the database owes, in order. */
  readonly pending: Pending[] = [];
  readonly recording: StatementRecording;
  readonly timer: StatementTimer;
  readonly toClient: Outbox;
  readonly toDatabase: Outbox;
  /** The statement a refusal's Bind names: one that cannot exist on the database. */
  readonly deniedStatement = `gatehouse_denied_${randomBytes(8).toString('hex')}`;
  /** A cancel of ours (cancel()) not yet followed by the bogus Bind that absorbs it. */
  cancelling: Promise<void> | undefined;
  /** Entries at the end of `pending` whose messages are still in the outbox (unsent). */
  unsent = 0;
  /** Set once run() has seen the end: later failures are the teardown's, not news. */
  closed = false;
  bytesIn = 0;
  bytesOut = 0;
  statements = 0;
  /**
   * The database is in COPY FROM STDIN (its CopyInResponse relayed) and the client has
   * not ended it (CopyDone, CopyFail): the backend may be waiting for the client's data.
   */
  copyIn = false;
  /**
   * The client sent CopyDone or CopyFail since its last Execute or Query went to the
   * database: a COPY the database begins after that is already over for the client.
   */
  copyEnded = false;
  /**
   * The client's batch is in error with no Sync of the client's queued behind it (the
   * database's error in extended mode, a refusal's Bind, or the gateway's own error for
   * an Execute it stopped): the client's messages until its Sync are not sent, but
   * skipped here as the database skips them (`forward`).
   */
  skippingToSync = false;
  /**
   * Executes that completed in an implicit transaction (the last ReadyForQuery said I):
   * recorded at the batch's Sync, when the database has committed them or not (a
   * deferred constraint fails the commit; an error later in the batch rolls it back).
   */
  readonly uncommitted: Run[] = [];
  /** The transaction status of the database's last ReadyForQuery: I idle, T in a block, E failed block. */
  transactionStatus = 'I';
  /** The names the session's table names may stand for (table-catalog.ts); none known when the login read no catalog. */
  readonly tables: SessionTables;
  /** A client message waiting until `test` holds of the FIFO (whenIdle, whenBatchAnswered). */
  #waiting: { readonly test: () => boolean; readonly resolve: () => void } | undefined;
  /** Resolves run() with why the session ended: the first side to end decides. */
  #ended: ((why: GatehouseError | undefined) => void) | undefined;

  constructor(ctx: SessionContext, client: Duplex, upstream: UpstreamSession) {
    this.ctx = ctx;
    this.client = client;
    this.upstream = upstream;
    this.tables = ctx.tables ?? new SessionTables(undefined);
    this.recording = new StatementRecording(ctx.stages, (decision) => maskingFor(ctx.connection, decision));
    this.timer = new StatementTimer(ctx.connection.statementTimeoutMs, (head) => this.#onStatementTimeout(head));
    this.toClient = new Outbox(client);
    this.toDatabase = new Outbox(upstream.socket, Infinity);
  }

  /** Waits for the first side to end; `start` starts both loops. */
  ended(start: () => void): Promise<GatehouseError | undefined> {
    return new Promise((resolve) => {
      this.#ended = resolve;
      start();
    });
  }

  end(why: GatehouseError | undefined): void {
    const ended = this.#ended;
    this.#ended = undefined;
    ended?.(why);
  }

  /** Expects the answer to `frame`, then queues it for the database; while the database skips to Sync, only a Sync goes (the rest is skipped). */
  forward(expected: Pending, frame: Frame): Promise<void> | undefined {
    if (this.skippingToSync) {
      if (expected.kind !== 'sync') return this.skipped(expected);
      this.skippingToSync = false;
    }
    this.expect(expected);
    if (expected.kind === 'execute' || expected.kind === 'query') this.copyEnded = false;
    this.timer.arm(this.pending);
    return this.toUpstream(frame);
  }

  expect(expected: Pending): void {
    this.pending.push(expected);
    this.unsent++;
  }

  /**
   * A message the database skipped (an error earlier in its batch), or one not sent
   * because it would have been: as never run. A Parse leaves the name's statement as it
   * was; a Bind leaves the portal of its name, over whatever statement (kept past
   * ROLLBACK TO SAVEPOINT), so nothing the gateway knows describes it; its statements
   * are recorded as not executed.
   */
  skipped(p: Pending): undefined {
    if (p.kind === 'parse') p.skipped?.();
    else if (p.kind === 'probe') {
      p.skipped = true;
      p.answered('skipped: an earlier message in the same batch failed');
    }
    else if (p.kind === 'bind' && p.portal) p.portal.bindFailed = true;
    else if (p.kind === 'execute' || p.kind === 'query') {
      const error = new GatehouseError('upstream_failed', { message: 'not executed: an earlier message in the same batch failed' });
      for (const run of p.kind === 'execute' ? [p.run] : p.runs) this.recording.finish(run, error, 'not_executed');
    }
    return undefined;
  }

  /**
   * The Execute at the head of the FIFO began COPY FROM STDIN: the database ignores Sync
   * until the client's CopyDone or CopyFail, so the client's Syncs queued right behind it
   * (libpq's PQexecParams sends one before the data) get no answer and are forgotten;
   * not one the client sent after its CopyDone or CopyFail (data sent at once behind
   * the Execute, or while the Execute was held for approval): the database answers it.
   */
  forgetSyncsInCopy(): void {
    while (this.pending.length > 1) {
      const next = this.pending[1]!;
      if (next.kind !== 'sync' || next.silent || next.afterCopyEnd) break;
      // Still in the outbox: one unsent entry fewer (the Sync itself still goes).
      if (this.pending.length - this.unsent <= 1) this.unsent--;
      this.pending.splice(1, 1);
    }
  }

  /** Queues a message for the database (sent when the client loop would wait). */
  toUpstream(bytes: Buffer | Frame): Promise<void> | undefined {
    if (this.upstream.socket.destroyed) throw new GatehouseError('upstream_failed', { detail: 'database connection closed' });
    return this.toDatabase.push(bytes);
  }

  /**
   * A cancel the gateway starts (row limit, statement timeout, unmaskable rows).
   * PostgreSQL cancels whatever the backend runs when the signal lands, and a signal
   * that lands between statements is kept for the next one; so nothing more is sent
   * until the database has taken the cancel (the cancel connection closes once the
   * backend is signalled), and then a Bind to a statement that does not exist goes
   * first: its error clears any cancel still pending (and fails an open transaction
   * block, as the stopped statement's error would have). Its answer is not relayed.
   */
  cancel(): void {
    this.cancelling ??= this.ctx.cancelUpstream().catch(() => undefined);
  }

  /** Sends what is queued for the database, after absorbing a cancel of ours if one is out. */
  flushToDatabase(): Promise<void> | undefined {
    const cancelling = this.cancelling;
    if (!cancelling) return this.sendToDatabase();
    return cancelling.then(() => {
      if (this.cancelling === cancelling) {
        this.cancelling = undefined;
        // Ahead of the messages not yet sent, in the byte stream and in the FIFO alike.
        this.pending.splice(this.pending.length - this.unsent, 0, { kind: 'absorb' }, { kind: 'sync', silent: true });
        this.toDatabase.unshift(Buffer.concat([bindMessage('', this.deniedStatement), syncMessage()]));
      }
      return this.sendToDatabase();
    });
  }

  sendToDatabase(): Promise<void> | undefined {
    this.unsent = 0;
    return this.toDatabase.flush();
  }

  /** Resolves once the database has answered everything sent (its last ReadyForQuery seen). */
  whenIdle(): Promise<void> {
    return this.#when(() => this.pending.length === 0);
  }

  /** Resolves once no Execute of the open batch (the FIFO after the client's last Sync) is owed an answer. */
  whenBatchAnswered(): Promise<void> {
    return this.#when(() => !this.#batch().some((p) => p.kind === 'execute'));
  }

  /** Resolves once the database is on `p` (the head of the FIFO), or has answered it. */
  whenAtHead(p: Pending): Promise<void> {
    return this.#when(() => this.pending[0] === p || !this.pending.includes(p));
  }

  #when(test: () => boolean): Promise<void> {
    if (test()) return Promise.resolve();
    return new Promise((resolve) => (this.#waiting = { test, resolve }));
  }

  /** Called after each database message: releases a waiter (whenIdle, whenBatchAnswered) once its wait is over. */
  settleIdle(): void {
    const waiting = this.#waiting;
    if (waiting?.test()) {
      this.#waiting = undefined;
      waiting.resolve();
    }
  }

  /** The FIFO entries of the batch the client has not ended with a Sync yet. */
  #batch(): Pending[] {
    const pending = this.pending;
    let from = pending.length;
    while (from > 0 && !(pending[from - 1]!.kind === 'sync' && !(pending[from - 1] as { silent?: boolean }).silent)) from--;
    return pending.slice(from);
  }

  /**
   * Whether the client's Sync must wait for the answers of the batch's Executes before it
   * goes: the database commits the batch's implicit transaction at Sync, and a statement
   * the gateway stops later (more rows than maxRows, rows it cannot mask) must take the
   * transaction with it, as the client is told. Not needed when no Execute of the batch
   * can be stopped, nor when the batch only reads, outside a transaction block. Never
   * with a COPY FROM STDIN in the batch: libpq sends its Sync before the data, which the
   * client loop must go on reading for the COPY to end.
   */
  holdsSync(): boolean {
    const batch = this.#batch();
    if (batch.some((p) => p.kind === 'execute' && p.portal?.statement?.facts.some((f) => f.class === 'copy' && !f.copyOut))) return false;
    const maxRows = this.ctx.connection.maxRows;
    const stoppable = batch.some((p) => p.kind === 'execute' && !p.run.done && (maxRows !== undefined || maskingActive(p.run.masking)));
    if (!stoppable) return false;
    const outstanding = batch.length < this.pending.length;
    return outstanding || this.transactionStatus !== 'I' || !batch.every((p) => p.kind !== 'execute' || readsOnly(p.run.exchange.facts.sql));
  }

  /**
   * The gateway stopped a statement whose transaction the database has not ended yet:
   * before anything more goes, the bogus Bind (and a Sync of ours) fails that
   * transaction there, as the stop failed it for the client: the implicit one is rolled
   * back, a block is aborted. As after a cancel of ours (and with it, when one is out).
   */
  failTransaction(): void {
    this.cancelling ??= Promise.resolve();
  }

  #onStatementTimeout(head: Pending): void {
    if (runningStatement(this.pending) !== head || (head.kind !== 'query' && head.kind !== 'execute')) return;
    if (head.kind === 'execute') {
      if (head.run.done) return;
      head.run.timedOut = true;
    } else {
      // The database flushes a Query's answers only when the whole Query ends, so the
      // statement the cancel stops may be a later one than head.index says: every
      // statement not yet ended is marked, and the one the 57014 comes for is reworded.
      const running = head.runs.slice(head.index).filter((run) => !run.done);
      if (running.length === 0) return;
      for (const run of running) run.timedOut = true;
    }
    if (this.copyIn) return this.#failCopy();
    this.cancel();
  }

  /**
   * A statement timeout in COPY FROM STDIN: a backend waiting for the client's data does
   * not act on a CancelRequest until more data comes, and the Bind that would follow the
   * cancel (see `cancel`) then arrives in the middle of the COPY, which the database
   * answers by ending the session ("protocol synchronization was lost"). So the COPY is
   * ended with a CopyFail between two of the client's messages instead: the database
   * fails it with 57014 at once, reworded as the timeout, and ignores the client's
   * CopyData and CopyDone still on their way (in extended mode, up to Sync).
   */
  #failCopy(): void {
    this.copyIn = false;
    if (this.upstream.socket.destroyed) return;
    this.toDatabase.push(copyFailMessage('statement timeout (limits.statementTimeout)'));
    this.flushToDatabase()?.catch(() => undefined);
  }
}

/** A statement that only reads: SELECT, SHOW or EXPLAIN that calls no user-defined function (which may write). */
function readsOnly(sql: { readonly classes: readonly string[]; readonly risky: readonly string[] } | undefined): boolean {
  return sql !== undefined && sql.classes.every((c) => c === 'select' || c === 'show' || c === 'explain') && !sql.risky.includes('user-function');
}
