// The database side of a PostgreSQL session: each message is routed to what it answers
// (the FIFO in session-core.ts: pipelining keeps answers in order), masked, counted and
// relayed. Enforces:
// - rows beyond `maxRows` are never forwarded, values are masked — result-rows.ts;
// - a Query or Execute running past `statementTimeoutMs` is cancelled upstream (57014)
//   — statement-timer.ts, session-core.ts;
// - a refused statement's place in the answers gets our ErrorResponse, not the
//   database's answer to the bogus Bind;
// - each statement's outcome is recorded when it ends (in a transaction still to be
//   committed: when the commit is known — transaction-outcome.ts), and durable before
//   the ReadyForQuery that ends it is released — statement-recording.ts;
// - the database's error for a batch's Sync (its implicit commit failed) is relayed, and
//   the session goes on;
// - what one batch of messages produces leaves in one write — outbox.ts;
// - a client_encoding other than UTF-8 ends the session (SQL could not be inspected).

import { GatehouseError } from '../../errors/index.js';
import type { EntityCounts } from '../../mask/index.js';
import { bodyEquals, parseCommandTag, parseNoticeFields, frameLength, queryMessage, type Frame } from './codec.js';
import { probeAnswered } from './copy-out.js';
import { errorResponseFor } from './errors.js';
import { ResultRows } from './result-rows.js';
import { maskingActive } from './mask-rows.js';
import { maskServerMessage } from './server-messages.js';
import { checkParameterStatus } from './parameter-status.js';
import type { SessionCore } from './session-core.js';
import type { Pending, PortalInfo, Run, StatementInfo } from './session-state.js';
import { endWrappedRuns, failWithCommitError, rolledBack, settleUncommitted, statementTimeoutError } from './transaction-outcome.js';

/** What a handler returns when it has arranged for the pump to go on by itself (one reaction per wait, not a promise the pump reacts to). */
const continues = Symbol('continues');

export class DatabaseMessages {
  readonly #core: SessionCore;
  readonly #rows: ResultRows;
  /** Set when a client-bound push hit the outbox bound and the socket asked to drain. */
  #clientDrain: Promise<void> | undefined;
  #lastTag: { readonly body: Buffer; readonly tag: string } | undefined;
  #swallowUntilReady = false;
  /** A ReadyForQuery waiting for its statements' outcomes to be durable. */
  #heldReady: Frame | undefined;
  /** The database sent a FATAL (e.g. pg_terminate_backend): it is the session's last word, not ours. */
  #databaseFatal = false;
  /** An error (the database's, or a refusal's) came in the extended batch not yet ended by its Sync. */
  #batchFailed = false;

  constructor(core: SessionCore) {
    this.#core = core;
    this.#rows = new ResultRows(core.ctx.connection, { emit: (bytes) => this.#emit(bytes), stop: (run, error) => this.#stop(run, error) });
  }

