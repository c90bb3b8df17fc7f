// One client session through a PostgreSQL connection, after login: client messages
// are read in order, inspected, decided and forwarded; database messages are routed to
// what they answer (a FIFO of expected responses, so pipelining works), masked,
// counted and relayed. Enforces:
// - every statement is decided by policy before the database sees it (Query: each
//   statement; extended query: at Parse and again at Execute) — decide-statement.ts;
// - `require_approval`: the statement is held until a reviewer decides — hold-statement.ts;
// - a refused statement gets an ErrorResponse in its place, in order; the database is
//   sent a Bind to a statement that does not exist, so its transaction state fails
//   exactly as if the statement had failed there (implicit transaction rolled back,
//   explicit block aborted) and, in extended mode, it skips to Sync as the client does;
// - after an error in extended mode, client messages are discarded until Sync;
// - rows beyond `maxRows` are never forwarded, values are masked — result-rows.ts;
// - a Query or Execute running past `statementTimeoutMs` is cancelled upstream (57014)
//   — statement-timer.ts;
// - every statement is recorded: durable before it is forwarded, its outcome durable
//   before the ReadyForQuery that ends it is released — statement-recording.ts;
// - what one batch of messages produces leaves in one write each way — outbox.ts;
// - a malformed client message ends this session (FATAL 08P01), and no other.

import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { GatehouseError } from '../../errors/index.js';
import type { Decision, Exchange, Identity, RecordedRequest } from '../../exchange/index.js';
import type { PipelineStages } from '../../pipeline/index.js';
import { bindMessage, BodyReader, bodyEquals, bodyReader, frameLength, parseCommandTag, parseNoticeFields, ProtocolViolation, syncMessage, type Frame } from './codec.js';
import type { PostgresConnection } from './connection.js';
import { decideStatement, exchangeOf, SessionDecisions, statementExchange, unparseable, type Checked, type StatementContext } from './decide-statement.js';
import { errorResponseFor } from './errors.js';
import { ExtendedQuery } from './extended-query.js';
import { FrameSource, SocketClosed } from './frame-source.js';
import type { UpstreamSession } from './forward.js';
import { statementDigest, StatementHolds, type HoldOutcome } from './hold-statement.js';
import { inspectSql, inspectSqlCached, type SqlInspection, type StatementFacts } from './inspect-sql.js';
import { Outbox } from './outbox.js';
import { ResultRows } from './result-rows.js';
import type { Pending, PortalInfo, Run } from './session-state.js';
import { newRun, requestOf, StatementRecording } from './statement-recording.js';
import { StatementTimer } from './statement-timer.js';

export interface SessionContext {
  readonly connection: PostgresConnection;
  readonly stages: PipelineStages;
  readonly identity: Identity;
  readonly sessionId: string;
  readonly clientAddress: string | undefined;
  readonly userAgent: string | undefined;
  readonly cancelUpstream: () => Promise<void>;
}

/** One statement of a Query, decided. */
interface QueryStep {
  readonly exchange: Exchange;
  readonly request: RecordedRequest;
  readonly checked: Checked;
}

export class PostgresSession {
  readonly #ctx: SessionContext;
  readonly #decide: StatementContext;
  readonly #client: Duplex;
  readonly #clientSource: FrameSource;
  readonly #upstream: UpstreamSession;
  readonly #pending: Pending[] = [];
  readonly #extended = new ExtendedQuery();
  readonly #recording: StatementRecording;
  readonly #rows: ResultRows;
  readonly #timer: StatementTimer;
  readonly #holds: StatementHolds | undefined;
  readonly #deniedStatement = `gatehouse_denied_${randomBytes(8).toString('hex')}`;
  readonly #toClient: Outbox;
  readonly #toDatabase: Outbox;
  /** Set when a client-bound push hit the outbox bound and the socket asked to drain. */
  #clientDrain: Promise<void> | undefined;
  /** The hold in progress (require_approval): aborted by CancelRequest or the client leaving. */
  #holding: AbortController | undefined;
  /** A cancel of ours (#cancel) not yet followed by the bogus Bind that absorbs it. */
  #cancelling: Promise<void> | undefined;
  /** Entries at the end of #pending whose messages are still in the outbox (unsent). */
  #unsent = 0;
  /** Resolves run() with why the session ended: the first side to end decides. */
  #ended: ((why: GatehouseError | undefined) => void) | undefined;
  #lastTag: { readonly body: Buffer; readonly tag: string } | undefined;
  #discarding = false;
  #swallowUntilReady = false;
  #closed = false;
  bytesIn = 0;
  bytesOut = 0;
  statements = 0;

