// Parse ('P') and Execute ('E') on the client side of a PostgreSQL session (Bind,
// Describe, Close and Sync are forwarded as they come: client-messages.ts). Enforces:
// - a statement is decided at Parse, so a refused one never reaches the database even
//   as a plan, and again at Execute, with its parameters (an approval covers those
//   values);
// - an `execute p` parsed earlier runs only the p it was decided as;
// - a DECLARE parsed earlier makes the portal of its name the cursor's when it runs;
// - a COPY … TO STDOUT on a connection with column rules is refused at Parse when its
//   rows could not be masked (binary …), and described at Execute, after any approval,
//   inside its batch just before it runs (copy-out.ts), its rows masked by that.

import { GatehouseError } from '../../errors/index.js';
import type { Decision, Exchange, RecordedRequest } from '../../exchange/index.js';
import { bodyReader, type Frame } from './codec.js';
import { decideStatement, exchangeOf, statementExchange, unparseable } from './decide-statement.js';
import { statementDigest, statementPreview } from './hold-statement.js';
import { maskingFor } from './connection.js';
import { copyOutRefusal, planCopyOut } from './copy-out.js';
import { forSession, inspectSql, inspectSqlCached, type StatementFacts } from './inspect-sql.js';
import { maskedWriteRefusal } from './masked-writes.js';
import { continues, type ClientFlow, type ClientStatements, type Waiting } from './client-statements.js';
import type { SessionCore } from './session-core.js';
import type { PortalInfo, Run } from './session-state.js';
import { requestOf } from './statement-recording.js';
import { lookUpUnknownTables } from './table-lookup.js';

export class ExtendedMessages {
  readonly #core: SessionCore;
  readonly #s: ClientStatements;
  readonly #flow: ClientFlow;

  constructor(core: SessionCore, statements: ClientStatements, flow: ClientFlow) {
    this.#core = core;
    this.#s = statements;
    this.#flow = flow;
  }