  /** As ClientMessages.pump, for the database's messages: answers already buffered are relayed in one write. */
  readonly pump = (): void => {
    try {
      const source = this.#core.upstream.source;
      for (;;) {
        const frame = source.tryRead();
        if (!frame) {
          const drain = this.#core.toClient.flush();
          if (drain) {
            drain.then(this.pump, this.#failed);
            return;
          }
          const ended = source.ended;
          if (ended) throw ended;
          source.wait(this.pump);
          return;
        }
        if (this.#onUpstream(frame) === continues) return;
        if (!this.#afterUpstream()) return;
      }
    } catch (error) {
      this.#failed(error);
    }
  };

  /** After a database message: waits for the client socket to drain if it asked to (false: continues later), then re-arms the statement timer. */
  #afterUpstream(): boolean {
    this.#core.settleIdle();
    const drain = this.#clientDrain;
    if (drain) {
      this.#clientDrain = undefined;
      drain.then(this.#drained, this.#failed);
      return false;
    }
    this.#core.timer.arm(this.#core.pending);
    return true;
  }

  readonly #handled = (): void => {
    try {
      if (this.#afterUpstream()) this.pump();
    } catch (error) {
      this.#failed(error);
    }
  };

  /** The outcomes a ReadyForQuery waited for are durable: it is released, and the pump goes on. */
  readonly #releaseHeld = (): void => {
    const ready = this.#heldReady!;
    this.#heldReady = undefined;
    try {
      this.#released(ready);
    } catch (error) {
      return this.#failed(error);
    }
    this.#handled();
  };

  readonly #drained = (): void => {
    try {
      this.#core.timer.arm(this.#core.pending);
    } catch (error) {
      return this.#failed(error);
    }
    this.pump();
  };

  readonly #failed = (error: unknown): void => {
    const core = this.#core;
    if (core.closed) return core.end(undefined);
    const failure = error instanceof GatehouseError ? error : new GatehouseError('upstream_failed', { detail: error instanceof Error ? error.message : String(error) });
    if (!core.client.destroyed) core.toClient.end(this.#databaseFatal ? Buffer.alloc(0) : errorResponseFor(failure, 'FATAL'));
    core.end(failure);
  };

  #emit(bytes: Buffer | Frame, force = false): undefined {
    if (this.#swallowUntilReady && !force) return;
    const core = this.#core;
    core.bytesOut += Buffer.isBuffer(bytes) ? bytes.length : frameLength(bytes);
    const drain = core.toClient.push(bytes);
    if (drain) this.#clientDrain = drain;
  }

  /** Relays one database message; `continues` only at ReadyForQuery while outcomes are committed (the pump goes on when they are). */
  #onUpstream(frame: Frame): typeof continues | undefined {
    const t = frame.type;
    // Asynchronous messages, valid at any time: NoticeResponse, NotificationResponse, ParameterStatus.
    if (t === 'S') checkParameterStatus(frame.body);
    // Errors, notices, notifications and reported settings can quote a masked column's value (server-messages.ts).
    if (t === 'E' || t === 'N' || t === 'A' || t === 'S') frame = this.#masked(frame);
    if (t === 'E' && isFatal(frame.body)) this.#databaseFatal = true;
    if (t === 'N' || t === 'A' || t === 'S') return this.#emit(frame, true);
    // COPY FROM STDIN begins at CopyInResponse; an error or ReadyForQuery ends it on the database's side.
    // A client that sent the data at once behind its COPY has ended it already (copyEnded).
    if (t === 'G') this.#core.copyIn = !this.#core.copyEnded;
    else if (t === 'E' || t === 'Z') this.#core.copyIn = false;
    if (t === 'Z') {
      this.#core.transactionStatus = String.fromCharCode(frame.body[0] ?? 73);
      // A search_path change the transaction made may have gone back with it (SET LOCAL).
      if (this.#core.transactionStatus === 'I') this.#core.tables.transactionEnded();
    }
    const pending = this.#core.pending;
    const head = pending[0];
    if (!head) {
      if (t === 'E') return this.#emit(frame, true); // e.g. FATAL on admin shutdown
      throw new GatehouseError('upstream_failed', { detail: `unexpected message '${t}' from the database with nothing outstanding` });
    }
    switch (head.kind) {
      case 'query':
        return this.#onQueryAnswer(head, frame);
      case 'execute':
        return this.#onExecuteAnswer(head, frame);
      case 'parse':
      case 'bind':
      case 'close': {
        // ParseComplete, BindComplete, CloseComplete
        if (t === (head.kind === 'parse' ? '1' : head.kind === 'bind' ? '2' : '3')) {
          pending.shift();
          if (head.kind === 'close') head.closed?.();
          return this.#emit(frame);
        }
        if (t === 'E' && head.kind === 'bind' && head.portal) head.portal.bindFailed = true;
        if (t === 'E') return this.#extendedError(frame, head.kind === 'parse' ? head.statement : head.kind === 'bind' ? head.portal : undefined);
        break;
      }
      case 'describe':
        if (t === 't') return this.#emit(frame); // ParameterDescription, then RowDescription or NoData
        if (t === 'T' || t === 'n') {
          pending.shift();
          if (head.described) head.described.columns = t === 'T' ? this.#rows.describe(frame).columns : [];
          return this.#emit(frame);
        }
        if (t === 'E') return this.#extendedError(frame, head.described);
        break;
      case 'sync':
        // The commit of the batch's implicit transaction failed (a deferred constraint, a
        // serialization failure): the error is the batch's, and its Executes' records say so.
        if (t === 'E' && !head.silent) {
          failWithCommitError(this.#core.uncommitted, frame);
          return this.#emit(frame);
        }
        if (t === 'Z') {
          pending.shift();
          settleUncommitted(this.#core.recording, this.#core.uncommitted, frame, this.#batchFailed || head.silent === true);
          this.#batchFailed = false;
          return head.silent ? undefined : this.#ready(frame);
        }
        break;
      case 'absorb':
        if (t === 'E') {
          pending.shift();
          return undefined;
        }
        if (t === 'Z') {
          // Our Bind was taken as the fault of a COPY the cancel ended: this is our Sync's answer.
          pending.splice(0, pending[1]?.kind === 'sync' ? 2 : 1);
          return undefined;
        }
        break;
      case 'probe':
        // The gateway's own description of a COPY's columns (copy-out.ts), or look-up of tables (table-lookup.ts): kept, not relayed.
        if (probeAnswered(head, frame)) {
          pending.shift();
          // Inside the client's batch (a Flush, not a Sync, ended it): the database now skips to the client's Sync.
          if (t === 'E') this.#batchFailed = true;
        }
        return undefined;
      case 'begin':
        // The gateway's BEGIN before a wrapped Query: not relayed.
        if (t === 'C') return undefined;
        if (t === 'Z') {
          pending.shift();
          return undefined;
        }
        break;
      case 'end':
        // The gateway's COMMIT or ROLLBACK: a commit that fails (a deferred constraint) is
        // the Query's error, as the database's own commit at its end would have been, and
        // every statement of the Query is recorded as failed with it.
        if (t === 'C') return undefined;
        if (t === 'E') {
          if (head.commit) failWithCommitError(head.runs, frame);
          return this.#emit(frame);
        }
        if (t === 'Z') {
          pending.shift();
          endWrappedRuns(this.#core.recording, head.runs, head.commit, this.#core.ctx.connection);
          return this.#ready(frame);
        }
        break;
      case 'denied':
        if (t === 'E') {
          this.#batchFailed = true;
          pending.shift();
          this.#emit(errorResponseFor(head.error));
          return this.#skipToSync();
        }
        break;
    }
    throw new GatehouseError('upstream_failed', { detail: `unexpected message '${t}' from the database while waiting for ${head.kind}` });
  }

  /** The message as masking lets it go: by the rules of the statement it answers, else the connection's. */
  #masked(frame: Frame): Frame {
    const head = this.#core.pending[0];
    const run = head?.kind === 'query' ? head.runs[head.index] : head?.kind === 'execute' ? head.run : undefined;
    const rules = run?.masking ?? this.#core.ctx.connection.masking;
    if (!maskingActive(rules)) return frame;
    const counts: EntityCounts = {};
    const masked = maskServerMessage(frame, rules, counts, answered(head, run));
    if (!masked) return frame;
    if (run) for (const [type, n] of Object.entries(counts)) (run.maskCounts ??= {})[type] = (run.maskCounts[type] ?? 0) + n;
    return { type: frame.type, body: masked.subarray(5), raw: masked };
  }

  #onQueryAnswer(head: Extract<Pending, { kind: 'query' }>, frame: Frame): typeof continues | undefined {
    const run = head.runs[head.index];
    const recording = this.#core.recording;
    switch (frame.type) {
      case 'T': { // RowDescription
        const shape = this.#rows.describe(frame, run?.derived, run?.masking);
        if (shape.error && run) return this.#stop(run, shape.error);
        ({ columns: head.columns, plan: head.plan } = shape);
        return this.#emit(frame);
      }
      case 'D': // DataRow
        return this.#rows.row(run, frame, head.plan);
      case 'd': // CopyData (COPY … TO STDOUT): one row per message
        return this.#rows.row(run, frame, undefined);
      case 'H': // CopyOutResponse
        return this.#rows.copyOut(run, frame);
      case 'G': // CopyInResponse
      case 'c': // CopyDone
      case 'I': // EmptyQueryResponse
        return this.#emit(frame);
      case 'C': // CommandComplete
        if (run) {
          run.tag = this.#commandTag(frame);
          run.completed?.();
          // Recorded at ReadyForQuery (or, wrapped, at the gateway's COMMIT): its commit may still fail.
          if (this.#swallowUntilReady && head.wrapped) recording.finish(run, rolledBack('Query'), 'rolled_back');
        }
        head.index++;
        head.columns = undefined;
        head.plan = undefined;
        return this.#emit(frame);
      case 'E': {
        // After its last statement: the commit of its implicit transaction failed.
        if (!run) {
          failWithCommitError(head.runs, frame);
          return this.#emit(frame);
        }
        // ErrorResponse ends the whole Query: later statements do not run, and in an
        // implicit transaction (no block open, none of its own) the earlier ones are rolled back.
        const replaced = this.#upstreamError(run, frame);
        if (this.#core.transactionStatus === 'I' && !head.runs.some((r) => r.exchange.operation === 'sql.transaction')) {
          for (const r of head.runs.slice(0, head.index)) recording.finish(r, rolledBack('Query', 'a later statement'), 'rolled_back');
        }
        for (const r of head.runs.slice(head.index + 1)) recording.finish(r, new GatehouseError('upstream_failed', { message: 'not executed: an earlier statement in the same Query failed' }), 'not_executed');
        head.index = head.runs.length;
        return this.#emit(replaced);
      }
      case 'Z': // ReadyForQuery
        this.#core.pending.shift();
        if (head.wrapped && frame.body[0] !== 73) return this.#endWrapped(frame, head.runs);
        for (const r of head.runs) recording.finish(r);
        return this.#ready(frame);
      default:
        throw new GatehouseError('upstream_failed', { detail: `unexpected message '${frame.type}' in a Query answer` });
    }
  }

  #onExecuteAnswer(head: Extract<Pending, { kind: 'execute' }>, frame: Frame): undefined {
    const run = head.run;
    switch (frame.type) {
      case 'D': {
        if (head.plan === null) {
          const plan = this.#rows.planForExecute(head.portal, run.masking);
          if (plan instanceof GatehouseError) return this.#stop(run, plan);
          head.plan = plan;
        }
        return this.#rows.row(run, frame, head.plan);
      }
      case 'd':
        return this.#rows.row(run, frame, undefined);
      case 'H':
        return this.#rows.copyOut(run, frame);
      case 'G':
        this.#core.forgetSyncsInCopy();
        return this.#emit(frame);
      case 'c':
        return this.#emit(frame);
      case 'C': // CommandComplete
      case 'I': // EmptyQueryResponse
      case 's': // PortalSuspended
        run.tag = frame.type === 'C' ? this.#commandTag(frame) : frame.type === 's' ? 'SUSPENDED' : 'EMPTY';
        if (frame.type === 'C') run.completed?.();
        // In an implicit transaction it is recorded at the batch's Sync, whose commit may fail.
        if (this.#swallowUntilReady) this.#core.recording.finish(run, rolledBack('batch'), 'rolled_back');
        else if (this.#core.transactionStatus === 'I') this.#core.uncommitted.push(run);
        else this.#core.recording.finish(run);
        this.#core.pending.shift();
        return this.#emit(frame);
      case 'E':
        return this.#extendedError(this.#upstreamError(run, frame));
      default:
        throw new GatehouseError('upstream_failed', { detail: `unexpected message '${frame.type}' in an Execute answer` });
    }
  }

  /**
   * The end of a wrapped Query (SimpleQueries #wrappedQuery, client-query.ts), at its ReadyForQuery,
   * which is not relayed: COMMIT if the client was told every statement ran, else
   * ROLLBACK. A cancel of ours still out when the Query ended (its statement timeout
   * came as it finished) is taken as the timeout of the Query: it is rolled back, and
   * the client told so.
   */
  #endWrapped(ready: Frame, runs: Run[]): undefined {
    const core = this.#core;
    const status = String.fromCharCode(ready.body[0] ?? 73);
    const timedOut = status === 'T' && !this.#swallowUntilReady && core.cancelling !== undefined;
    if (timedOut) this.#emit(errorResponseFor(statementTimeoutError(this.#core.ctx.connection)));
    const commit = status === 'T' && !this.#swallowUntilReady && !timedOut;
    core.expect({ kind: 'end', runs, commit });
    core.toUpstream(queryMessage(commit ? 'commit' : 'rollback'));
    core.flushToDatabase()?.catch(this.#failed);
    return undefined;
  }

  /** CommandComplete's tag; a session's statements mostly end with the same one ("SELECT 1"), kept as the last tag and its bytes. */
  #commandTag(frame: Frame): string {
    const last = this.#lastTag;
    if (last && bodyEquals(frame, last.body)) return last.tag;
    const tag = parseCommandTag(frame);
    this.#lastTag = { body: Buffer.from(frame.body), tag };
    return tag;
  }

  /** Ends a statement from the gateway's side: our error now, the database's rest swallowed until ReadyForQuery. */
  #stop(run: Run, error: GatehouseError): undefined {
    run.error = { code: error.code, detail: error.message, status: error.status };
    run.stopped = error.code;
    this.#emit(errorResponseFor(error));
    this.#swallowUntilReady = true;
    // With statements already sent behind this one the cancel could land on them: the
    // rest of this one is then only discarded.
    const core = this.#core;
    const sent = core.pending.length - core.unsent;
    const behind = core.pending.slice(1, sent);
    if (!run.done && !behind.some((p) => p.kind !== 'sync')) core.cancel();
    // Its transaction is not over on the database (no Sync or Query of the client's has
    // gone behind it: SessionCore.holdsSync): it fails there too.
    if (!behind.some((p) => p.kind === 'query' || (p.kind === 'sync' && !p.silent))) core.failTransaction();
    // An Execute's error puts the client's batch in error: what it sends until its Sync
    // is skipped, as the database would skip it (the cancel's own Sync ends the
    // database's skipping, and the rest would run unseen).
    const head = core.pending[0];
    if (head?.kind === 'execute' && head.run === run && !core.pending.some((p) => p.kind === 'sync' && !p.silent)) core.skippingToSync = true;
  }

  /** The database's ErrorResponse for a statement: recorded; a timeout cancel is reworded. */
  #upstreamError(run: Run, frame: Frame): Buffer {
    const fields = parseNoticeFields(frame.body);
    const code = fields.get('C') ?? '';
    const { connection } = this.#core.ctx;
    if (run.timedOut && code === '57014') {
      const error = statementTimeoutError(connection);
      this.#core.recording.finish(run, error);
      return errorResponseFor(error);
    }
    if (!run.error) run.error = { code: 'sql_error', detail: `${code}: ${fields.get('M') ?? ''}`, status: 400 };
    this.#core.recording.finish(run);
    return frame.raw;
  }

  /**
   * ErrorResponse in extended mode: the database skips to Sync, and so does our FIFO.
   * `failed`: the statement or portal whose Parse, Bind or Describe the error answers.
   */
  #extendedError(raw: Buffer | Frame, failed?: StatementInfo | PortalInfo): undefined {
    this.#batchFailed = true;
    this.#core.pending.shift();
    this.#emit(raw);
    return this.#skipToSync(failed && !Buffer.isBuffer(raw) ? { of: failed, error: raw } : undefined);
  }

