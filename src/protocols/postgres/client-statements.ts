// What the client side of a PostgreSQL session does for any statement, simple Query or
// extended (client-messages.ts reads the messages; client-query.ts and
// client-extended.ts handle Query, Parse and Execute). Enforces:
// - a statement is decided as the database will run it: an EXECUTE as the statement it
//   runs, a SQL FETCH of a bound portal whose values it could not mask refused (check);
// - `require_approval`: the statement is held until a reviewer decides — hold-statement.ts;
// - a refused statement gets an ErrorResponse in its place, in order; the database is
//   sent a Bind to a statement that does not exist, so its transaction state fails
//   exactly as if the statement had failed there (implicit transaction rolled back,
//   explicit block aborted) and, in extended mode, it skips to Sync as the client does;
// - SQL whose reading depends on settings a running statement may change waits for the
//   database to be idle (encodingGate).

import { GatehouseError } from '../../errors/index.js';
import type { Decision, Exchange, RecordedRequest } from '../../exchange/index.js';
import { bindMessage, flushMessage, syncMessage, type Frame } from './codec.js';
import { maskingFor } from './connection.js';
import { errorResponseFor } from './errors.js';
import { asStored, derivationOf } from './derive-columns.js';
import { decideStatement, SessionDecisions, type Checked, type StatementContext } from './decide-statement.js';
import { ExtendedQuery } from './extended-query.js';
import { StatementHolds, type HoldOutcome } from './hold-statement.js';
import type { StatementFacts } from './inspect-sql.js';
import { strictestClass } from './statement-classes.js';
import { derivedMasks, readsOnlySystemCatalogs, withoutColumnRules, type DerivedMasks } from './mask-rows.js';
import type { SessionCore } from './session-core.js';
import type { Pending, Run, StatementInfo } from './session-state.js';
import { withoutPasswords } from './statement-passwords.js';
import { newRun } from './statement-recording.js';

/**
 * What a handler returns when it has arranged for the pump to go on by itself: a
 * statement waiting for its record continues from the record's own reaction, not from
 * a second promise the pump reacts to.
 */
export const continues = Symbol('continues');

/** A handler's answer: undefined (go on now), a promise to wait for (then go on, unless it resolves to `continues`), or `continues`. */
export type Waiting = Promise<unknown> | typeof continues | undefined;

/** How a handler that continues by itself (`continues`) goes on: ClientMessages. */
export interface ClientFlow {
  /** A statement's record is durable: it is forwarded, and the pump goes on. */
  recorded(expected: Pending, frame: Frame): void;
  /** Recording the statements failed: they are refused (nothing is sent), and the pump goes on. */
  notRecorded(runs: readonly Run[], error: unknown, simple: boolean): void;
  /** Ends the session with this error (FATAL to the client). */
  failed(error: unknown): void;
  /** Reads on. */
  pump(): void;
}

export class ClientStatements {
  readonly #core: SessionCore;
  readonly decide: StatementContext;
  /** Prepared statements and portals, as the client's messages left them. */
  readonly extended = new ExtendedQuery();
  readonly #holds: StatementHolds | undefined;
  /** The hold in progress (require_approval): aborted by CancelRequest or the client leaving. */
  #holding: AbortController | undefined;