  constructor(ctx: SessionContext, client: Duplex, clientSource: FrameSource, upstream: UpstreamSession) {
    this.#ctx = ctx;
    this.#client = client;
    this.#clientSource = clientSource;
    this.#upstream = upstream;
    const { connection, stages } = ctx;
    this.#decide = {
      connection,
      policy: stages.policy,
      identity: ctx.identity,
      sessionId: ctx.sessionId,
      client: { address: ctx.clientAddress, userAgent: ctx.userAgent },
      approvals: stages.approvals !== undefined,
      decisions: new SessionDecisions(),
    };
    this.#recording = new StatementRecording(stages);
    this.#rows = new ResultRows(connection, { emit: (bytes) => this.#emit(bytes), stop: (run, error) => this.#stop(run, error) });
    this.#timer = new StatementTimer(connection.statementTimeoutMs, (head) => this.#onStatementTimeout(head));
    this.#holds = stages.approvals ? new StatementHolds(stages.approvals) : undefined;
    client.once('close', () => this.#holding?.abort('closed'));
    this.#toClient = new Outbox(client);
    this.#toDatabase = new Outbox(upstream.socket, Infinity);
  }

  /** Runs until either side ends; resolves with why it ended (undefined: the client terminated). */
  async run(): Promise<GatehouseError | undefined> {
    const ended = await new Promise<GatehouseError | undefined>((resolve) => {
      this.#ended = resolve;
      this.#pumpClient();
      this.#pumpUpstream();
    });
    this.#closed = true;
    this.#timer.clear();
    for (const p of this.#pending) {
      if (p.kind === 'query') for (const r of p.runs) this.#recording.finish(r, ended ?? new GatehouseError('client_closed'));
      if (p.kind === 'execute') this.#recording.finish(p.run, ended ?? new GatehouseError('client_closed'));
    }
    await this.#recording.settled();
    // What was recorded as forwarded is sent, even when the session ends right after it.
    this.#sendToDatabase();
    this.#upstream.close();
    return ended;
  }

  /**
   * CancelRequest for this session: ends a hold for approval (57014). Returns true when
   * that was all there was to cancel: a hold, with nothing outstanding at the database.
   * Otherwise the listener cancels the database too; it must not when the database is
   * idle, since a cancel that arrives late would fail the client's next statement.
   */
  cancelHold(): boolean {
    const holding = this.#holding;
    if (!holding) return false;
    holding.abort('cancel');
    // Before a hold everything queued was sent: an empty FIFO means no statement is running.
    return this.#pending.length === 0;
  }

  // ---- client → gateway → database ----

