// Simple Query ('Q') on the client side of a PostgreSQL session: each statement of it
// inspected, decided, held or refused (client-statements.ts), recorded, then the Query
// forwarded. Enforces:
// - every statement is decided by policy before the database sees any of it; one
//   refused refuses the whole Query, which then never reaches the database;
// - at most `maxStatementsPerQuery` statements (docs/postgres.md, Limits on input);
// - a Query that writes and whose statements the gateway may stop (maxRows, masking)
//   runs, outside a transaction block, in a transaction of the gateway's, committed
//   only when the client is told every statement ran (#wrappedQuery);
// - a COPY … TO STDOUT on a connection with column rules runs alone in its Query,
//   described and masked column by column (#queryCopy, copy-out.ts); it is never
//   wrapped (COPY is not in a wrappable class).

import { GatehouseError } from '../../errors/index.js';
import type { Exchange, RecordedRequest } from '../../exchange/index.js';
import { queryMessage, type Frame } from './codec.js';
import { statementExchange, unparseable, type Checked } from './decide-statement.js';
import { maskingFor } from './connection.js';
import { planCopyOut } from './copy-out.js';
import { statementDigest } from './hold-statement.js';
import { forSession, inspectSql, inspectSqlCached, type SqlInspection, type StatementFacts } from './inspect-sql.js';
import { derivedMasks, maskingActive, type DerivedMasks } from './mask-rows.js';
import { continues, type ClientFlow, type ClientStatements, type Waiting } from './client-statements.js';
import type { SessionCore } from './session-core.js';
import type { Run } from './session-state.js';
import { requestOf } from './statement-recording.js';
import { lookUpUnknownTables } from './table-lookup.js';

/** Statements in one simple Query, each its own exchange (docs/postgres.md, Limits on input). */
export const maxStatementsPerQuery = 1000;

/** One statement of a Query, decided. */
interface QueryStep {
  readonly exchange: Exchange;
  readonly request: RecordedRequest;
  readonly checked: Checked;
  readonly derived: DerivedMasks | undefined;
  /** The statement as it runs (asRun). */
  readonly facts: StatementFacts;
  /** DEALLOCATE's name ('*': all), forgotten when the database has run it. */
  readonly deallocates: string | undefined;
  /** A COPY … TO STDOUT to describe and mask column by column (copy-out.ts). */
  readonly copy: boolean;
}

export class SimpleQueries {
  readonly #core: SessionCore;
  readonly #s: ClientStatements;
  readonly #flow: ClientFlow;

  constructor(core: SessionCore, statements: ClientStatements, flow: ClientFlow) {
    this.#core = core;
    this.#s = statements;
    this.#flow = flow;
  }


