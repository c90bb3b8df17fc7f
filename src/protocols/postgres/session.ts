// One client session through a PostgreSQL connection, after login: client messages
// are read one at a time, inspected, decided and forwarded; upstream messages are
// routed to what they answer (a FIFO of expected responses, so pipelining works),
// masked, counted, and relayed. Enforces:
// - every statement is decided by policy before the database sees it (Query: each
//   statement; extended query: at Parse and again at Execute);
// - a refused statement gets an ErrorResponse in its place, in order; the database is
//   sent a Bind to a statement that does not exist, so its transaction state fails
//   exactly as if the statement had failed there (implicit transaction rolled back,
//   explicit block aborted) and, in extended mode, it skips to Sync as the client does;
// - after an error in extended mode, client messages are discarded until Sync;
// - DataRows beyond `maxRows` are never forwarded; the statement is cancelled upstream;
// - a Query or Execute running past `statementTimeoutMs` is cancelled upstream (57014);
// - every statement is recorded: durable before it is forwarded, its outcome durable
//   before the ReadyForQuery that ends it is released;
// - a malformed client message ends this session (FATAL 08P01), and no other.

import { createHash, randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { GatehouseError } from '../../errors/index.js';
import { newId, type Decision, type Exchange, type ExchangeOutcome, type Identity, type RecordedRequest } from '../../exchange/index.js';
import type { PipelineStages } from '../../pipeline/index.js';
import { enforceDecision } from '../../policy/index.js';
import {
  BodyReader,
  bindMessage,
  message,
  parseBind,
  parseCommandTag,
  parseNoticeFields,
  parseRowDescription,
  ProtocolViolation,
  rowsFromTag,
  syncMessage,
  type ColumnDescription,
  type Frame,
} from './codec.js';
import type { PostgresConnection } from './connection.js';
import { errorResponseFor } from './errors.js';
import { FrameSource, SocketClosed } from './frame-source.js';
import type { UpstreamSession } from './forward.js';
import { inspectSql, inspectSqlCached, strictestClass, type SqlInspection, type StatementFacts } from './inspect-sql.js';
import { maskDataRow, maskingActive, planMasking } from './mask-rows.js';
import { Outbox } from './outbox.js';
import { statementDigest, StatementHolds, type HoldOutcome } from './hold-statement.js';

export interface SessionContext {
  readonly connection: PostgresConnection;
  readonly stages: PipelineStages;
  readonly identity: Identity;
  readonly sessionId: string;
  readonly clientAddress: string | undefined;
  readonly userAgent: string | undefined;
  readonly cancelUpstream: () => Promise<void>;
}

interface Run {
  readonly exchange: Exchange;
  readonly decision: Decision;
  readonly started: number;
  rows: number;
  bytesOut: number;
  ttfbMs: number | undefined;
  tag: string | undefined;
  error: { code: string; detail: string; status: number } | undefined;
  timedOut: boolean;
  done: boolean;
}

interface StatementInfo {
  readonly facts: readonly StatementFacts[];
  readonly text: string;
  columns: ColumnDescription[] | undefined;
}

interface PortalInfo {
  readonly statement: StatementInfo | undefined;
  readonly params: readonly (string | null)[];
  /** What an approval is bound to when some values are binary: their SHA-256 in place of the marker. */
  readonly approvalParams: readonly (string | null)[] | undefined;
  readonly resultFormats: readonly number[];
  columns: ColumnDescription[] | undefined;
}

interface RowShape {
  readonly body: Buffer;
  readonly columns: ColumnDescription[];
  readonly plan: ReturnType<typeof planMasking>;
}

type Pending =
  | { kind: 'query'; runs: Run[]; index: number; columns: ColumnDescription[] | undefined; plan: ReturnType<typeof planMasking> }
  | { kind: 'parse' | 'bind' | 'close' | 'sync' }
  | { kind: 'describe'; described: StatementInfo | PortalInfo | undefined }
  | { kind: 'execute'; run: Run; portal: PortalInfo | undefined; plan: ReturnType<typeof planMasking> | null }
  | { kind: 'denied'; error: GatehouseError };

export class PostgresSession {
  readonly #ctx: SessionContext;
  readonly #client: Duplex;
  readonly #clientSource: FrameSource;
  readonly #upstream: UpstreamSession;
  readonly #pending: Pending[] = [];
  readonly #statements = new Map<string, StatementInfo>();
  readonly #portals = new Map<string, PortalInfo>();
  readonly #finishing: Promise<void>[] = [];
  readonly #deniedStatement = `gatehouse_denied_${randomBytes(8).toString('hex')}`;
  readonly #toClient: Outbox;
  readonly #toDatabase: Outbox;
  /** Set when a client-bound push hit the outbox bound and the socket asked to drain. */
  #clientDrain: Promise<void> | undefined;
  readonly #clientInfo: Exchange['client'];
  readonly #holds: StatementHolds | undefined;
  /** The hold in progress (require_approval): aborted by CancelRequest or the client leaving. */
  #holding: AbortController | undefined;
  #discarding = false;
  #lastRows: RowShape | undefined;
  #armed: Pending | undefined;
  #timer: NodeJS.Timeout | undefined;
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
    this.#clientInfo = { address: ctx.clientAddress, userAgent: ctx.userAgent };
    this.#holds = ctx.stages.approvals ? new StatementHolds(ctx.stages.approvals) : undefined;
    client.once('close', () => this.#holding?.abort('closed'));
    this.#toClient = new Outbox(client);
    this.#toDatabase = new Outbox(upstream.socket);
  }

  /** Runs until either side ends; resolves with why it ended (undefined: the client terminated). */
  async run(): Promise<GatehouseError | undefined> {
    const ended = await Promise.race([this.#clientLoop(), this.#upstreamLoop()]);
    this.#closed = true;
    clearTimeout(this.#timer);
    for (const p of this.#pending) {
      if (p.kind === 'query') for (const r of p.runs) this.#finishRun(r, ended ?? new GatehouseError('client_closed'));
      if (p.kind === 'execute') this.#finishRun(p.run, ended ?? new GatehouseError('client_closed'));
    }
    await Promise.allSettled(this.#finishing);
    // What was recorded as forwarded is sent, even when the session ends right after it.
    this.#toDatabase.flush();
    this.#upstream.close();
    return ended;
  }

  /** CancelRequest for this session: ends a hold for approval (57014); the database is cancelled too, by the listener. */
  cancelHold(): void {
    this.#holding?.abort('cancel');
  }

  // ---- client → gateway → database ----

  async #clientLoop(): Promise<GatehouseError | undefined> {
    try {
      for (;;) {
        // Messages already buffered are handled at once; what they produced for the
        // database leaves in one write when the client has nothing more for now.
        let frame = this.#clientSource.tryRead();
        if (!frame) {
          const drain = this.#toDatabase.flush();
          if (drain) await drain;
          frame = await this.#clientSource.read();
        }
        this.bytesIn += frame.raw.length;
        if (frame.type === 'X') return undefined; // Terminate
        const waiting = this.#onClient(frame);
        if (waiting) await waiting;
      }
    } catch (error) {
      if (this.#closed) return undefined;
      if (error instanceof SocketClosed) return new GatehouseError('client_closed', { detail: error.message });
      if (error instanceof ProtocolViolation) {
        const failure = new GatehouseError('protocol_violation', { message: `Protocol violation: ${error.message}.`, detail: error.message });
        this.#toClient.end(errorResponseFor(failure, 'FATAL'));
        return failure;
      }
      const failure = error instanceof GatehouseError ? error : new GatehouseError('internal_error', { detail: String(error) });
      this.#toClient.end(errorResponseFor(failure, 'FATAL'));
      return failure;
    }
  }

  /** Handles one client message; a promise only when it must wait (inspection, recording, backpressure). */
  #onClient(frame: Frame): Promise<void> | undefined {
    if (this.#discarding && frame.type !== 'S') return undefined; // extended query error: discard until Sync
    switch (frame.type) {
      case 'Q': // Query
        return this.#onQuery(new BodyReader(frame.body).cstring(), frame);
      case 'P': // Parse
        return this.#onParse(frame);
      case 'B': {
        // Bind
        const bind = parseBind(frame.body);
        const statement = this.#statements.get(bind.statement);
        const approvalParams = bind.binary && bind.params.map((p, i) => (bind.binary!.has(i) ? `binary sha256:${createHash('sha256').update(bind.binary!.get(i)!).digest('hex')}` : p));
        this.#portals.set(bind.portal, { statement, params: bind.params, approvalParams, resultFormats: bind.resultFormats, columns: undefined });
        this.#pending.push({ kind: 'bind' });
        return this.#toUpstream(frame.raw);
      }
      case 'D': {
        // Describe: 'S' statement or 'P' portal.
        const r = new BodyReader(frame.body);
        const target = String.fromCharCode(r.int8());
        if (target !== 'S' && target !== 'P') throw new ProtocolViolation(`invalid DESCRIBE message subtype ${target}`);
        // The described object is captured now: with pipelining, a later Bind may reuse the name before the answer comes.
        const name = r.cstring();
        this.#pending.push({ kind: 'describe', described: target === 'S' ? this.#statements.get(name) : this.#portals.get(name) });
        return this.#toUpstream(frame.raw);
      }
      case 'E': // Execute
        return this.#onExecute(frame);
      case 'C': {
        // Close: 'S' statement or 'P' portal.
        const r = new BodyReader(frame.body);
        const target = String.fromCharCode(r.int8());
        const name = r.cstring();
        if (target === 'S') this.#statements.delete(name);
        else if (target === 'P') this.#portals.delete(name);
        else throw new ProtocolViolation(`invalid CLOSE message subtype ${target}`);
        this.#pending.push({ kind: 'close' });
        return this.#toUpstream(frame.raw);
      }
      case 'S': // Sync
        this.#discarding = false;
        this.#pending.push({ kind: 'sync' });
        return this.#toUpstream(frame.raw);
      case 'H': // Flush
      case 'd': // CopyData
      case 'c': // CopyDone
      case 'f': // CopyFail
        return this.#toUpstream(frame.raw);
      case 'F': // FunctionCall: cannot be inspected, so it is refused.
        return this.#deny(new GatehouseError('sql_not_supported', { message: 'The FunctionCall protocol message is not supported through the gateway; call the function from SQL.' }), true);
      default:
        throw new ProtocolViolation(`invalid frontend message type ${JSON.stringify(frame.type)}`);
    }
  }

  #onQuery(text: string, frame: Frame): Promise<void> {
    const inspection = inspectSqlCached(text);
    return inspection ? this.#query(inspection, text, frame) : inspectSql(text).then((parsed) => this.#query(parsed, text, frame));
  }

  async #query(inspection: SqlInspection, text: string, frame: Frame): Promise<void> {
    if (!inspection.ok) {
      const error = unparseable(inspection.error);
      await this.#refuse(this.#exchangeFor([], text, 'sql.unparseable'), undefined, requestOf('Query', text, undefined), error);
      return this.#deny(error, true);
    }
    const runs: Run[] = [];
    for (const facts of inspection.statements) {
      let exchange = this.#exchangeFor([facts], facts.text);
      const checked = this.#check(exchange, facts);
      if (checked.error) {
        await this.#refuse(exchange, checked.decision, requestOf('Query', facts.text, undefined), checked.error);
        return this.#deny(checked.error, true);
      }
      if (checked.decision.effect === 'require_approval') {
        // Each statement of the Query that needs approval waits for its own review, in order.
        const held = await this.#hold(exchange, checked.decision, statementDigest(facts.text));
        exchange = held.exchange;
        if (held.error) {
          await this.#refuse(exchange, checked.decision, requestOf('Query', facts.text, undefined), held.error);
          return this.#deny(held.error, true);
        }
      }
      runs.push(this.#newRun(exchange, checked.decision));
    }
    if (!(await this.#open(runs, runs.map((r) => requestOf('Query', r.exchange.facts.sql!.text, undefined)), true))) return;
    this.#pending.push({ kind: 'query', runs, index: 0, columns: undefined, plan: undefined });
    this.#armHead();
    return this.#toUpstream(frame.raw);
  }

  async #onParse(frame: Frame): Promise<void> {
    const r = new BodyReader(frame.body);
    const name = r.cstring();
    const text = r.cstring();
    const inspection = inspectSqlCached(text) ?? (await inspectSql(text));
    if (!inspection.ok) {
      const error = unparseable(inspection.error);
      await this.#refuse(this.#exchangeFor([], text, 'sql.unparseable'), undefined, requestOf('Parse', text, undefined), error);
      return this.#deny(error, false);
    }
    // Decided at Parse, so a refused statement never reaches the database even as a plan.
    const exchange = this.#exchangeFor(inspection.statements, text);
    for (const facts of inspection.statements) {
      const checked = this.#check(exchange, facts);
      if (checked.error) {
        await this.#refuse(exchange, checked.decision, requestOf('Parse', text, undefined), checked.error);
        return this.#deny(checked.error, false);
      }
    }
    this.#statements.set(name, { facts: inspection.statements, text, columns: undefined });
    this.#pending.push({ kind: 'parse' });
    return this.#toUpstream(frame.raw);
  }

  async #onExecute(frame: Frame): Promise<void> {
    const r = new BodyReader(frame.body);
    const portalName = r.cstring();
    r.int32(); // maximum rows (0: all); PortalSuspended answers a partial fetch
    const portal = this.#portals.get(portalName);
    const statement = portal?.statement;
    // A portal over a statement made with SQL PREPARE has no Parse we saw: `sql.execute`.
    let exchange = statement ? this.#exchangeFor(statement.facts, statement.text) : this.#exchangeFor([], '', 'sql.execute');
    const maskText = this.#ctx.connection.masking.maskText;
    const params = maskText && portal ? portal.params.map((p) => (p === null ? null : maskText(p))) : portal?.params;
    const request = requestOf('Execute', statement?.text ?? '', params);
    let decision: Decision | undefined;
    for (const facts of statement?.facts.length ? statement.facts : [undefined]) {
      const checked = this.#check(exchange, facts);
      // The decision kept is the one that asks for approval, if any does.
      if (decision?.effect !== 'require_approval') decision = checked.decision;
      if (checked.error) {
        await this.#refuse(exchange, checked.decision, request, checked.error);
        return this.#deny(checked.error, false);
      }
    }
    if (decision!.effect === 'require_approval') {
      // Held at Execute, not Parse: the approval covers the statement with these parameter values.
      const held = await this.#hold(exchange, decision!, statementDigest(statement?.text ?? '', portal?.approvalParams ?? portal?.params ?? []));
      exchange = held.exchange;
      if (held.error) {
        await this.#refuse(exchange, decision, request, held.error);
        return this.#deny(held.error, false);
      }
    }
    const run = this.#newRun(exchange, decision!);
    if (!(await this.#open([run], [request], false))) return;
    this.#pending.push({ kind: 'execute', run, portal, plan: null });
    this.#armHead();
    return this.#toUpstream(frame.raw);
  }

  /**
   * Holds a statement for approval. What was queued for the database before it leaves
   * first (a hold may last minutes); the NoticeResponse with the review goes out at once.
   */
  async #hold(exchange: Exchange, decision: Decision, digest: string): Promise<HoldOutcome> {
    const drain = this.#toDatabase.flush();
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

  /** Policy for one statement, plus what the gateway itself cannot let through. */
  #check(exchange: Exchange, facts: StatementFacts | undefined): { decision: Decision; error?: undefined } | { decision: Decision | undefined; error: GatehouseError } {
    if (facts?.unsupported) return { decision: undefined, error: new GatehouseError('sql_not_supported', { message: `Not supported through the gateway: ${facts.unsupported}.` }) };
    const single = facts && exchange.facts.sql && exchange.facts.sql.classes.length > 1 ? this.#exchangeFor([facts], facts.text, undefined, exchange) : exchange;
    let decision: Decision;
    try {
      decision = this.#ctx.stages.policy.decide(single);
      // require_approval passes only when approvals are configured; the caller holds it.
      enforceDecision(decision, { approvals: this.#holds !== undefined });
    } catch (error) {
      return { decision: undefined, error: error instanceof GatehouseError ? error : new GatehouseError('internal_error', { detail: String(error) }) };
    }
    if (facts?.copyOut && this.#ctx.connection.masking.columns.size > 0) {
      // COPY rows carry no column names, so column rules cannot be applied to them.
      return { decision, error: new GatehouseError('sql_not_supported', { message: 'COPY … TO STDOUT is refused on a connection with column masking rules: its rows cannot be masked. Use SELECT.' }) };
    }
    return { decision };
  }

  #exchangeFor(facts: readonly StatementFacts[], text: string, operation?: string, base?: Exchange): Exchange {
    const one = facts.length === 1 ? facts[0]! : undefined;
    const classes = one ? [one.class] : facts.map((f) => f.class);
    const sql = one
      ? { classes, tables: one.tables, text, risky: one.risky }
      : { classes, tables: [...new Set(facts.flatMap((f) => f.tables))], text, risky: [...new Set(facts.flatMap((f) => f.risky))] };
    const startedAt = Date.now();
    return {
      id: base?.id ?? newId('ex', startedAt),
      sessionId: this.#ctx.sessionId,
      protocol: 'postgres',
      connection: this.#ctx.connection.name,
      operation: operation ?? `sql.${strictestClass(classes)}`,
      startedAt: base?.startedAt ?? startedAt,
      client: this.#clientInfo,
      facts: { stream: false, text, sql },
      identity: this.#ctx.identity,
    };
  }

  #newRun(exchange: Exchange, decision: Decision): Run {
    this.statements++;
    return { exchange, decision, started: performance.now(), rows: 0, bytesOut: 0, ttfbMs: undefined, tag: undefined, error: undefined, timedOut: false, done: false };
  }

  /** Records the statements as forwarded; on failure refuses them (fail closed). */
  async #open(runs: Run[], requests: RecordedRequest[], simple: boolean): Promise<boolean> {
    try {
      const recorder = this.#ctx.stages.recorder;
      if (runs.length === 1) await recorder.open(runs[0]!.exchange, runs[0]!.decision, requests[0]!);
      else await Promise.all(runs.map((run, i) => recorder.open(run.exchange, run.decision, requests[i]!)));
      return true;
    } catch (error) {
      const failure = new GatehouseError('recording_failed', { detail: (error as Error).message });
      for (const run of runs) this.#ctx.stages.observe(run.exchange, run.decision, outcomeOf(run, failure));
      await this.#deny(failure, simple);
      return false;
    }
  }

  async #refuse(exchange: Exchange, decision: Decision | undefined, request: RecordedRequest, error: GatehouseError): Promise<void> {
    const outcome: ExchangeOutcome = { status: error.status, complete: true, bytesIn: 0, bytesOut: 0, ttfbMs: undefined, durationMs: Date.now() - exchange.startedAt, errorCode: error.code, errorDetail: error.detail ?? error.message };
    await this.#ctx.stages.recorder.refuse(exchange, decision, request, outcome).catch(() => undefined);
    this.#ctx.stages.observe(exchange, decision, outcome);
  }

  /**
   * Puts the refusal in the answer stream, in order: the database gets a Bind to a
   * statement that does not exist (and a Sync for a simple Query), fails it, and its
   * ErrorResponse is replaced by ours.
   */
  #deny(error: GatehouseError, simple: boolean): Promise<void> | undefined {
    this.#pending.push({ kind: 'denied', error });
    if (simple) {
      this.#pending.push({ kind: 'sync' });
      return this.#toUpstream(Buffer.concat([bindMessage('', this.#deniedStatement), syncMessage()]));
    }
    this.#discarding = true;
    return this.#toUpstream(bindMessage('', this.#deniedStatement));
  }

  /**
   * statementTimeout: one timer for the Query or Execute at the head of the FIFO, from
   * when the database starts on it (a pipelined Execute does not count its wait). On
   * expiry the statement running then is marked and cancelled on the database.
   */
  #armHead(): void {
    const ms = this.#ctx.connection.statementTimeoutMs;
    const head = this.#pending[0];
    if (ms === undefined || head === this.#armed) return;
    this.#armed = head;
    if (!head || (head.kind !== 'query' && head.kind !== 'execute')) return;
    // One Timeout per session, restarted (refresh) per statement; a stale expiry finds
    // another head and does nothing.
    if (this.#timer) this.#timer.refresh();
    else this.#timer = setTimeout(() => this.#onStatementTimeout(), ms);
  }

  #onStatementTimeout(): void {
    const head = this.#pending[0];
    if (!head || head !== this.#armed || (head.kind !== 'query' && head.kind !== 'execute')) return;
    const run = head.kind === 'query' ? head.runs[head.index] : head.run;
    if (!run || run.done) return;
    run.timedOut = true;
    this.#ctx.cancelUpstream().catch(() => undefined);
  }

  /** Queues a message for the database (sent when the client loop would wait). */
  #toUpstream(bytes: Buffer): Promise<void> | undefined {
    if (this.#upstream.socket.destroyed) throw new GatehouseError('upstream_failed', { detail: 'database connection closed' });
    return this.#toDatabase.push(bytes);
  }

  // ---- database → gateway → client ----

  async #upstreamLoop(): Promise<GatehouseError | undefined> {
    try {
      const source = this.#upstream.source;
      for (;;) {
        // As on the client side: answers already buffered are relayed in one write.
        let frame = source.tryRead();
        if (!frame) {
          const drain = this.#toClient.flush();
          if (drain) await drain;
          frame = await source.read();
        }
        const waiting = this.#onUpstream(frame);
        if (waiting) await waiting;
        if (this.#clientDrain) {
          const drain = this.#clientDrain;
          this.#clientDrain = undefined;
          await drain;
        }
        this.#armHead();
      }
    } catch (error) {
      if (this.#closed) return undefined;
      const failure =
        error instanceof GatehouseError ? error : new GatehouseError('upstream_failed', { detail: error instanceof Error ? error.message : String(error) });
      if (!this.#client.destroyed) this.#toClient.end(errorResponseFor(failure, 'FATAL'));
      return failure;
    }
  }

  #emit(bytes: Buffer, force = false): undefined {
    if (this.#swallowUntilReady && !force) return;
    this.bytesOut += bytes.length;
    const drain = this.#toClient.push(bytes);
    if (drain) this.#clientDrain = drain;
  }

  /** Relays one database message; a promise only at ReadyForQuery while outcomes are committed. */
  #onUpstream(frame: Frame): Promise<void> | undefined {
    const t = frame.type;
    // Asynchronous messages, valid at any time: NoticeResponse, NotificationResponse, ParameterStatus.
    if (t === 'N' || t === 'A' || t === 'S') return this.#emit(frame.raw, true);
    const head = this.#pending[0];
    if (!head) {
      if (t === 'E') return this.#emit(frame.raw, true); // e.g. FATAL on admin shutdown
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
          return this.#emit(frame.raw);
        }
        if (t === 'E') return this.#extendedError(frame.raw);
        break;
      }
      case 'describe':
        if (t === 't') return this.#emit(frame.raw); // ParameterDescription, then RowDescription or NoData
        if (t === 'T' || t === 'n') {
          this.#pending.shift();
          const columns = t === 'T' ? this.#rowDescription(frame.body).columns : [];
          if (head.described) head.described.columns = columns;
          return this.#emit(frame.raw);
        }
        if (t === 'E') return this.#extendedError(frame.raw);
        break;
      case 'sync':
        if (t === 'Z') {
          this.#pending.shift();
          return this.#ready(frame.raw);
        }
        break;
      case 'denied':
        if (t === 'E') {
          this.#pending.shift();
          this.#emit(errorResponseFor(head.error));
          this.#skipToSync();
          return undefined;
        }
        break;
    }
    throw new GatehouseError('upstream_failed', { detail: `unexpected message '${t}' from the database while waiting for ${head.kind}` });
  }

  #onQueryAnswer(head: Extract<Pending, { kind: 'query' }>, frame: Frame): Promise<void> | undefined {
    const run = head.runs[head.index];
    switch (frame.type) {
      case 'T': // RowDescription
        ({ columns: head.columns, plan: head.plan } = this.#rowDescription(frame.body));
        return this.#emit(frame.raw);
      case 'D': // DataRow
        return this.#row(run, frame, head.plan);
      case 'd': // CopyData (COPY … TO STDOUT): one row per message
        return this.#row(run, frame, undefined);
      case 'H': // CopyOutResponse
        return this.#copyOut(run, frame);
      case 'G': // CopyInResponse
      case 'c': // CopyDone
        return this.#emit(frame.raw);
      case 'C': // CommandComplete
        if (run) {
          run.tag = parseCommandTag(frame.body);
          this.#finishRun(run);
        }
        head.index++;
        head.columns = undefined;
        head.plan = undefined;
        return this.#emit(frame.raw);
      case 'I': // EmptyQueryResponse
        return this.#emit(frame.raw);
      case 'E': {
        // ErrorResponse ends the whole Query: later statements do not run.
        const replaced = run ? this.#upstreamError(run, frame) : frame.raw;
        for (const r of head.runs.slice(head.index + 1)) this.#finishRun(r, new GatehouseError('upstream_failed', { message: 'not executed: an earlier statement in the same Query failed' }), 'not_executed');
        head.index = head.runs.length;
        return this.#emit(replaced);
      }
      case 'Z': // ReadyForQuery
        for (const r of head.runs) if (!r.done) this.#finishRun(r);
        this.#pending.shift();
        return this.#ready(frame.raw);
      default:
        throw new GatehouseError('upstream_failed', { detail: `unexpected message '${frame.type}' in a Query answer` });
    }
  }

  #onExecuteAnswer(head: Extract<Pending, { kind: 'execute' }>, frame: Frame): undefined {
    const run = head.run;
    switch (frame.type) {
      case 'D': {
        if (head.plan === null) {
          const columns = head.portal?.columns ?? withFormats(head.portal?.statement?.columns, head.portal?.resultFormats);
          if (columns === undefined && maskingActive(this.#ctx.connection.masking)) {
            // Fail closed: without the row description the values cannot be masked.
            return this.#limitError(run, new GatehouseError('sql_not_supported', { message: 'Rows cannot be masked without their description: Describe the statement or portal before Execute.' }));
          }
          head.plan = columns ? planMasking(columns, this.#ctx.connection.masking) : undefined;
        }
        return this.#row(run, frame, head.plan);
      }
      case 'd':
        return this.#row(run, frame, undefined);
      case 'H':
        return this.#copyOut(run, frame);
      case 'G':
      case 'c':
        return this.#emit(frame.raw);
      case 'C': // CommandComplete
      case 'I': // EmptyQueryResponse
      case 's': // PortalSuspended
        run.tag = frame.type === 'C' ? parseCommandTag(frame.body) : frame.type === 's' ? 'SUSPENDED' : 'EMPTY';
        this.#finishRun(run);
        this.#pending.shift();
        return this.#emit(frame.raw);
      case 'E':
        return this.#extendedError(this.#upstreamError(run, frame));
      default:
        throw new GatehouseError('upstream_failed', { detail: `unexpected message '${frame.type}' in an Execute answer` });
    }
  }

  /**
   * A RowDescription's columns and masking plan. The last one is kept: a session mostly
   * runs the same statements, and comparing bytes is cheaper than parsing and planning.
   */
  #rowDescription(body: Buffer): RowShape {
    const last = this.#lastRows;
    if (last && last.body.equals(body)) return last;
    const columns = parseRowDescription(body);
    const shape = { body: Buffer.from(body), columns, plan: planMasking(columns, this.#ctx.connection.masking) };
    this.#lastRows = shape;
    return shape;
  }

  #row(run: Run | undefined, frame: Frame, plan: ReturnType<typeof planMasking>): undefined {
    if (!run) return this.#emit(frame.raw);
    if (run.error) return; // already refused (row limit): nothing more of it leaves
    run.rows++;
    run.ttfbMs ??= performance.now() - run.started;
    const max = this.#ctx.connection.maxRows;
    if (max !== undefined && run.rows > max) {
      run.rows = max;
      return this.#limitError(run, new GatehouseError('row_limit_exceeded', { message: `The query returned more than ${max} rows, the limit on connection "${this.#ctx.connection.name}" (maxRows); rows beyond it were not sent.` }));
    }
    const maskText = this.#ctx.connection.masking.maskText;
    const out =
      frame.type === 'D'
        ? plan
          ? maskDataRow(frame.raw, frame.body, plan)
          : frame.raw
        : maskText // CopyData in text or CSV format: the hook sees the whole line
          ? message('d', Buffer.from(maskText(frame.body.toString('utf8')), 'utf8'))
          : frame.raw;
    run.bytesOut += out.length;
    return this.#emit(out);
  }

  /** CopyOutResponse: Int8 overall format (0 text, 1 binary). Binary rows cannot go through the text hook. */
  #copyOut(run: Run | undefined, frame: Frame): undefined {
    if (run && frame.body[0] === 1 && this.#ctx.connection.masking.maskText) {
      return this.#limitError(run, new GatehouseError('sql_not_supported', { message: 'COPY in binary format is refused on a connection with masking: use the text or CSV format.' }));
    }
    return this.#emit(frame.raw);
  }

  /** Ends a statement from the gateway's side: our error now, the database's rest swallowed until ReadyForQuery. */
  #limitError(run: Run, error: GatehouseError): undefined {
    run.error = { code: error.code, detail: error.message, status: error.status };
    this.#emit(errorResponseFor(error));
    this.#swallowUntilReady = true;
    if (!run.done) this.#ctx.cancelUpstream().catch(() => undefined);
  }

  /** The database's ErrorResponse for a statement: recorded; a timeout cancel is reworded. */
  #upstreamError(run: Run, frame: Frame): Buffer {
    const fields = parseNoticeFields(frame.body);
    const code = fields.get('C') ?? '';
    if (run.timedOut && code === '57014') {
      const error = new GatehouseError('statement_timeout', {
        message: `The statement ran longer than ${this.#ctx.connection.statementTimeoutMs} ms, the limit on connection "${this.#ctx.connection.name}" (statementTimeout), and was cancelled.`,
      });
      this.#finishRun(run, error);
      return errorResponseFor(error);
    }
    if (!run.error) run.error = { code: 'sql_error', detail: `${code}: ${fields.get('M') ?? ''}`, status: 400 };
    this.#finishRun(run);
    return frame.raw;
  }

  /** ErrorResponse in extended mode: the database skips to Sync, and so does our FIFO. */
  #extendedError(raw: Buffer): undefined {
    this.#pending.shift();
    this.#emit(raw);
    this.#skipToSync();
  }

  #skipToSync(): void {
    while (this.#pending.length > 0 && this.#pending[0]!.kind !== 'sync') {
      const p = this.#pending.shift()!;
      if (p.kind === 'execute') this.#finishRun(p.run, new GatehouseError('upstream_failed', { message: 'not executed: an earlier message in the same batch failed' }), 'not_executed');
    }
  }

  #ready(raw: Buffer): Promise<void> | undefined {
    // The outcome of every statement it ends is durable before ReadyForQuery is released
    // (what went before it waits in the outbox: the client can do nothing before it).
    if (this.#finishing.length === 0) return this.#released(raw);
    // Each finishing promise already swallows its error (#finishRun).
    const finishing = this.#finishing.splice(0);
    return (finishing.length === 1 ? finishing[0]! : Promise.all(finishing)).then(() => this.#released(raw));
  }

  #released(raw: Buffer): undefined {
    this.#swallowUntilReady = false;
    this.#emit(raw, true);
    return undefined;
  }

  #finishRun(run: Run, error?: GatehouseError, code?: string): void {
    if (run.done) return;
    run.done = true;
    if (error && !run.error) run.error = { code: code ?? error.code, detail: error.message, status: error.status };
    const outcome = outcomeOf(run);
    this.#finishing.push(this.#ctx.stages.recorder.finish(run.exchange, outcome).catch(() => undefined));
    this.#ctx.stages.observe(run.exchange, run.decision, outcome);
  }
}