  #end(why: GatehouseError | undefined): void {
    const ended = this.#ended;
    this.#ended = undefined;
    ended?.(why);
  }

  /**
   * Reads and handles client messages until one must wait (for inspection, recording,
   * approval or backpressure: it continues when that settles) or none is buffered (it
   * continues when bytes arrive). Messages already buffered are handled at once; what
   * they produced for the database leaves in one write when the client has nothing more
   * for now. No promise per message: it runs from the socket's data event.
   */
  readonly #pumpClient = (): void => {
    try {
      for (;;) {
        const frame = this.#clientSource.tryRead();
        if (!frame) {
          const drain = this.#flushToDatabase();
          if (drain) {
            drain.then(this.#pumpClient, this.#clientFailed);
            return;
          }
          const ended = this.#clientSource.ended;
          if (ended) throw ended;
          this.#clientSource.wait(this.#pumpClient);
          return;
        }
        this.bytesIn += frameLength(frame);
        if (frame.type === 'X') return this.#end(undefined); // Terminate
        const waiting = this.#onClient(frame);
        if (waiting) {
          waiting.then(this.#pumpClient, this.#clientFailed);
          return;
        }
      }
    } catch (error) {
      this.#clientFailed(error);
    }
  };

  readonly #clientFailed = (error: unknown): void => {
    if (this.#closed) return this.#end(undefined);
    if (error instanceof SocketClosed) return this.#end(new GatehouseError('client_closed', { detail: error.message }));
    const failure =
      error instanceof ProtocolViolation
        ? new GatehouseError('protocol_violation', { message: `Protocol violation: ${error.message}.`, detail: error.message })
        : error instanceof GatehouseError
          ? error
          : new GatehouseError('internal_error', { detail: String(error) });
    this.#toClient.end(errorResponseFor(failure, 'FATAL'));
    this.#end(failure);
  };

  /** Handles one client message; a promise only when it must wait (inspection, recording, approval, backpressure). */
  #onClient(frame: Frame): Promise<void> | undefined {
    if (this.#discarding && frame.type !== 'S') return undefined; // extended query error: discard until Sync
    switch (frame.type) {
      case 'Q': // Query
        return this.#onQuery(bodyReader(frame).cstring(), frame);
      case 'P': // Parse
        return this.#onParse(frame);
      case 'B': // Bind
        this.#extended.bind(frame);
        return this.#forward({ kind: 'bind' }, frame);
      case 'D': // Describe
        return this.#forward({ kind: 'describe', described: this.#extended.describe(frame) }, frame);
      case 'E': // Execute
        return this.#onExecute(frame);
      case 'C': // Close
        this.#extended.close(frame);
        return this.#forward({ kind: 'close' }, frame);
      case 'S': // Sync
        this.#discarding = false;
        return this.#forward({ kind: 'sync' }, frame);
      case 'H': // Flush
      case 'd': // CopyData
      case 'c': // CopyDone
      case 'f': // CopyFail
        return this.#toUpstream(frame);
      case 'F': // FunctionCall: cannot be inspected, so it is refused.
        return this.#deny(new GatehouseError('sql_not_supported', { message: 'The FunctionCall protocol message is not supported through the gateway; call the function from SQL.' }), true);
      default:
        throw new ProtocolViolation(`invalid frontend message type ${JSON.stringify(frame.type)}`);
    }
  }

  #onQuery(text: string, frame: Frame): Promise<void> | undefined {
    const inspection = inspectSqlCached(text);
    return inspection ? this.#query(inspection, text, frame) : inspectSql(text).then((parsed) => this.#query(parsed, text, frame));
  }

  /**
   * Decides each statement of a Query, records them, then forwards the Query. Synchronous
   * up to the recording (the common case); a statement that needs approval continues in
   * #queryHeld.
   */
  #query(inspection: SqlInspection, text: string, frame: Frame): Promise<void> | undefined {
    if (!inspection.ok) return this.#refuse(statementExchange(this.#decide, [], text, 'sql.unparseable'), undefined, requestOf('Query', text, undefined), unparseable(inspection.error), true);
    const statements = inspection.statements;
    const runs: Run[] = [];
    const requests: RecordedRequest[] = [];
    for (let i = 0; i < statements.length; i++) {
      const step = this.#queryStatement(statements[i]!);
      if (step.checked.error) return this.#refuse(step.exchange, step.checked.decision, step.request, step.checked.error, true);
      if (step.checked.decision.effect === 'require_approval') return this.#queryHeld(statements, i, step, runs, requests, frame);
      runs.push(this.#newRun(step.exchange, step.checked.decision));
      requests.push(step.request);
    }
    return this.#openQuery(runs, requests, frame);
  }

  #queryStatement(facts: StatementFacts): QueryStep {
    const exchange = statementExchange(this.#decide, [facts], facts.text);
    return { exchange, request: requestOf('Query', facts.text, undefined), checked: decideStatement(this.#decide, exchange, facts) };
  }

  /** The rest of a Query from statement `i`, which needs approval: each such statement waits for its own review, in order. */
  async #queryHeld(statements: readonly StatementFacts[], i: number, step: QueryStep, runs: Run[], requests: RecordedRequest[], frame: Frame): Promise<void> {
    for (;;) {
      let exchange = step.exchange;
      const decision = step.checked.decision!;
      if (decision.effect === 'require_approval') {
        const held = await this.#hold(exchange, decision, statementDigest(statements[i]!.text));
        exchange = held.exchange;
        if (held.error) return this.#refuse(exchange, decision, step.request, held.error, true);
      }
      runs.push(this.#newRun(exchange, decision));
      requests.push(step.request);
      if (++i === statements.length) return this.#openQuery(runs, requests, frame);
      step = this.#queryStatement(statements[i]!);
      if (step.checked.error) return this.#refuse(step.exchange, step.checked.decision, step.request, step.checked.error, true);
    }
  }

  #openQuery(runs: Run[], requests: readonly RecordedRequest[], frame: Frame): Promise<void> {
    return this.#recording.open(runs, requests).then(
      () => this.#forward({ kind: 'query', runs, index: 0, columns: undefined, plan: undefined }, frame),
      (error: unknown) => this.#deny(this.#recording.failed(runs, error), true),
    );
  }

  async #onParse(frame: Frame): Promise<void> {
    const r = bodyReader(frame);
    const name = r.cstring();
    const text = r.cstring();
    const inspection = inspectSqlCached(text) ?? (await inspectSql(text));
    const request = requestOf('Parse', text, undefined);
    if (!inspection.ok) return this.#refuse(statementExchange(this.#decide, [], text, 'sql.unparseable'), undefined, request, unparseable(inspection.error), false);
    // Decided at Parse, so a refused statement never reaches the database even as a
    // plan; one that needs approval is prepared, and held at Execute.
    const exchange = statementExchange(this.#decide, inspection.statements, text);
    for (const facts of inspection.statements) {
      const checked = decideStatement(this.#decide, exchange, facts);
      if (checked.error) return this.#refuse(exchange, checked.decision, request, checked.error, false);
    }
    this.#extended.prepare(name, text, inspection.statements);
    return this.#forward({ kind: 'parse' }, frame);
  }

  #onExecute(frame: Frame): Promise<void> | undefined {
    const portal = this.#extended.execute(frame);
    const statement = portal?.statement;
    // A portal over a statement made with SQL PREPARE has no Parse we saw: `sql.execute`.
    const exchange = statement ? exchangeOf(this.#decide, statement.shape) : statementExchange(this.#decide, [], '', 'sql.execute');
    const maskText = this.#ctx.connection.masking.maskText;
    const params = maskText && portal ? portal.params.map((p) => (p === null ? null : maskText(p))) : portal?.params;
    const request = statement ? requestOf('Execute', statement.text, params, statement.textJson) : requestOf('Execute', '', params);
    let decision: Decision | undefined;
    const facts = statement?.facts;
    if (!facts || facts.length === 0) {
      const checked = decideStatement(this.#decide, exchange, undefined);
      if (checked.error) return this.#refuse(exchange, checked.decision, request, checked.error, false);
      decision = checked.decision;
    } else {
      for (const f of facts) {
        const checked = decideStatement(this.#decide, exchange, f);
        if (checked.error) return this.#refuse(exchange, checked.decision, request, checked.error, false);
        // The decision kept is the one that asks for approval, if any does.
        if (decision?.effect !== 'require_approval') decision = checked.decision;
      }
    }
    if (decision!.effect === 'require_approval') return this.#executeHeld(exchange, decision!, request, portal, frame);
    return this.#openExecute(this.#newRun(exchange, decision!), request, portal, frame);
  }

  /** Held at Execute, not Parse: the approval covers the statement with these parameter values. */
  async #executeHeld(exchange: Exchange, decision: Decision, request: RecordedRequest, portal: PortalInfo | undefined, frame: Frame): Promise<void> {
    const held = await this.#hold(exchange, decision, statementDigest(portal?.statement?.text ?? '', portal?.approvalParams ?? portal?.params ?? []));
    if (held.error) return this.#refuse(held.exchange, decision, request, held.error, false);
    return this.#openExecute(this.#newRun(held.exchange, decision), request, portal, frame);
  }

  #openExecute(run: Run, request: RecordedRequest, portal: PortalInfo | undefined, frame: Frame): Promise<void> {
    return this.#recording.open([run], [request]).then(
      () => this.#forward({ kind: 'execute', run, portal, plan: null }, frame),
      (error: unknown) => this.#deny(this.#recording.failed([run], error), false),
    );
  }

  #newRun(exchange: Exchange, decision: Decision): Run {
    this.statements++;
    return newRun(exchange, decision);
  }

  /**
   * Holds a statement for approval. What was queued for the database before it leaves
   * first (a hold may last minutes); the NoticeResponse with the review goes out at once.
   */
  async #hold(exchange: Exchange, decision: Decision, digest: string): Promise<HoldOutcome> {
    const drain = this.#flushToDatabase();
    if (drain) await drain;
    const holding = new AbortController();
    this.#holding = holding;
    if (this.#client.destroyed) holding.abort('closed');
    try {
      return await this.#holds!.hold(exchange, decision, digest, {
        signal: holding.signal,
        notify: (notice) => {
          this.bytesOut += notice.length;
          this.#toClient.push(notice);
          this.#toClient.flush();
        },
      });
    } finally {
      this.#holding = undefined;
    }
  }

  /** Records a refusal, then answers it in order (#deny). */
  async #refuse(exchange: Exchange, decision: Decision | undefined, request: RecordedRequest, error: GatehouseError, simple: boolean): Promise<void> {
    await this.#recording.refuse(exchange, decision, request, error);
    return this.#deny(error, simple);
  }

  /**
   * Puts the refusal in the answer stream, in order: the database gets a Bind to a
   * statement that does not exist (and a Sync for a simple Query), fails it, and its
   * ErrorResponse is replaced by ours.
   */
  #deny(error: GatehouseError, simple: boolean): Promise<void> | undefined {
    this.#expect({ kind: 'denied', error });
    if (simple) {
      this.#expect({ kind: 'sync' });
      return this.#toUpstream(Buffer.concat([bindMessage('', this.#deniedStatement), syncMessage()]));
    }
    this.#discarding = true;
    return this.#toUpstream(bindMessage('', this.#deniedStatement));
  }

  /** Expects the answer to `frame`, then queues it for the database. */
  #forward(expected: Pending, frame: Frame): Promise<void> | undefined {
    this.#expect(expected);
    this.#timer.arm(this.#pending[0]);
    return this.#toUpstream(frame);
  }

  #expect(expected: Pending): void {
    this.#pending.push(expected);
    this.#unsent++;
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
  #cancel(): void {
    this.#cancelling ??= this.#ctx.cancelUpstream().catch(() => undefined);
  }

  /** Sends what is queued for the database, after absorbing a cancel of ours if one is out. */
  #flushToDatabase(): Promise<void> | undefined {
    const cancelling = this.#cancelling;
    if (!cancelling) return this.#sendToDatabase();
    return cancelling.then(() => {
      if (this.#cancelling === cancelling) {
        this.#cancelling = undefined;
        // Ahead of the messages not yet sent, in the byte stream and in the FIFO alike.
        this.#pending.splice(this.#pending.length - this.#unsent, 0, { kind: 'absorb' }, { kind: 'sync', silent: true });
        this.#toDatabase.unshift(Buffer.concat([bindMessage('', this.#deniedStatement), syncMessage()]));
      }
      return this.#sendToDatabase();
    });
  }

  #sendToDatabase(): Promise<void> | undefined {
    this.#unsent = 0;
    return this.#toDatabase.flush();
  }

  /** Queues a message for the database (sent when the client loop would wait). */
  #toUpstream(bytes: Buffer | Frame): Promise<void> | undefined {
    if (this.#upstream.socket.destroyed) throw new GatehouseError('upstream_failed', { detail: 'database connection closed' });
    return this.#toDatabase.push(bytes);
  }

  #onStatementTimeout(head: Pending): void {
    if (this.#pending[0] !== head || (head.kind !== 'query' && head.kind !== 'execute')) return;
    const run = head.kind === 'query' ? head.runs[head.index] : head.run;
    if (!run || run.done) return;
    run.timedOut = true;
    this.#cancel();
  }

  // ---- database → gateway → client ----

  /** As #pumpClient, for the database's messages: answers already buffered are relayed in one write. */
  readonly #pumpUpstream = (): void => {
    try {
      const source = this.#upstream.source;
      for (;;) {
        const frame = source.tryRead();
        if (!frame) {
          const drain = this.#toClient.flush();
          if (drain) {
            drain.then(this.#pumpUpstream, this.#upstreamFailed);
            return;
          }
          const ended = source.ended;
          if (ended) throw ended;
          source.wait(this.#pumpUpstream);
          return;
        }
        const waiting = this.#onUpstream(frame);
        if (waiting) {
          waiting.then(this.#upstreamHandled, this.#upstreamFailed);
          return;
        }
        if (!this.#afterUpstream()) return;
      }
    } catch (error) {
      this.#upstreamFailed(error);
    }
  };

  /** After a database message: waits for the client socket to drain if it asked to (false: continues later), then re-arms the statement timer. */
  #afterUpstream(): boolean {
    const drain = this.#clientDrain;
    if (drain) {
      this.#clientDrain = undefined;
      drain.then(this.#drained, this.#upstreamFailed);
      return false;
    }
    this.#timer.arm(this.#pending[0]);
    return true;
  }

  readonly #upstreamHandled = (): void => {
    try {
      if (this.#afterUpstream()) this.#pumpUpstream();
    } catch (error) {
      this.#upstreamFailed(error);
    }
  };

  readonly #drained = (): void => {
    try {
      this.#timer.arm(this.#pending[0]);
    } catch (error) {
      return this.#upstreamFailed(error);
    }
    this.#pumpUpstream();
  };

  readonly #upstreamFailed = (error: unknown): void => {
    if (this.#closed) return this.#end(undefined);
    const failure = error instanceof GatehouseError ? error : new GatehouseError('upstream_failed', { detail: error instanceof Error ? error.message : String(error) });
    if (!this.#client.destroyed) this.#toClient.end(errorResponseFor(failure, 'FATAL'));
    this.#end(failure);
  };

  #emit(bytes: Buffer | Frame, force = false): undefined {
    if (this.#swallowUntilReady && !force) return;
    this.bytesOut += Buffer.isBuffer(bytes) ? bytes.length : frameLength(bytes);
    const drain = this.#toClient.push(bytes);
    if (drain) this.#clientDrain = drain;
  }

  /** Relays one database message; a promise only at ReadyForQuery while outcomes are committed. */
  #onUpstream(frame: Frame): Promise<void> | undefined {
    const t = frame.type;
    // Asynchronous messages, valid at any time: NoticeResponse, NotificationResponse, ParameterStatus.
    if (t === 'S') checkClientEncoding(frame.body);
    if (t === 'N' || t === 'A' || t === 'S') return this.#emit(frame, true);
    const head = this.#pending[0];
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
        const expected = { parse: '1', bind: '2', close: '3' }[head.kind]; // ParseComplete, BindComplete, CloseComplete
        if (t === expected) {
          this.#pending.shift();
          return this.#emit(frame);
        }
        if (t === 'E') return this.#extendedError(frame);
        break;
      }
      case 'describe':
        if (t === 't') return this.#emit(frame); // ParameterDescription, then RowDescription or NoData
        if (t === 'T' || t === 'n') {
          this.#pending.shift();
          if (head.described) head.described.columns = t === 'T' ? this.#rows.describe(frame).columns : [];
          return this.#emit(frame);
        }
        if (t === 'E') return this.#extendedError(frame);
        break;
      case 'sync':
        if (t === 'Z') {
          this.#pending.shift();
          return head.silent ? undefined : this.#ready(frame);
        }
        break;
      case 'absorb':
        if (t === 'E') {
          this.#pending.shift();
          return undefined;
        }
        if (t === 'Z') {
          // Our Bind was taken as the fault of a COPY the cancel ended: this is our Sync's answer.
          this.#pending.splice(0, this.#pending[1]?.kind === 'sync' ? 2 : 1);
          return undefined;
        }
        break;
      case 'denied':
        if (t === 'E') {
          this.#pending.shift();
          this.#emit(errorResponseFor(head.error));
          return this.#skipToSync();
        }
        break;
    }
    throw new GatehouseError('upstream_failed', { detail: `unexpected message '${t}' from the database while waiting for ${head.kind}` });
  }

  #onQueryAnswer(head: Extract<Pending, { kind: 'query' }>, frame: Frame): Promise<void> | undefined {
    const run = head.runs[head.index];
    switch (frame.type) {
      case 'T': // RowDescription
        ({ columns: head.columns, plan: head.plan } = this.#rows.describe(frame));
        return this.#emit(frame);
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
          this.#recording.finish(run);
        }
        head.index++;
        head.columns = undefined;
        head.plan = undefined;
        return this.#emit(frame);
      case 'E': {
        // ErrorResponse ends the whole Query: later statements do not run.
        const replaced = run ? this.#upstreamError(run, frame) : frame.raw;
        for (const r of head.runs.slice(head.index + 1)) this.#recording.finish(r, new GatehouseError('upstream_failed', { message: 'not executed: an earlier statement in the same Query failed' }), 'not_executed');
        head.index = head.runs.length;
        return this.#emit(replaced);
      }
      case 'Z': // ReadyForQuery
        for (const r of head.runs) this.#recording.finish(r);
        this.#pending.shift();
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
          const plan = this.#rows.planForExecute(head.portal);
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
      case 'c':
        return this.#emit(frame);
      case 'C': // CommandComplete
      case 'I': // EmptyQueryResponse
      case 's': // PortalSuspended
        run.tag = frame.type === 'C' ? this.#commandTag(frame) : frame.type === 's' ? 'SUSPENDED' : 'EMPTY';
        this.#recording.finish(run);
        this.#pending.shift();
        return this.#emit(frame);
      case 'E':
        return this.#extendedError(this.#upstreamError(run, frame));
      default:
        throw new GatehouseError('upstream_failed', { detail: `unexpected message '${frame.type}' in an Execute answer` });
    }
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
    this.#emit(errorResponseFor(error));
    this.#swallowUntilReady = true;
    // With statements already sent behind this one the cancel could land on them: the
    // rest of this one is then only discarded.
    const sent = this.#pending.length - this.#unsent;
    if (!run.done && !this.#pending.slice(1, sent).some((p) => p.kind !== 'sync')) this.#cancel();
  }

  /** The database's ErrorResponse for a statement: recorded; a timeout cancel is reworded. */
  #upstreamError(run: Run, frame: Frame): Buffer {
    const fields = parseNoticeFields(frame.body);
    const code = fields.get('C') ?? '';
    if (run.timedOut && code === '57014') {
      const error = new GatehouseError('statement_timeout', {
        message: `The statement ran longer than ${this.#ctx.connection.statementTimeoutMs} ms, the limit on connection "${this.#ctx.connection.name}" (statementTimeout), and was cancelled.`,
      });
      this.#recording.finish(run, error);
      return errorResponseFor(error);
    }
    if (!run.error) run.error = { code: 'sql_error', detail: `${code}: ${fields.get('M') ?? ''}`, status: 400 };
    this.#recording.finish(run);
    return frame.raw;
  }

  /** ErrorResponse in extended mode: the database skips to Sync, and so does our FIFO. */
  #extendedError(raw: Buffer | Frame): undefined {
    this.#pending.shift();
    this.#emit(raw);
    return this.#skipToSync();
  }

  #skipToSync(): undefined {
    while (this.#pending.length > 0 && this.#pending[0]!.kind !== 'sync') {
      const p = this.#pending.shift()!;
      if (p.kind === 'execute') this.#recording.finish(p.run, new GatehouseError('upstream_failed', { message: 'not executed: an earlier message in the same batch failed' }), 'not_executed');
    }
  }

  /**
   * ReadyForQuery: released once the outcome of every statement it ends is durable
   * (what went before it waits in the outbox: the client can do nothing before it).
   */
  #ready(ready: Frame): Promise<void> | undefined {
    const settled = this.#recording.settled();
    if (!settled) return this.#released(ready);
    return settled.then(() => this.#released(ready));
  }

  #released(ready: Frame): undefined {
    this.#swallowUntilReady = false;
    this.#emit(ready, true);
  }
}

/**
 * ParameterStatus (name, value): the database reports every change of client_encoding,
 * however it was made (SET is refused at inspection, but set_config() or a function
 * can change it too). Inspection reads SQL as UTF-8, so any other encoding ends the
 * session before another statement is read.
 */
function checkClientEncoding(body: Buffer): void {
  const r = new BodyReader(body);
  if (r.cstring().toLowerCase() !== 'client_encoding') return;
  const value = r.cstring();
  if (!/^(utf-?8|unicode|sql_ascii)$/i.test(value)) {
    throw new GatehouseError('sql_not_supported', { message: `The client encoding was changed to ${value}; only UTF8 can be inspected, so the session ends.` });
  }
}