  onQuery(text: string, frame: Frame): Waiting {
    const gate = this.#s.encodingGate(text);
    if (gate instanceof GatehouseError) return this.#s.refuse(statementExchange(this.#s.decide, [], text, 'sql.other'), undefined, requestOf('Query', text, undefined), gate, true);
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
    if (!inspection.ok) return this.#s.refuse(statementExchange(this.#s.decide, [], text, 'sql.unparseable'), undefined, requestOf('Query', text, undefined), unparseable(inspection.error), true);
    // A table created elsewhere since the login (a new partition) is looked up before any is decided.
    this.#s.decide.tables?.forgetAbsent();
    const lookUp = lookUpUnknownTables(this.#core, this.#s.decide.tables, inspection.statements);
    if (lookUp) return lookUp.then(() => this.#decideQuery(inspection.statements, text, frame));
    return this.#decideQuery(inspection.statements, text, frame);
  }

  #decideQuery(statements: readonly StatementFacts[], text: string, frame: Frame): Waiting {
    // Each statement is an exchange, decided and recorded: a Query of 100 000 `select 1;`
    // (900 KB) made as many records and stalled the gateway for tens of seconds.
    if (statements.length > maxStatementsPerQuery) {
      const error = new GatehouseError('too_many_statements', { message: `A Query may hold at most ${maxStatementsPerQuery} statements through the gateway; this one holds ${statements.length}. Send them in several Queries.` });
      return this.#s.refuse(statementExchange(this.#s.decide, statements, text), undefined, requestOf('Query', text, undefined), error, true);
    }
    const runs: Run[] = [];
    const requests: RecordedRequest[] = [];
    const facts: StatementFacts[] = [];
    for (let i = 0; i < statements.length; i++) {
      const step = this.#queryStatement(statements[i]!);
      if (step.checked.error) return this.#s.refuse(step.exchange, step.checked.decision, step.request, step.checked.error, true);
      if (step.copy) return this.#queryCopy(statements, step, frame);
      if (step.checked.decision.effect === 'require_approval') return this.#queryHeld(statements, i, step, runs, requests, facts, frame);
      runs.push(this.#s.newRun(step.exchange, step.checked.decision, step.derived, false, step.deallocates));
      requests.push(step.request);
      facts.push(step.facts);
    }
    return this.#openQuery(runs, requests, facts, frame);
  }

  #queryStatement(parsed: StatementFacts): QueryStep {
    const facts = this.#s.asRun(parsed);
    const exchange = statementExchange(this.#s.decide, [facts], facts.text);
    const copy = facts.copyOut === true && this.#core.ctx.connection.masking.columns.size > 0;
    const checked = this.#s.check(exchange, facts, copy);
    if (!checked.error) {
      this.#s.track(facts);
      // Code it runs unnamed may change search_path for the statements after it (table-catalog.ts).
      this.#s.decide.tables?.ranStatement(facts.class);
    }
    return { exchange, request: requestOf('Query', facts.text, undefined), checked, derived: derivedMasks(facts.derived, this.#core.ctx.connection.masking), facts, deallocates: facts.deallocates, copy };
  }

  /** The rest of a Query from statement `i`, which needs approval: each such statement waits for its own review, in order. */
  async #queryHeld(statements: readonly StatementFacts[], i: number, step: QueryStep, runs: Run[], requests: RecordedRequest[], facts: StatementFacts[], frame: Frame): Promise<unknown> {
    for (;;) {
      let exchange = step.exchange;
      const decision = step.checked.decision!;
      let giveBack: (() => Promise<void>) | undefined;
      if (decision.effect === 'require_approval') {
        // Statements before it in this Query (a ROLLBACK TO) may end a failed block first.
        const held = await this.#s.hold(exchange, decision, statementDigest(statements[i]!.text), undefined, runs.length > 0);
        exchange = held.exchange;
        if (held.error) return this.#s.refuse(exchange, decision, step.request, held.error, true);
        giveBack = held.giveBack;
      }
      const run = this.#s.newRun(exchange, decision, step.derived, decision.effect === 'require_approval', step.deallocates);
      run.giveBack = giveBack;
      runs.push(run);
      requests.push(step.request);
      facts.push(step.facts);
      if (++i === statements.length) return this.#openQuery(runs, requests, facts, frame);
      step = this.#queryStatement(statements[i]!);
      if (step.checked.error) return this.#s.refuse(step.exchange, step.checked.decision, step.request, step.checked.error, true);
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
      return this.#s.refuse(exchange, decision, step.request, error, true);
    }
    const held = decision.effect === 'require_approval';
    if (held) {
      const outcome = await this.#s.hold(exchange, decision, statementDigest(step.facts.text));
      exchange = outcome.exchange;
      if (outcome.error) return this.#s.refuse(exchange, decision, step.request, outcome.error, true);
    }
    const copy = await planCopyOut(this.#core, step.facts.text, maskingFor(this.#core.ctx.connection, decision));
    if ('error' in copy) return this.#s.refuse(exchange, decision, step.request, copy.error, true);
    const run = this.#s.newRun(exchange, decision, step.derived, held, step.deallocates);
    run.copy = copy;
    return this.#openQuery([run], [step.request], [step.facts], frame);
  }

  /** Records the Query's statements, then forwards it (or refuses it when recording failed). */
  #openQuery(runs: Run[], requests: readonly RecordedRequest[], facts: readonly StatementFacts[], frame: Frame): typeof continues {
    const wrap = wrapsQuery(facts, runs, this.#core.ctx.connection.maxRows);
    this.#core.recording.open(runs, requests).then(
      () => (wrap ? void this.#wrappedQuery(runs, frame) : this.#flow.recorded({ kind: 'query', runs, index: 0, columns: undefined, plan: undefined }, frame)),
      (error: unknown) => this.#flow.notRecorded(runs, error, true),
    );
    return continues;
  }

  /**
   * A Query that writes, with statements the gateway may stop (wrapsQuery), outside a
   * transaction block: the database commits it when it ends, before the gateway has
   * seen its rows. So it runs between a BEGIN of the gateway's and a COMMIT, or a
   * ROLLBACK when the gateway stopped one of its statements (database-messages.ts): what
   * the database keeps is what the client is told. Nothing of the client's goes between
   * (its next message waits for the end), and the client sees neither.
   */
  async #wrappedQuery(runs: Run[], frame: Frame): Promise<void> {
    const core = this.#core;
    try {
      // The transaction status is known once the database owes nothing.
      if (core.pending.length > 0) {
        await core.flushToDatabase();
        await core.whenIdle();
      }
      const wrapped = !core.skippingToSync && core.transactionStatus === 'I';
      if (wrapped) {
        core.expect({ kind: 'begin' });
        await core.toUpstream(queryMessage('begin'));
      }
      await core.forward({ kind: 'query', runs, index: 0, columns: undefined, plan: undefined, wrapped }, frame);
      if (wrapped) {
        await core.flushToDatabase();
        await core.whenIdle();
      }
    } catch (error) {
      return this.#flow.failed(error);
    }
    this.#flow.pump();
  }
}

/** Statement classes that may run in the gateway's own transaction block. */
const wrappableClasses = new Set(['select', 'insert', 'update', 'delete', 'merge', 'explain', 'show']);
/** More of them in a Query of several statements: the database runs those in one transaction block already. */
const wrappableInQuery = new Set([...wrappableClasses, 'ddl', 'drop', 'truncate', 'set', 'lock', 'grant', 'notify']);

/**
 * Whether a Query is wrapped in a transaction of the gateway's (#wrappedQuery): the
 * gateway may stop a statement of it (maxRows, masking), one returns rows, one may write
 * (a rollback changes nothing for a Query that only reads), and every statement may run
 * in a transaction block (not BEGIN or COMMIT of its own, not COPY, whose data the client
 * sends while the Query runs, nor VACUUM and the like).
 */
function wrapsQuery(facts: readonly StatementFacts[], runs: readonly Run[], maxRows: number | undefined): boolean {
  if (maxRows === undefined && !runs.some((run) => maskingActive(run.masking))) return false;
  const allowed = facts.length > 1 ? wrappableInQuery : wrappableClasses;
  if (!facts.every((f) => allowed.has(f.class))) return false;
  const returnsRows = facts.some((f) => f.class === 'select' || f.class === 'show' || f.class === 'explain' || f.reads !== undefined);
  const writes = facts.some((f) => !(f.class === 'select' || f.class === 'show' || f.class === 'explain') || f.risky.includes('user-function'));
  return returnsRows && writes;
}