  constructor(core: SessionCore) {
    this.#core = core;
    const { ctx } = core;
    const { connection, stages } = ctx;
    this.decide = {
      connection,
      policy: stages.policy,
      identity: ctx.identity,
      sessionId: ctx.sessionId,
      client: { address: ctx.clientAddress, userAgent: ctx.userAgent },
      approvals: stages.approvals !== undefined,
      decisions: new SessionDecisions(),
      tables: core.tables,
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
  encodingGate(text: string): Promise<void> | GatehouseError | undefined {
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

  /**
   * A statement's facts as the database will run it: an EXECUTE (alone, or inside
   * EXPLAIN ANALYZE or CREATE TABLE AS) runs a statement prepared earlier in the session,
   * by SQL PREPARE or by a named Parse, and is decided as that statement (its class,
   * tables, risky shapes), not as `sql.execute`: otherwise one allow or one approval of a
   * `PREPARE … AS DELETE` covered every later EXECUTE of it. A name never prepared in the
   * session stays `sql.execute` (the database will not find it either).
   */
  asRun(facts: StatementFacts): StatementFacts {
    if (facts.executes === undefined) return facts;
    const prepared = this.extended.statement(facts.executes);
    // A Parse of `execute q` run by name: its facts are the q of that Parse.
    if (prepared && !this.executesAsParsed(prepared)) return { ...facts, unsupported: `the prepared statement "${facts.executes}" executes "${prepared.executes!.name}", which was prepared again (or deallocated) after it was parsed; parse it again` };
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
      // The prepared statement's CTE names are no relations either.
      ...(inner.some((f) => f.ctes) ? { ctes: [...(facts.ctes ?? []), ...inner.flatMap((f) => f.ctes ?? [])] } : {}),
      ...(inner.some((f) => f.copyOut) ? { copyOut: true } : {}),
      // A prepared set_config('search_path', …) changes it at each EXECUTE.
      ...(inner.some((f) => f.searchPath) ? { searchPath: true } : {}),
      ...(unsupported !== undefined ? { unsupported } : {}),
      ...(derived !== undefined ? { derived } : {}),
    };
  }

  /** Whether the statement an `execute name` in `statement` runs is still the one its Parse was decided as. */
  executesAsParsed(statement: StatementInfo): boolean {
    const runs = statement.executes;
    return runs === undefined || this.extended.statement(runs.name) === runs.statement;
  }

  /**
   * Policy and the gateway's own refusals for one statement (decide-statement.ts), and what only the session knows: its portals.
   * `copyMasked`: a COPY … TO STDOUT the session will describe and mask column by column (copy-out.ts).
   */
  check(exchange: Exchange, facts: StatementFacts, copyMasked = false): Checked {
    const checked = decideStatement(this.decide, exchange, facts, copyMasked);
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
    const portal = this.extended.portal(name);
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
   * DEALLOCATE: when it has run, newRun) and its portals with DECLARE and CLOSE.
   */
  track(facts: StatementFacts): void {
    if (facts.prepares !== undefined) this.extended.prepare(facts.prepares, facts.text, [facts]);
    if (facts.cursor !== undefined) this.extended.forgetPortal(facts.cursor);
  }

  newRun(exchange: Exchange, decision: Decision, derived?: DerivedMasks, held = false, deallocates?: string): Run {
    this.#core.statements++;
    let masking = maskingFor(this.#core.ctx.connection, decision);
    // The system catalogs hold no user table's values: psql's `\d` (a column "Name") is not masked by a rule on `name`.
    if (masking.columns.size > 0 && readsOnlySystemCatalogs(exchange.facts.sql)) {
      masking = withoutColumnRules(masking);
      derived = undefined;
    }
    const run = newRun(exchange, decision, masking, derived, held);
    // Forgotten only once run: until then a Bind to the name is still its statement's.
    if (deallocates !== undefined) run.completed = this.extended.deallocation(deallocates);
    return run;
  }

  /** A statement's text as a reviewer may see it: as the recording keeps it (request profiles applied). */
  shownText(decision: Decision, text: string): string {
    text = withoutPasswords(text);
    const recorded = maskingFor(this.#core.ctx.connection, decision).recorded;
    if (!recorded) return text;
    const sql = (JSON.parse(recorded(JSON.stringify({ sql: text }), {})) as { sql?: unknown }).sql;
    return typeof sql === 'string' ? sql : '';
  }

  /** Parameters as a reviewer may see them: as the recording keeps them (request profiles applied). */
  shownParams(decision: Decision, params: readonly (string | null)[] | undefined): readonly (string | null)[] | undefined {
    const recorded = maskingFor(this.#core.ctx.connection, decision).recorded;
    if (!recorded || !params) return params;
    return (JSON.parse(recorded(JSON.stringify({ params }), {})) as { params: (string | null)[] }).params;
  }

  /**
   * Holds a statement for approval. What was queued for the database before it leaves
   * first (a hold may last minutes), with a Flush when answers are owed: in an extended
   * batch the database sends an Execute's answer only at Sync or Flush (protocol,
   * "Extended Query"), so a COPY (or any statement) ahead of the held one in its batch
   * would otherwise not complete for the client, and its statement timer would run on,
   * until the review ends. The NoticeResponse with the review goes out at once.
   */
  async hold(exchange: Exchange, decision: Decision, digest: string, preview?: string, behindOthers = false): Promise<HoldOutcome> {
    const core = this.#core;
    if (core.pending.length > 0 && !core.skippingToSync) core.toUpstream(flushMessage());
    const drain = core.flushToDatabase();
    if (drain) await drain;
    if (!behindOthers && this.#cannotRun(exchange)) {
      return { exchange, error: new GatehouseError('transaction_aborted', { message: 'current transaction is aborted, commands ignored until end of transaction block: the statement was not held for approval (it could not run). ROLLBACK, then run the transaction again.' }) };
    }
    const holding = new AbortController();
    this.#holding = holding;
    if (core.client.destroyed) holding.abort('closed');
    try {
      return await this.#holds!.hold(exchange, decision, digest, {
        signal: holding.signal,
        inTransactionBlock: core.transactionStatus !== 'I',
        // The review (stored, sent to reviewers' webhooks and Slack) shows what the record keeps.
        preview: preview ?? (exchange.facts.text === undefined ? undefined : this.shownText(decision, exchange.facts.text)),
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

  /**
   * The statement is sure not to run: the session's transaction block has failed (its
   * last ReadyForQuery said 'E', and nothing sent since can end the block: no Query,
   * no Execute), or the database is skipping to Sync after an error. Holding it would
   * ask a reviewer for an approval that the database then spends on a 25P02.
   * COMMIT, ROLLBACK and ROLLBACK TO run in a failed block: `sql.transaction` is held.
   */
  #cannotRun(exchange: Exchange): boolean {
    const core = this.#core;
    if (exchange.operation === 'sql.transaction') return false;
    if (core.skippingToSync) return true;
    return core.transactionStatus === 'E' && !core.pending.some((p) => p.kind === 'query' || p.kind === 'execute' || p.kind === 'begin' || p.kind === 'end');
  }

  /** Records a refusal, then answers it in order (deny). */
  async refuse(exchange: Exchange, decision: Decision | undefined, request: RecordedRequest, error: GatehouseError, simple: boolean): Promise<void> {
    await this.#core.recording.refuse(exchange, decision, request, error);
    return this.deny(error, simple);
  }

  /**
   * Refuses a statement after the database failed the gateway's own message for it inside
   * the client's open batch (the description of a COPY: copy-out.ts): the database skips
   * to the client's Sync already, and owes nothing before it. The refusal is recorded,
   * then answered at once, and the client's messages until its Sync are skipped.
   */
  async refuseInFailedBatch(exchange: Exchange, decision: Decision | undefined, request: RecordedRequest, error: GatehouseError): Promise<void> {
    const core = this.#core;
    await core.recording.refuse(exchange, decision, request, error);
    const answer = errorResponseFor(error);
    core.bytesOut += answer.length;
    core.toClient.push(answer);
    core.toClient.flush();
    core.skippingToSync = true;
  }

  /**
   * Puts the refusal in the answer stream, in order: the database gets a Bind to a
   * statement that does not exist (and a Sync for a simple Query), fails it, and its
   * ErrorResponse is replaced by ours.
   */
  deny(error: GatehouseError, simple: boolean): Promise<void> | undefined {
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