  /**
   * The database skips to Sync: the messages skipped did not run (SessionCore.skipped).
   * An Execute that runs the statement or portal whose Parse, Bind or Describe failed
   * (`select $1::int / 0` fails at Bind, a missing table at Parse: what a driver sends
   * as one batch) failed with the database's error, and is recorded so. With no Sync of
   * the client's queued yet, the client's messages until its Sync are skipped as they
   * come (a pipelining client goes on sending what it had queued).
   */
  #skipToSync(failed?: { readonly of: StatementInfo | PortalInfo; readonly error: Frame }): undefined {
    const core = this.#core;
    const pending = core.pending;
    while (pending.length > 0 && pending[0]!.kind !== 'sync') {
      const p = pending.shift()!;
      if (p.kind === 'execute' && failed && p.portal !== undefined && (p.portal === failed.of || p.portal.statement === failed.of)) this.#upstreamError(p.run, failed.error);
      else core.skipped(p);
    }
    // Entries skipped may have been unsent ones: the count stays within the FIFO.
    core.unsent = Math.min(core.unsent, pending.length);
    if (pending.length === 0) core.skippingToSync = true;
    return undefined;
  }

  /**
   * ReadyForQuery: released once the outcome of every statement it ends is durable
   * (what went before it waits in the outbox: the client can do nothing before it).
   */
  #ready(ready: Frame): typeof continues | undefined {
    const settled = this.#core.recording.settled();
    if (!settled) return this.#released(ready);
    this.#heldReady = ready;
    settled.then(this.#releaseHeld, this.#failed);
    return continues;
  }

  #released(ready: Frame): undefined {
    this.#swallowUntilReady = false;
    this.#emit(ready, true);
  }
}