  async onParse(frame: Frame): Promise<void> {
    const r = bodyReader(frame);
    const name = r.cstring();
    const text = r.cstring();
    const gate = this.#s.encodingGate(text);
    if (gate instanceof GatehouseError) return this.#s.refuse(statementExchange(this.#s.decide, [], text, 'sql.other'), undefined, requestOf('Parse', text, undefined), gate, false);
    if (gate) await gate;
    const inspection = await forSession(inspectSqlCached(text) ?? (await inspectSql(text)), text, this.#core.ctx.shadowedFunctions);
    const request = requestOf('Parse', text, undefined);
    if (!inspection.ok) return this.#s.refuse(statementExchange(this.#s.decide, [], text, 'sql.unparseable'), undefined, request, unparseable(inspection.error), false);
    // A table created elsewhere since the login (a new partition) is looked up before it is decided.
    const lookUp = lookUpUnknownTables(this.#core, this.#s.decide.tables, inspection.statements);
    if (lookUp) await lookUp;
    // Decided at Parse, so a refused statement never reaches the database even as a
    // plan; one that needs approval is prepared, and held at Execute.
    // Only a text that runs a prepared statement gets new facts (no array per Parse otherwise).
    const runs = inspection.statements.find((facts) => facts.executes !== undefined)?.executes;
    const statements = runs !== undefined ? inspection.statements.map((facts) => this.#s.asRun(facts)) : inspection.statements;
    const exchange = statementExchange(this.#s.decide, statements, text);
    const copy = this.#copyMasked(statements);
    for (const facts of statements) {
      const checked = this.#s.check(exchange, facts, copy);
      if (checked.error) return this.#s.refuse(exchange, checked.decision, request, checked.error, false);
      // A COPY … TO STDOUT whose rows could not be masked is refused before it is even prepared.
      const refused = copy ? await copyOutRefusal(text, maskingFor(this.#core.ctx.connection, checked.decision)) : undefined;
      if (refused) return this.#s.refuse(exchange, checked.decision, request, refused, false);
    }
    for (const facts of statements) this.#s.track(facts);
    // Names the look-up found no relation of stay so for its Executes (a CREATE TABLE's new table).
    const absent = this.#s.decide.tables?.absentAmong(statements.length === 1 ? statements[0]!.tables : statements.flatMap((f) => f.tables));
    const skipped = this.#s.extended.prepare(name, text, statements, runs !== undefined ? { name: runs, statement: this.#s.extended.statement(runs) } : undefined, absent);
    return this.#core.forward({ kind: 'parse', statement: this.#s.extended.statement(name), skipped }, frame);
  }

  onExecute(frame: Frame): Waiting {
    const portal = this.#s.extended.execute(frame);
    const statement = portal?.statement;
    // A portal over a statement made with SQL PREPARE has no Parse we saw: `sql.execute`.
    const exchange = statement ? exchangeOf(this.#s.decide, statement.shape) : statementExchange(this.#s.decide, [], '', 'sql.execute');
    const params = portal?.params;
    const request = statement ? requestOf('Execute', statement.text, params, statement.textJson) : requestOf('Execute', '', params);
    let decision: Decision | undefined;
    const facts = statement?.facts;
    const copy = facts !== undefined && this.#copyMasked(facts);
    // A DECLARE parsed earlier runs now: the portal it names is the cursor's from now on.
    for (const f of facts ?? []) if (f.cursor !== undefined) this.#s.extended.forgetPortal(f.cursor);
    // `execute p` parsed earlier was decided as the p of then: another p runs unseen.
    if (statement && !this.#s.executesAsParsed(statement)) {
      const error = new GatehouseError('sql_not_supported', { message: `The prepared statement "${statement.executes!.name}" this statement executes was prepared again (or deallocated) after it was parsed, so it was not run: parse it again.` });
      return this.#s.refuse(exchange, undefined, request, error, false);
    }
    if (!facts || facts.length === 0) {
      const checked = decideStatement(this.#s.decide, exchange, undefined);
      if (checked.error) return this.#s.refuse(exchange, checked.decision, request, checked.error, false);
      decision = checked.decision;
    } else {
      for (const f of facts) {
        const checked = this.#s.check(exchange, f, copy);
        if (checked.error) return this.#s.refuse(exchange, checked.decision, request, checked.error, false);
        // The decision kept is the one that asks for approval, if any does.
        if (decision?.effect !== 'require_approval') decision = checked.decision;
      }
    }
    // An ORM saving back every column it read would store the masks over the values.
    const { columns, entities } = this.#core.ctx.connection.masking;
    for (const f of columns.size > 0 || entities ? (facts ?? []) : []) {
      const refused = f.writes && maskedWriteRefusal(f.writes, params ?? [], columns, entities);
      if (refused) return this.#s.refuse(exchange, decision, request, refused, false);
    }
    // Code it runs unnamed may change search_path for the statements after it (table-catalog.ts).
    if (facts && facts.length > 0) for (const f of facts) this.#s.decide.tables?.ranStatement(f.class);
    else this.#s.decide.tables?.ranStatement('execute');
    if (decision!.effect === 'require_approval' || copy) return this.#executeHeldOrCopy(exchange, decision!, request, portal, frame, copy);
    return this.#openExecute(this.#s.newRun(exchange, decision!, undefined, false, deallocatesOf(facts)), request, portal, frame);
  }

  /** A COPY … TO STDOUT on a connection with column rules, described and masked column by column (copy-out.ts). */
  #copyMasked(facts: readonly StatementFacts[]): boolean {
    return this.#core.ctx.connection.masking.columns.size > 0 && facts.some((f) => f.copyOut === true);
  }

  /**
   * Held at Execute, not Parse: the approval covers the statement with these parameter
   * values. A COPY … TO STDOUT to mask is described after its approval, inside its batch,
   * just before it runs: what the batch did before it (an ALTER TABLE) is what it sends.
   */
  async #executeHeldOrCopy(exchange: Exchange, decision: Decision, request: RecordedRequest, portal: PortalInfo | undefined, frame: Frame, copy: boolean): Promise<unknown> {
    const statement = portal?.statement;
    const text = statement?.text ?? '';
    const held = decision.effect === 'require_approval';
    let giveBack: (() => Promise<void>) | undefined;
    if (held) {
      const outcome = await this.#s.hold(exchange, decision, statementDigest(text, portal?.approvalParams ?? portal?.params ?? []), statementPreview(this.#s.shownText(decision, text), this.#s.shownParams(decision, portal?.params)));
      if (outcome.error) return this.#s.refuse(outcome.exchange, decision, request, outcome.error, false);
      exchange = outcome.exchange;
      giveBack = outcome.giveBack;
    }
    const plan = copy && !this.#core.skippingToSync ? await planCopyOut(this.#core, text, maskingFor(this.#core.ctx.connection, decision), true) : undefined;
    if (plan && 'error' in plan) {
      if (plan.batchFailed === 'error') return this.#s.refuseInFailedBatch(exchange, decision, request, plan.error);
      // Skipped by the database (an earlier message of the batch failed): as never run (SessionCore.skipped).
      if (plan.batchFailed !== 'skipped') return this.#s.refuse(exchange, decision, request, plan.error, false);
    }
    const run = this.#s.newRun(exchange, decision, undefined, held, deallocatesOf(statement?.facts));
    run.giveBack = giveBack;
    if (plan && !('error' in plan)) run.copy = plan;
    return this.#openExecute(run, request, portal, frame);
  }

  /** Records the Execute's statement, then forwards it (or refuses it when recording failed). */
  #openExecute(run: Run, request: RecordedRequest, portal: PortalInfo | undefined, frame: Frame): typeof continues {
    this.#core.recording.open([run], [request]).then(
      () => this.#flow.recorded({ kind: 'execute', run, portal, plan: null }, frame),
      (error: unknown) => this.#flow.notRecorded([run], error, false),
    );
    return continues;
  }
}

/** The name a prepared DEALLOCATE (or DISCARD ALL: '*') forgets when it runs. */
function deallocatesOf(facts: readonly StatementFacts[] | undefined): string | undefined {
  return facts?.find((f) => f.deallocates !== undefined)?.deallocates;
}
