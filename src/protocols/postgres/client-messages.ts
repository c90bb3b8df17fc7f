// The client side of a PostgreSQL session: client messages read in order, inspected,
// decided, recorded and queued for the database (session-core.ts keeps the FIFO of
// answers in step). Query is handled in client-query.ts, Parse and Execute in
// client-extended.ts, what every statement goes through in client-statements.ts; this
// module reads, dispatches and goes on. Enforces, across them:
// - every statement is decided by policy before the database sees it (Query: each
//   statement; extended query: at Parse and again at Execute) — decide-statement.ts;
// - `require_approval`: the statement is held until a reviewer decides — hold-statement.ts;
// - a refused statement gets an ErrorResponse in its place, in order; the database is
//   sent a Bind to a statement that does not exist, so its transaction state fails
//   exactly as if the statement had failed there (implicit transaction rolled back,
//   explicit block aborted) and, in extended mode, it skips to Sync as the client does;
// - after an error in extended mode, client messages are discarded until Sync, also
//   when the error came after the client sent them (session-core.ts, `skippingToSync`);
// - a Sync waits while an Execute of its batch may still be stopped by the gateway, so
//   that the stop fails the batch's transaction on the database too (#onSync);
// - what the session knows of prepared statements and portals follows what the database
//   did: a DEALLOCATE forgets at its CommandComplete, a Parse or Bind it skipped leaves
//   the name as it was (database-messages.ts), a parsed `execute p` runs only the p it
//   was decided as, and a SQL FETCH of a bound portal whose values it could not mask
//   is refused;
// - a statement's record is durable before it is forwarded; when recording fails the
//   statement is refused (recording_failed) and nothing is sent;
// - a malformed client message ends this session (FATAL 08P01), and no other.

import { GatehouseError } from '../../errors/index.js';
import { bodyReader, flushMessage, frameLength, MessageTooLarge, ProtocolViolation, type Frame } from './codec.js';
import { statementExchange } from './decide-statement.js';
import { errorResponseFor } from './errors.js';
import { ExtendedMessages } from './client-extended.js';
import { SimpleQueries } from './client-query.js';
import { ClientStatements, continues, type ClientFlow, type Waiting } from './client-statements.js';
import { FrameSource, SocketClosed } from './frame-source.js';
import type { SessionCore } from './session-core.js';
import type { Pending, Run } from './session-state.js';
import { requestOf } from './statement-recording.js';

export { maxStatementsPerQuery } from './client-query.js';

export class ClientMessages {
  readonly #core: SessionCore;
  readonly #source: FrameSource;
  readonly #s: ClientStatements;
  readonly #query: SimpleQueries;
  readonly #extended: ExtendedMessages;

  constructor(core: SessionCore, source: FrameSource) {
    this.#core = core;
    this.#source = source;
    this.#s = new ClientStatements(core);
    const flow: ClientFlow = {
      recorded: (expected, frame) => this.#recorded(expected, frame),
      notRecorded: (runs, error, simple) => this.#notRecorded(runs, error, simple),
      failed: this.#failed,
      pump: this.pump,
    };
    this.#query = new SimpleQueries(core, this.#s, flow);
    this.#extended = new ExtendedMessages(core, this.#s, flow);
  }

  /** See PostgresSession.cancelHold. */
  cancelHold(): boolean {
    return this.#s.cancelHold();
  }

  /**
   * Reads and handles client messages until one must wait (for inspection, recording,
   * approval or backpressure: it continues when that settles) or none is buffered (it
   * continues when bytes arrive). Messages already buffered are handled at once; what
   * they produced for the database leaves in one write when the client has nothing more
   * for now. No promise per message: it runs from the socket's data event.
   */
  readonly pump = (): void => {
    try {
      for (;;) {
        // An ended session (cut by a revocation or shutdown: its FATAL is sent) reads
        // nothing more: a statement the client sent after it is neither run nor recorded.
        if (this.#core.closed) return;
        const frame = this.#source.tryRead();
        if (!frame) {
          const drain = this.#core.flushToDatabase();
          if (drain) {
            drain.then(this.pump, this.#failed);
            return;
          }
          const ended = this.#source.ended;
          if (ended) throw ended;
          this.#source.wait(this.pump);
          return;
        }
        this.#core.bytesIn += frameLength(frame);
        if (frame.type === 'X') return this.#core.end(undefined); // Terminate
        const waiting = this.#onClient(frame);
        if (waiting) {
          if (waiting !== continues) waiting.then(this.#waited, this.#failed);
          return;
        }
      }
    } catch (error) {
      this.#failed(error);
    }
  };

  readonly #waited = (result: unknown): void => {
    if (result !== continues) this.pump();
  };

  /** A statement's record is durable: it is forwarded, and the pump goes on. */
  #recorded(expected: Pending, frame: Frame): void {
    let waiting: Promise<void> | undefined;
    try {
      waiting = this.#core.forward(expected, frame);
    } catch (error) {
      return this.#failed(error);
    }
    this.#goOn(waiting);
  }

  /** Recording the statements failed: they are refused (nothing is sent), and the pump goes on. */
  #notRecorded(runs: readonly Run[], error: unknown, simple: boolean): void {
    let waiting: Promise<void> | undefined;
    try {
      waiting = this.#s.deny(this.#core.recording.failed(runs, error), simple);
    } catch (failure) {
      return this.#failed(failure);
    }
    this.#goOn(waiting);
  }

