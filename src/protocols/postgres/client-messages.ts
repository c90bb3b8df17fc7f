// The client side of a PostgreSQL session: client messages read in order, inspected,
// decided, recorded and queued for the database (session-core.ts keeps the FIFO of
// answers in step). Enforces:
// - every statement is decided by policy before the database sees it (Query: each
//   statement; extended query: at Parse and again at Execute) — decide-statement.ts;
// - `require_approval`: the statement is held until a reviewer decides — hold-statement.ts;
// - a refused statement gets an ErrorResponse in its place, in order; the database is
//   sent a Bind to a statement that does not exist, so its transaction state fails
//   exactly as if the statement had failed there (implicit transaction rolled back,
//   explicit block aborted) and, in extended mode, it skips to Sync as the client does;
// - after an error in extended mode, client messages are discarded until Sync, also
//   when the error came after the client sent them (session-core.ts, `skippingToSync`);
// - what the session knows of prepared statements and portals follows what the database
//   did: a DEALLOCATE forgets at its CommandComplete, a Parse or Bind it skipped leaves
//   the name as it was (database-messages.ts), a parsed `execute p` runs only the p it
//   was decided as, and a SQL FETCH of a bound portal whose values it could not mask
//   is refused;
// - a statement's record is durable before it is forwarded; when recording fails the
//   statement is refused (recording_failed) and nothing is sent;
// - a malformed client message ends this session (FATAL 08P01), and no other.

import { GatehouseError } from '../../errors/index.js';
import type { Decision, Exchange, RecordedRequest } from '../../exchange/index.js';
import { bindMessage, bodyReader, frameLength, MessageTooLarge, ProtocolViolation, syncMessage, type Frame } from './codec.js';
import { maskingFor } from './connection.js';
import { asStored, derivationOf } from './derive-columns.js';
import { decideStatement, exchangeOf, SessionDecisions, statementExchange, unparseable, type Checked, type StatementContext } from './decide-statement.js';
import { errorResponseFor } from './errors.js';
import { planCopyOut } from './copy-out.js';
import { ExtendedQuery } from './extended-query.js';
import { FrameSource, SocketClosed } from './frame-source.js';
import { statementDigest, StatementHolds, statementPreview, type HoldOutcome } from './hold-statement.js';
import { forSession, inspectSql, inspectSqlCached, strictestClass, type SqlInspection, type StatementFacts } from './inspect-sql.js';
import { derivedMasks, type DerivedMasks } from './mask-rows.js';
import type { SessionCore } from './session-core.js';
import type { Pending, PortalInfo, Run, StatementInfo } from './session-state.js';
import { newRun, requestOf } from './statement-recording.js';

/** Statements in one simple Query, each its own exchange (docs/postgres.md, Limits on input). */
export const maxStatementsPerQuery = 1000;

/**
 * What a handler returns when it has arranged for the pump to go on by itself: a
 * statement waiting for its record continues from the record's own reaction, not from
 * a second promise the pump reacts to.
 */
const continues = Symbol('continues');

/** A handler's answer: undefined (go on now), a promise to wait for (then go on, unless it resolves to `continues`), or `continues`. */
type Waiting = Promise<unknown> | typeof continues | undefined;

/** One statement of a Query, decided. */
interface QueryStep {
  readonly exchange: Exchange;
  readonly request: RecordedRequest;
  readonly checked: Checked;
  readonly derived: DerivedMasks | undefined;
  /** DEALLOCATE's name ('*': all), forgotten when the database has run it. */
  readonly deallocates: string | undefined;
  /** A COPY … TO STDOUT to describe and mask column by column (copy-out.ts). */
  readonly copy: boolean;
}

export class ClientMessages {
  readonly #core: SessionCore;
  readonly #source: FrameSource;
  readonly #decide: StatementContext;
  readonly #extended = new ExtendedQuery();
  readonly #holds: StatementHolds | undefined;
  /** The hold in progress (require_approval): aborted by CancelRequest or the client leaving. */
  #holding: AbortController | undefined;