/**
 * The statement a message answers: its text, and whether it may read a table (one that
 * names no table and runs no user-defined code, `select $1::int`, quotes in its errors
 * only what the client sent). Undefined when unknown.
 */
function answered(head: Pending | undefined, run: Run | undefined): { text: string; readsTables: boolean } | undefined {
  const facts: readonly { readonly text: string; readonly tables: readonly string[]; readonly risky: readonly string[] }[] | undefined = run
    ? run.exchange.facts.sql && [run.exchange.facts.sql]
    : head?.kind === 'parse' ? head.statement?.facts
    : head?.kind === 'bind' ? head.portal?.statement?.facts
    : head?.kind === 'describe' ? (head.described && ('facts' in head.described ? head.described : head.described.statement))?.facts
    : undefined;
  if (facts === undefined || facts.length === 0) return undefined;
  return { text: facts.map((f) => f.text).join('\n'), readsTables: facts.some((f) => f.tables.length > 0 || f.risky.includes('unknown-tables')) };
}

/** An ErrorResponse that ends the session (FATAL, PANIC): errors are rare, so parsing its fields costs nothing that matters. */
function isFatal(body: Buffer): boolean {
  const fields = parseNoticeFields(body);
  const severity = fields.get('V') ?? fields.get('S');
  return severity === 'FATAL' || severity === 'PANIC';
}