  #goOn(waiting: Promise<void> | undefined): void {
    if (waiting) waiting.then(this.pump, this.#failed);
    else this.pump();
  }

  readonly #failed = (error: unknown): void => {
    const core = this.#core;
    if (core.closed) return core.end(undefined);
    if (error instanceof SocketClosed) return core.end(new GatehouseError('client_closed', { detail: error.message }));
    const failure =
      error instanceof ProtocolViolation
        ? new GatehouseError('protocol_violation', {
            // The limit a client meets first (a bulk INSERT's text): say which setting it is.
            message:
              error instanceof MessageTooLarge
                ? `Protocol violation: ${error.message} (limits.maxMessageBytes of connection "${core.ctx.connection.name}"), so the session ends. Send bulk data with COPY FROM STDIN, or in smaller statements.`
                : `Protocol violation: ${error.message}.`,
            detail: error.message,
          })
        : error instanceof GatehouseError
          ? error
          : new GatehouseError('internal_error', { detail: String(error) });
    core.toClient.end(errorResponseFor(failure, 'FATAL'));
    core.end(failure);
  };

  /** Handles one client message; a promise only when it must wait (inspection, recording, approval, backpressure). */
  #onClient(frame: Frame): Waiting {
    if (this.#core.skippingToSync && frame.type !== 'S') return undefined; // extended query error: discard until Sync
    switch (frame.type) {
      case 'Q': // Query
        return this.#query.onQuery(bodyReader(frame).cstring(), frame);
      case 'P': // Parse
        return this.#extended.onParse(frame);
      case 'B': // Bind
        return this.#core.forward({ kind: 'bind', portal: this.#s.extended.bind(frame) }, frame);
      case 'D': // Describe
        return this.#core.forward({ kind: 'describe', described: this.#s.extended.describe(frame) }, frame);
      case 'E': // Execute
        return this.#extended.onExecute(frame);
      case 'C': // Close
        return this.#core.forward({ kind: 'close', closed: this.#s.extended.close(frame) }, frame);
      case 'S': // Sync
        return this.#onSync(frame);
      case 'c': // CopyDone
      case 'f': // CopyFail
        this.#core.copyIn = false;
        this.#core.copyEnded = true;
        return this.#core.toUpstream(frame);
      case 'H': // Flush
      case 'd': // CopyData
        return this.#core.toUpstream(frame);
      case 'F': {
        // FunctionCall (libpq's PQfn: psql's \lo_import, lo_* of libpq): it names a
        // function by OID, which cannot be inspected, so it is refused, and recorded.
        const oid = bodyReader(frame).int32();
        const error = new GatehouseError('sql_not_supported', { message: 'The FunctionCall protocol message is not supported through the gateway; call the function from SQL.', detail: `FunctionCall of the function with OID ${oid}` });
        return this.#s.refuse(statementExchange(this.#s.decide, [], '', 'sql.other'), undefined, requestOf('FunctionCall', `-- FunctionCall: function OID ${oid}`, undefined), error, true);
      }
      default:
        throw new ProtocolViolation(`invalid frontend message type ${JSON.stringify(frame.type)}`);
    }
  }

  /**
   * Sync ends the batch and commits its implicit transaction. While an Execute of the
   * batch may still be stopped by the gateway (SessionCore.holdsSync), a Flush goes in
   * its place (the database then sends what it has, as it would at Sync), and the Sync
   * follows once those Executes are answered: a stop has then put its bogus Bind ahead
   * of it (SessionCore.failTransaction), and the database rolls back what the client is
   * told did not happen.
   */
  #onSync(frame: Frame): Waiting {
    const core = this.#core;
    // Names a look-up of this batch found absent may exist by the next one (table-lookup.ts).
    this.#s.decide.tables?.forgetAbsent();
    // In COPY FROM STDIN the database ignores Sync (SessionCore.forgetSyncsInCopy).
    if (core.copyIn) return core.toUpstream(frame);
    const sync: Pending = core.copyEnded ? { kind: 'sync', afterCopyEnd: true } : { kind: 'sync' };
    if (core.skippingToSync || !core.holdsSync()) return core.forward(sync, frame);
    core.toUpstream(flushMessage());
    const sent = core.flushToDatabase();
    const answered = sent ? sent.then(() => core.whenBatchAnswered()) : core.whenBatchAnswered();
    return answered.then(() => core.forward(sync, frame));
  }
}