  constructor(core: SessionCore, source: FrameSource) {
    this.#core = core;
    this.#source = source;
    const { ctx } = core;
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
    this.#holds = stages.approvals ? new StatementHolds(stages.approvals) : undefined;
    core.client.once('close', () => this.#holding?.abort('closed'));
  }

  /** See PostgresSession.cancelHold. */
  cancelHold(): boolean {
    const holding = this.#holding;
    if (!holding) return false;
    holding.abort('cancel');
    // Before a hold everything queued was sent: an empty FIFO means no statement is running.
    return this.#core.pending.length === 0;
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
      waiting = this.#deny(this.#core.recording.failed(runs, error), simple);
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
        return this.#onQuery(bodyReader(frame).cstring(), frame);
      case 'P': // Parse
        return this.#onParse(frame);
      case 'B': // Bind
        return this.#core.forward({ kind: 'bind', portal: this.#extended.bind(frame) }, frame);
      case 'D': // Describe
        return this.#core.forward({ kind: 'describe', described: this.#extended.describe(frame) }, frame);
      case 'E': // Execute
        return this.#onExecute(frame);
      case 'C': // Close
        return this.#core.forward({ kind: 'close', closed: this.#extended.close(frame) }, frame);
      case 'S': // Sync
        return this.#core.forward({ kind: 'sync' }, frame);
      case 'c': // CopyDone
      case 'f': // CopyFail
        this.#core.copyIn = false;
        return this.#core.toUpstream(frame);
      case 'H': // Flush
      case 'd': // CopyData
        return this.#core.toUpstream(frame);
      case 'F': {
        // FunctionCall (libpq's PQfn: psql's \lo_import, lo_* of libpq): it names a
        // function by OID, which cannot be inspected, so it is refused, and recorded.
        const oid = bodyReader(frame).int32();
        const error = new GatehouseError('sql_not_supported', { message: 'The FunctionCall protocol message is not supported through the gateway; call the function from SQL.', detail: `FunctionCall of the function with OID ${oid}` });
        return this.#refuse(statementExchange(this.#decide, [], '', 'sql.other'), undefined, requestOf('FunctionCall', `-- FunctionCall: function OID ${oid}`, undefined), error, true);
      }
      default:
        throw new ProtocolViolation(`invalid frontend message type ${JSON.stringify(frame.type)}`);
    }
  }