function outcomeOf(run: Run, failure?: GatehouseError): ExchangeOutcome {
  const error = failure ? { code: failure.code, detail: failure.detail ?? failure.message, status: failure.status } : run.error;
  return {
    status: error ? error.status : 200,
    complete: true,
    bytesIn: 0,
    bytesOut: run.bytesOut,
    ttfbMs: run.ttfbMs,
    durationMs: performance.now() - run.started,
    responseBody: JSON.stringify({ command: run.tag ?? null, rows: run.tag && !error ? (rowsFromTag(run.tag) ?? run.rows) : run.rows }),
    errorCode: error?.code,
    errorDetail: error?.detail,
  };
}

function unparseable(detail: string): GatehouseError {
  return new GatehouseError('sql_unparseable', { message: `The SQL could not be parsed, so it was not forwarded: ${detail}.`, detail });
}

/** What the recording keeps of a statement: its text and its parameters (masked by the caller of recording). */
function requestOf(method: string, text: string, params: readonly (string | null)[] | undefined): RecordedRequest {
  return { method, path: '', headers: {}, body: JSON.stringify(params ? { sql: text, params } : { sql: text }), truncated: false };
}

function withFormats(columns: ColumnDescription[] | undefined, formats: readonly number[] | undefined): ColumnDescription[] | undefined {
  if (!columns) return undefined;
  const f = formats ?? [];
  return columns.map((c, i) => ({ ...c, format: f.length === 0 ? 0 : f.length === 1 ? f[0]! : (f[i] ?? 0) }));
}