  /**
   * The database converts each message from the client encoding in force when it reads
   * it, and a statement still running (set_config, a function) may change that encoding
   * before it reads the next one: text inspected as UTF-8 could then be cut differently
   * by the database (in SJIS, UTF-8 "ā\\'" ends a string literal); so could text with a
   * backslash once standard_conforming_strings is off (`'a\\''; drop …`). ASCII without
   * a backslash reads the same whatever those settings; a Query or Parse with other bytes
   * goes on only once the database has answered everything before it, its ReadyForQuery
   * (and any change of those settings, which ends the session) seen. In an extended
   * batch whose earlier Execute is answered only at a Sync not yet sent, it is refused.
   * Undefined: go on now (the common case: nothing in flight, or plain ASCII).
   */
  #encodingGate(text: string): Promise<void> | GatehouseError | undefined {
    const core = this.#core;
    const pending = core.pending;
    if (pending.length === 0 || !pending.some((p) => p.kind === 'query' || p.kind === 'execute') || !/[^\x00-\x5b\x5d-\x7f]/.test(text)) return undefined;
    const last = pending[pending.length - 1]!.kind;
    if (last !== 'sync' && last !== 'query') {
      return new GatehouseError('sql_not_supported', {
        message: 'SQL text with non-ASCII characters or a backslash cannot be pipelined behind an Execute of the same batch: send Sync first (a statement still running could change the client encoding or standard_conforming_strings).',
      });
    }
    const sent = core.flushToDatabase();
    return sent ? sent.then(() => core.whenIdle()) : core.whenIdle();
  }

  #onQuery(text: string, frame: Frame): Waiting {
    const gate = this.#encodingGate(text);
    if (gate instanceof GatehouseError) return this.#refuse(statementExchange(this.#decide, [], text, 'sql.other'), undefined, requestOf('Query', text, undefined), gate, true);
    if (gate) return gate.then(() => this.#onQueryNow(text, frame));
    return this.#onQueryNow(text, frame);
  }

  #onQueryNow(text: string, frame: Frame): Waiting {
    const shadowed = this.#core.ctx.shadowedFunctions;
    const cached = inspectSqlCached(text);
    const inspection = cached ? forSession(cached, text, shadowed) : inspectSql(text).then((parsed) => forSession(parsed, text, shadowed));
    return 'then' in inspection ? inspection.then((parsed) => this.#query(parsed, text, frame)) : this.#query(inspection, text, frame);
  }

  /**
   * Decides each statement of a Query, records them, then forwards the Query. Synchronous
   * up to the recording (the common case); a statement that needs approval continues in
   * #queryHeld.
   */
  #query(inspection: SqlInspection, text: string, frame: Frame): Waiting {
    if (!inspection.ok) return this.#refuse(statementExchange(this.#decide, [], text, 'sql.unparseable'), undefined, requestOf('Query', text, undefined), unparseable(inspection.error), true);
    const statements = inspection.statements;
    // Each statement is an exchange, decided and recorded: a Query of 100 000 `select 1;`
    // (900 KB) made as many records and stalled the gateway for tens of seconds.
    if (statements.length > maxStatementsPerQuery) {
      const error = new GatehouseError('too_many_statements', { message: `A Query may hold at most ${maxStatementsPerQuery} statements through the gateway; this one holds ${statements.length}. Send them in several Queries.` });
      return this.#refuse(statementExchange(this.#decide, statements, text), undefined, requestOf('Query', text, undefined), error, true);
    }
    const runs: Run[] = [];
    const requests: RecordedRequest[] = [];
    for (let i = 0; i < statements.length; i++) {
      const step = this.#queryStatement(statements[i]!);
      if (step.checked.error) return this.#refuse(step.exchange, step.checked.decision, step.request, step.checked.error, true);
      if (step.copy) return this.#queryCopy(statements, step, frame);
      if (step.checked.decision.effect === 'require_approval') return this.#queryHeld(statements, i, step, runs, requests, frame);
      runs.push(this.#newRun(step.exchange, step.checked.decision, step.derived, false, step.deallocates));
      requests.push(step.request);
    }
    return this.#openQuery(runs, requests, frame);
  }

  #queryStatement(parsed: StatementFacts): QueryStep {
    const facts = this.#asRun(parsed);
    const exchange = statementExchange(this.#decide, [facts], facts.text);
    const copy = facts.copyOut === true && this.#core.ctx.connection.masking.columns.size > 0;
    const checked = this.#check(exchange, facts, copy);
    if (!checked.error) this.#track(facts);
    return { exchange, request: requestOf('Query', facts.text, undefined), checked, derived: derivedMasks(facts.derived, this.#core.ctx.connection.masking), deallocates: facts.deallocates, copy };
  }

  /**
   * A statement's facts as the database will run it: an EXECUTE (alone, or inside
   * EXPLAIN ANALYZE or CREATE TABLE AS) runs a statement prepared earlier in the session,
   * by SQL PREPARE or by a named Parse, and is decided as that statement (its class,
   * tables, risky shapes), not as `sql.execute`: otherwise one allow or one approval of a
   * `PREPARE … AS DELETE` covered every later EXECUTE of it. A name never prepared in the
   * session stays `sql.execute` (the database will not find it either).
   */
  #asRun(facts: StatementFacts): StatementFacts {
    if (facts.executes === undefined) return facts;
    const prepared = this.#extended.statement(facts.executes);
    // A Parse of `execute q` run by name: its facts are the q of that Parse.
    if (prepared && !this.#executesAsParsed(prepared)) return { ...facts, unsupported: `the prepared statement "${facts.executes}" executes "${prepared.executes!.name}", which was prepared again (or deallocated) after it was parsed; parse it again` };
    const inner = prepared?.facts;
    if (!inner || inner.length === 0) return facts;
    const innerClass = strictestClass(inner.map((f) => f.class));
    const unsupported = facts.unsupported ?? inner.find((f) => f.unsupported)?.unsupported;
    const innerDerived = derivationOf(inner);
    // EXECUTE answers with the prepared statement's rows; CREATE TABLE AS EXECUTE keeps them.
    const derived = facts.class === 'execute' || !innerDerived ? innerDerived : asStored(innerDerived);
    const tables = [...new Set([...facts.tables, ...inner.flatMap((f) => f.tables)])];
    // What it reads: the prepared statement's reads; CREATE TABLE AS EXECUTE keeps all it names.
    const reads = facts.reads ? tables : inner.some((f) => f.reads) ? [...new Set(inner.flatMap((f) => f.reads ?? []))] : undefined;
    return {
      ...facts,
      class: facts.class === 'execute' ? innerClass : strictestClass([facts.class, innerClass]),
      tables,
      ...(reads !== undefined ? { reads } : {}),
      risky: [...new Set([...facts.risky, ...inner.flatMap((f) => f.risky)])],
      ...(inner.some((f) => f.copyOut) ? { copyOut: true } : {}),
      ...(unsupported !== undefined ? { unsupported } : {}),
      ...(derived !== undefined ? { derived } : {}),
    };
  }

  /** Whether the statement an `execute name` in `statement` runs is still the one its Parse was decided as. */
  #executesAsParsed(statement: StatementInfo): boolean {
    const runs = statement.executes;
    return runs === undefined || this.#extended.statement(runs.name) === runs.statement;
  }

  /** Policy and the gateway's own refusals for one statement (decide-statement.ts), and what only the session knows: its portals. */
  #check(exchange: Exchange, facts: StatementFacts, copyMasked = false): Checked {
    const checked = decideStatement(this.#decide, exchange, facts, copyMasked);
    if (checked.error || facts.fetches === undefined) return checked;
    const error = this.#unmaskableFetch(facts.fetches);
    return error ? { decision: checked.decision, error } : checked;
  }

  /**
   * A SQL FETCH of a portal the client bound (Bind): the answer carries the portal's
   * columns under the names its statement gave them, but not the statement, so values
   * derived from a masked column (`select email as e`) would leave unmasked. Read such a
   * portal with Execute, which is masked by its statement.
   */
  #unmaskableFetch(name: string): GatehouseError | undefined {
    const portal = this.#extended.portal(name);
    const rules = this.#core.ctx.connection.masking;
    if (!portal || rules.columns.size === 0) return undefined;
    const facts = portal.statement?.facts;
    const derived = !portal.bindFailed && facts ? derivedMasks(derivationOf(facts), rules) : { rule: [...rules.columns.keys()][0]! };
    if (!derived) return undefined;
    return new GatehouseError('sql_not_supported', {
      message: `FETCH from portal "${name}" is refused: it was bound over a statement whose result carries values of masked column "${derived.rule}" (masking.columns) under other names, which a FETCH's answer cannot be masked by. Read the portal with Execute.`,
    });
  }

  /**
   * Keeps the session's prepared statements in step with the PREPARE it lets through (a
   * DEALLOCATE: when it has run, #newRun) and its portals with DECLARE and CLOSE.
   */
  #track(facts: StatementFacts): void {
    if (facts.prepares !== undefined) this.#extended.prepare(facts.prepares, facts.text, [facts]);
    if (facts.cursor !== undefined) this.#extended.forgetPortal(facts.cursor);
  }

  /** The rest of a Query from statement `i`, which needs approval: each such statement waits for its own review, in order. */
  async #queryHeld(statements: readonly StatementFacts[], i: number, step: QueryStep, runs: Run[], requests: RecordedRequest[], frame: Frame): Promise<unknown> {
    for (;;) {
      let exchange = step.exchange;
      const decision = step.checked.decision!;
      if (decision.effect === 'require_approval') {
        const held = await this.#hold(exchange, decision, statementDigest(statements[i]!.text));
        exchange = held.exchange;
        if (held.error) return this.#refuse(exchange, decision, step.request, held.error, true);
      }
      runs.push(this.#newRun(exchange, decision, step.derived, decision.effect === 'require_approval', step.deallocates));
      requests.push(step.request);
      if (++i === statements.length) return this.#openQuery(runs, requests, frame);
      step = this.#queryStatement(statements[i]!);
      if (step.checked.error) return this.#refuse(step.exchange, step.checked.decision, step.request, step.checked.error, true);
      if (step.copy) return this.#queryCopy(statements, step, frame);
    }
  }

  /**
   * A COPY … TO STDOUT on a connection with column rules: alone in its Query (statements
   * before it could change what it reads, and the description is asked before the Query
   * runs), held first if it needs approval, then described and masked (copy-out.ts).
   */
  async #queryCopy(statements: readonly StatementFacts[], step: QueryStep, frame: Frame): Promise<unknown> {
    const decision = step.checked.decision!;
    let exchange = step.exchange;
    if (statements.length > 1) {
      const error = new GatehouseError('sql_not_supported', { message: 'COPY … TO STDOUT on a connection with column masking rules is masked column by column only when it is alone in its Query; it was not run. Send it on its own.' });
      return this.#refuse(exchange, decision, step.request, error, true);
    }
    const held = decision.effect === 'require_approval';
    if (held) {
      const outcome = await this.#hold(exchange, decision, statementDigest(statements[0]!.text));
      exchange = outcome.exchange;
      if (outcome.error) return this.#refuse(exchange, decision, step.request, outcome.error, true);
    }
    const copy = await planCopyOut(this.#core, statements[0]!.text, maskingFor(this.#core.ctx.connection, decision));
    if (copy instanceof GatehouseError) return this.#refuse(exchange, decision, step.request, copy, true);
    const run = this.#newRun(exchange, decision, step.derived, held, step.deallocates);
    run.copy = copy;
    return this.#openQuery([run], [step.request], frame);
  }

  /** Records the Query's statements, then forwards it (or refuses it when recording failed). */
  #openQuery(runs: Run[], requests: readonly RecordedRequest[], frame: Frame): typeof continues {
    this.#core.recording.open(runs, requests).then(
      () => this.#recorded({ kind: 'query', runs, index: 0, columns: undefined, plan: undefined }, frame),
      (error: unknown) => this.#notRecorded(runs, error, true),
    );
    return continues;
  }

  async #onParse(frame: Frame): Promise<void> {
    const r = bodyReader(frame);
    const name = r.cstring();
    const text = r.cstring();
    const gate = this.#encodingGate(text);
    if (gate instanceof GatehouseError) return this.#refuse(statementExchange(this.#decide, [], text, 'sql.other'), undefined, requestOf('Parse', text, undefined), gate, false);
    if (gate) await gate;
    const inspection = await forSession(inspectSqlCached(text) ?? (await inspectSql(text)), text, this.#core.ctx.shadowedFunctions);
    const request = requestOf('Parse', text, undefined);
    if (!inspection.ok) return this.#refuse(statementExchange(this.#decide, [], text, 'sql.unparseable'), undefined, request, unparseable(inspection.error), false);
    // Decided at Parse, so a refused statement never reaches the database even as a
    // plan; one that needs approval is prepared, and held at Execute.
    // Only a text that runs a prepared statement gets new facts (no array per Parse otherwise).
    const runs = inspection.statements.find((facts) => facts.executes !== undefined)?.executes;
    const statements = runs !== undefined ? inspection.statements.map((facts) => this.#asRun(facts)) : inspection.statements;
    const exchange = statementExchange(this.#decide, statements, text);
    for (const facts of statements) {
      const checked = this.#check(exchange, facts);
      if (checked.error) return this.#refuse(exchange, checked.decision, request, checked.error, false);
    }
    for (const facts of statements) this.#track(facts);
    const skipped = this.#extended.prepare(name, text, statements, runs !== undefined ? { name: runs, statement: this.#extended.statement(runs) } : undefined);
    return this.#core.forward({ kind: 'parse', statement: this.#extended.statement(name), skipped }, frame);
  }

  #onExecute(frame: Frame): Waiting {
    const portal = this.#extended.execute(frame);
    const statement = portal?.statement;
    // A portal over a statement made with SQL PREPARE has no Parse we saw: `sql.execute`.
    const exchange = statement ? exchangeOf(this.#decide, statement.shape) : statementExchange(this.#decide, [], '', 'sql.execute');
    const params = portal?.params;
    const request = statement ? requestOf('Execute', statement.text, params, statement.textJson) : requestOf('Execute', '', params);
    let decision: Decision | undefined;
    const facts = statement?.facts;
    // A DECLARE parsed earlier runs now: the portal it names is the cursor's from now on.
    for (const f of facts ?? []) if (f.cursor !== undefined) this.#extended.forgetPortal(f.cursor);
    // `execute p` parsed earlier was decided as the p of then: another p runs unseen.
    if (statement && !this.#executesAsParsed(statement)) {
      const error = new GatehouseError('sql_not_supported', { message: `The prepared statement "${statement.executes!.name}" this statement executes was prepared again (or deallocated) after it was parsed, so it was not run: parse it again.` });
      return this.#refuse(exchange, undefined, request, error, false);
    }
    if (!facts || facts.length === 0) {
      const checked = decideStatement(this.#decide, exchange, undefined);
      if (checked.error) return this.#refuse(exchange, checked.decision, request, checked.error, false);
      decision = checked.decision;
    } else {
      for (const f of facts) {
        const checked = this.#check(exchange, f);
        if (checked.error) return this.#refuse(exchange, checked.decision, request, checked.error, false);
        // The decision kept is the one that asks for approval, if any does.
        if (decision?.effect !== 'require_approval') decision = checked.decision;
      }
    }
    if (decision!.effect === 'require_approval') return this.#executeHeld(exchange, decision!, request, portal, frame);
    return this.#openExecute(this.#newRun(exchange, decision!, undefined, false, deallocatesOf(facts)), request, portal, frame);
  }

  /** Held at Execute, not Parse: the approval covers the statement with these parameter values. */
  async #executeHeld(exchange: Exchange, decision: Decision, request: RecordedRequest, portal: PortalInfo | undefined, frame: Frame): Promise<unknown> {
    const text = portal?.statement?.text ?? '';
    const held = await this.#hold(exchange, decision, statementDigest(text, portal?.approvalParams ?? portal?.params ?? []), statementPreview(text, this.#shownParams(decision, portal?.params)));
    if (held.error) return this.#refuse(held.exchange, decision, request, held.error, false);
    return this.#openExecute(this.#newRun(held.exchange, decision, undefined, true, deallocatesOf(portal?.statement?.facts)), request, portal, frame);
  }

  /** Records the Execute's statement, then forwards it (or refuses it when recording failed). */
  #openExecute(run: Run, request: RecordedRequest, portal: PortalInfo | undefined, frame: Frame): typeof continues {
    this.#core.recording.open([run], [request]).then(
      () => this.#recorded({ kind: 'execute', run, portal, plan: null }, frame),
      (error: unknown) => this.#notRecorded([run], error, false),
    );
    return continues;
  }

  #newRun(exchange: Exchange, decision: Decision, derived?: DerivedMasks, held = false, deallocates?: string): Run {
    this.#core.statements++;
    const run = newRun(exchange, decision, maskingFor(this.#core.ctx.connection, decision), derived, held);
    // Forgotten only once run: until then a Bind to the name is still its statement's.
    if (deallocates !== undefined) run.completed = this.#extended.deallocation(deallocates);
    return run;
  }

  /** Parameters as a reviewer may see them: as the recording keeps them (request profiles applied). */
  #shownParams(decision: Decision, params: readonly (string | null)[] | undefined): readonly (string | null)[] | undefined {
    const recorded = maskingFor(this.#core.ctx.connection, decision).recorded;
    if (!recorded || !params) return params;
    return (JSON.parse(recorded(JSON.stringify({ params }), {})) as { params: (string | null)[] }).params;
  }

  /**
   * Holds a statement for approval. What was queued for the database before it leaves
   * first (a hold may last minutes); the NoticeResponse with the review goes out at once.
   */
  async #hold(exchange: Exchange, decision: Decision, digest: string, preview?: string): Promise<HoldOutcome> {
    const core = this.#core;
    const drain = core.flushToDatabase();
    if (drain) await drain;
    const holding = new AbortController();
    this.#holding = holding;
    if (core.client.destroyed) holding.abort('closed');
    try {
      return await this.#holds!.hold(exchange, decision, digest, {
        signal: holding.signal,
        preview,
        notify: (notice) => {
          core.bytesOut += notice.length;
          core.toClient.push(notice);
          core.toClient.flush();
        },
      });
    } finally {
      this.#holding = undefined;
    }
  }

  /** Records a refusal, then answers it in order (#deny). */
  async #refuse(exchange: Exchange, decision: Decision | undefined, request: RecordedRequest, error: GatehouseError, simple: boolean): Promise<void> {
    await this.#core.recording.refuse(exchange, decision, request, error);
    return this.#deny(error, simple);
  }

  /**
   * Puts the refusal in the answer stream, in order: the database gets a Bind to a
   * statement that does not exist (and a Sync for a simple Query), fails it, and its
   * ErrorResponse is replaced by ours.
   */
  #deny(error: GatehouseError, simple: boolean): Promise<void> | undefined {
    const core = this.#core;
    // The database skips to Sync already (an error came while this was decided): it would
    // skip the Bind, and a Sync would end its skipping early.
    if (core.skippingToSync) return undefined;
    core.expect({ kind: 'denied', error });
    if (simple) {
      core.expect({ kind: 'sync' });
      return core.toUpstream(Buffer.concat([bindMessage('', core.deniedStatement), syncMessage()]));
    }
    core.skippingToSync = true;
    return core.toUpstream(bindMessage('', core.deniedStatement));
  }
}

/** The name a prepared DEALLOCATE (or DISCARD ALL: '*') forgets when it runs. */
function deallocatesOf(facts: readonly StatementFacts[] | undefined): string | undefined {
  return facts?.find((f) => f.deallocates !== undefined)?.deallocates;
}
