// Deciding one statement: its exchange (operation `sql.<class>`, the SQL facts), the
// policy decision, and what the gateway itself cannot let through. Enforces:
// - each statement is decided on its own facts (in a Parse holding several, each one
//   under the Parse's exchange id);
// - a statement that reads a table's rows besides its own class (RETURNING, COPY TO,
//   INSERT … SELECT, CREATE VIEW …) is decided as `sql.select` of them too, where a
//   rule's deny or approval holds (a rule denying selects of salaries is not bypassed by
//   `update salaries … returning amount`), and a default deny does not;
// - a Gatehouse token scoped to operations runs only statements of those operations
//   (token_scope_denied, 42501; the login checked its connection);
// - `require_approval` passes only when approvals are configured (the session holds
//   it); otherwise it is refused like a deny (fail closed);
// - SQL the gateway cannot inspect safely (a non-UTF8 client encoding) is refused;
// - a change to how the gateway's own upstream role logs in (its password — psql's
//   `\password` —, NOLOGIN, VALID UNTIL, CONNECTION LIMIT, a rename) is refused, 42501
//   with rule `gateway-credential`, whatever policy says: it would lock every caller out;
//   so are its session defaults (ALTER ROLE … SET / RESET, ALTER ROLE ALL … SET, ALTER
//   DATABASE <the target's> SET: role-login.ts), which change every caller's sessions;
// - COPY … TO STDOUT on a connection with column masking rules runs only where the
//   session describes and masks it (a Query, or an Execute inside its batch: copy-out.ts);
// - on such a connection, reading the catalog's column statistics (pg_stats: samples
//   of every analysed column's values) is refused, and so is code it cannot trace
//   that a client would create or run there (a DO block, a
//   function or procedure body: `do $$ … insert into archive select email … $$`), and
//   so is SQL given as text to a built-in (query_to_xml, ts_stat) or to dblink, and
//   reading or writing the server's files (a table's data file holds its rows), or
//   running a program there, with a message naming the form (`COPY … TO PROGRAM runs a
//   shell command on the database server …`; checked before COPY … TO STDOUT);
// - a statement that would keep a masked column's value under a name no rule covers,
//   or by position (a view, CREATE TABLE AS, SELECT INTO, a cursor, INSERT, UPDATE,
//   MERGE, a rule, a generated column, RENAME COLUMN: derive-columns.ts) is refused:
//   read back later, the value would leave unmasked;
// - a decision with masking profiles to apply (obligations.mask) runs with them added
//   to the connection's (connection.ts maskingFor); where the connection cannot apply
//   profiles (no masking engine) it is refused.

import { GatehouseError } from '../../errors/index.js';
import { newId, type Decision, type Exchange, type Identity, type RequestFacts } from '../../exchange/index.js';
import { checkTokenScope } from '../../identity/index.js';
import { enforceDecision, type DecisionPolicy } from '../../policy/index.js';
import type { PostgresConnection } from './connection.js';
import { unmaskableStore } from './mask-rows.js';
import type { RoleLoginChange } from './role-login.js';
import type { CopyServerForm, StatementFacts } from './statement-facts.js';
import { strictestClass } from './statement-classes.js';
import { isColumnStatistics } from './statement-tables.js';
import type { SessionTables } from './table-catalog.js';

export interface StatementContext {
  readonly connection: PostgresConnection;
  readonly policy: DecisionPolicy;
  readonly identity: Identity;
  readonly sessionId: string;
  readonly client: Exchange['client'];
  /** Approvals are configured: `require_approval` is held, not refused. */
  readonly approvals: boolean;
  /** The session's decisions, reused where the policy allows it. */
  readonly decisions?: SessionDecisions | undefined;
  /** The names each table name may stand for in the session's database (table-catalog.ts). */
  readonly tables?: SessionTables | undefined;
}

/**
 * A session's decisions by operation. Within a session the connection and the identity
 * do not change, and a statement has no model, method or path: when the policy says its
 * rules on the connection read nothing else (Policy.cacheableOn: no time window, no
 * condition on facts), the decision for an operation is the same for every statement
 * until the policy changes, so it is made once per policy version.
 */
export class SessionDecisions {
  #version: string | undefined;
  #cacheable = false;
  readonly #byOperation = new Map<string, Decision>();

  decide(policy: DecisionPolicy, connection: string, exchange: Exchange): Decision {
    const version = policy.version;
    if (version !== this.#version) {
      this.#version = version;
      this.#byOperation.clear();
      this.#cacheable = policy.cacheableOn?.(connection) ?? false;
    }
    if (!this.#cacheable) return policy.decide(exchange);
    let decision = this.#byOperation.get(exchange.operation);
    if (decision === undefined) {
      decision = policy.decide(exchange);
      // Operations are `sql.<class>`, a small set; the bound is a safeguard.
      if (this.#byOperation.size < 256) this.#byOperation.set(exchange.operation, decision);
    }
    return decision;
  }
}

export type Checked = { decision: Decision; error?: undefined } | { decision: Decision | undefined; error: GatehouseError };

/** What every exchange of one statement text shares: its operation and its facts. */
export interface StatementShape {
  readonly operation: string;
  readonly facts: RequestFacts;
  /**
   * Names among its tables that are no relation to look up: CTE names (StatementFacts.ctes),
   * and those a look-up found absent when its Parse was decided (table-lookup.ts).
   */
  readonly unlisted?: readonly string[] | undefined;
}

/** `absent`: names a look-up found no relation of as the statement was parsed (StatementShape.unlisted). */
export function statementShape(facts: readonly StatementFacts[], text: string, operation?: string, absent?: readonly string[]): StatementShape {
  const one = facts.length === 1 ? facts[0]! : undefined;
  const classes = one ? [one.class] : facts.map((f) => f.class);
  const sql = one
    ? { classes, tables: one.tables, text, risky: one.risky }
    : { classes, tables: [...new Set(facts.flatMap((f) => f.tables))], text, risky: [...new Set(facts.flatMap((f) => f.risky))] };
  const ctes = one ? one.ctes : facts.some((f) => f.ctes) ? facts.flatMap((f) => f.ctes ?? []) : undefined;
  const unlisted = absent ? [...(ctes ?? []), ...absent] : ctes;
  return { operation: operation ?? operationOf(one ? one.class : strictestClass(classes)), facts: { stream: false, text, sql }, ...(unlisted ? { unlisted } : {}) };
}

// `sql.<class>` for each class, made once: a string built per statement would be
// flattened and hashed again by every Map that reads it (decisions, metrics).
const operations = new Map<string, string>();

function operationOf(cls: string): string {
  let operation = operations.get(cls);
  if (operation === undefined) {
    operation = `sql.${cls}`;
    if (operations.size < 1000) operations.set(cls, operation);
  }
  return operation;
}

/** The exchange of a statement (or of a Parse holding several), as policy and the recording see it. */
export function statementExchange(ctx: StatementContext, facts: readonly StatementFacts[], text: string, operation?: string, base?: Exchange): Exchange {
  return exchangeOf(ctx, statementShape(facts, text, operation), base);
}

/** A new exchange (id, start) of a statement whose shape is known (a prepared statement's, at each Execute). */
export function exchangeOf(ctx: StatementContext, shape: StatementShape, base?: Exchange): Exchange {
  const startedAt = Date.now();
  return {
    id: base?.id ?? newId('ex', startedAt),
    sessionId: ctx.sessionId,
    protocol: 'postgres',
    connection: ctx.connection.name,
    operation: shape.operation,
    startedAt: base?.startedAt ?? startedAt,
    client: ctx.client,
    facts: withTablesMayBe(shape.facts, ctx.tables, shape.unlisted),
    identity: ctx.identity,
  };
}

/**
 * The facts with the names their tables may stand for (a partition's ancestors, `orders`
 * for `public.orders`: SqlFacts.tablesMayBe). A name the session could not look up
 * (table-lookup.ts) may be a partition of any table: the statement's tables are then
 * unknown (risky `unknown-tables`, `uncatalogued-table`), which a table rule fails closed on.
 */
function withTablesMayBe(facts: RequestFacts, tables: SessionTables | undefined, unlisted: readonly string[] | undefined): RequestFacts {
  const sql = facts.sql;
  if (!sql || !tables) return facts;
  const more = tables.mayBe(sql.tables);
  const unresolved = tables.unresolved(sql.tables, unlisted);
  if (!more && !unresolved) return facts;
  return { ...facts, sql: { ...sql, ...(more ? { tablesMayBe: more } : {}), ...(unresolved ? { risky: [...new Set([...sql.risky, 'unknown-tables', 'uncatalogued-table'])] } : {}) } };
}

/**
 * Policy for one statement of `exchange` (facts undefined: a portal whose statement was never seen).
 * `copyMasked`: a COPY … TO STDOUT in it will be described and masked column by column (copy-out.ts).
 */
export function decideStatement(ctx: StatementContext, exchange: Exchange, facts: StatementFacts | undefined, copyMasked = false): Checked {
  // A partition or child it makes is known as its parent's from now on (refused too: stricter).
  for (const [child, parent] of facts?.inherits ?? []) ctx.tables?.learn(child, parent);
  // A bare name may stand for another schema's table from now on: looked up again.
  if (facts?.searchPath) ctx.tables?.searchPathChanged();
  else if (facts?.revertsSettings) ctx.tables?.savepointRolledBack();
  // Code that later statements may run unnamed (a trigger's function, a view or default calling set_config): from now on each statement may change search_path.
  if (facts && (facts.risky.includes('routine-body') || (facts.searchPath && facts.class === 'ddl'))) ctx.tables?.madePathCode();
  if (facts?.unsupported) return { decision: undefined, error: new GatehouseError('sql_not_supported', { message: `Not supported through the gateway: ${facts.unsupported}.` }) };
  const ownRole = facts?.roleLogin && gatewayRoleChange(ctx.connection, facts.roleLogin);
  if (ownRole) return { decision: undefined, error: ownRole };
  const single = facts && exchange.facts.sql && exchange.facts.sql.classes.length > 1 ? statementExchange(ctx, [facts], facts.text, undefined, exchange) : exchange;
  let decision: Decision | undefined;
  try {
    // A scoped Gatehouse token: this statement's operation must be among its operations.
    if (single.identity?.scope) checkTokenScope(single);
    decision = ctx.decisions ? ctx.decisions.decide(ctx.policy, ctx.connection.name, single) : ctx.policy.decide(single);
    if (facts?.reads && decision.effect !== 'deny') decision = withReads(ctx, single, facts, facts.reads, decision);
    if (decision.effect !== 'allow') enforceDecision(decision, { approvals: ctx.approvals });
  } catch (error) {
    // A refusal keeps its decision: the record names the rule, the reason and the policy version.
    return { decision, error: error instanceof GatehouseError ? error : new GatehouseError('internal_error', { detail: String(error) }) };
  }
  // A decision's masking profiles that cannot be applied: fail closed.
  const profiles = decision.obligations?.mask;
  if (profiles && profiles.length > 0 && !ctx.connection.maskingWith) {
    return {
      decision,
      error: new GatehouseError('sql_not_supported', {
        message: `The policy asks to mask the answer with masking profile ${profiles.join(', ')} (obligations.mask), which this PostgreSQL connection cannot apply, so the statement was not run.`,
      }),
    };
  }
  const columnRules = ctx.connection.masking.columns.size > 0;
  // A file on the database server can hold any table's rows (its data file, read with
  // pg_read_binary_file(pg_relation_filepath('users'))), and a program run by COPY can
  // read anything; a value written to a file is read back the same way. Checked before
  // COPY TO STDOUT, so that COPY … TO PROGRAM or TO a file is refused for what it is.
  if (columnRules && facts?.risky.some((r) => r === 'server-file' || r === 'copy-server-file')) {
    return { decision, error: new GatehouseError('sql_not_supported', { message: serverFilesRefused(facts.copyServer) }) };
  }
  if (facts?.copyOut && !copyMasked && columnRules) {
    return {
      decision,
      error: new GatehouseError('sql_not_supported', {
        message: 'COPY … TO STDOUT on a connection with column masking rules is masked column by column, but this one would not be described first; it was not run.',
      }),
    };
  }
  if (columnRules && facts?.risky.some((r) => r === 'anonymous-code-block' || r === 'routine-body')) {
    return {
      decision,
      error: new GatehouseError('sql_not_supported', {
        message: 'The statement runs code the gateway cannot trace (a DO block, or the body of a function or procedure), which could copy masked columns (masking.columns) where they are read unmasked; it was not run. Run it on a connection without column masking.',
      }),
    };
  }
  // SQL in a string (query_to_xml('select set_config(''application_name'', email, false)
  // from users', …), ts_stat, dblink_exec) runs statements the gateway never inspects:
  // what they keep or create (a setting, a lock, a view renaming email) is read unmasked.
  if (columnRules && facts?.risky.some((r) => r === 'sql-in-text' || r === 'remote-server')) {
    return {
      decision,
      error: new GatehouseError('sql_not_supported', {
        message: 'The statement runs SQL given as text (query_to_xml, table_to_xml, ts_stat, dblink …), which the gateway cannot trace and which could keep masked columns (masking.columns) where they are read unmasked; it was not run. Run it on a connection without column masking.',
      }),
    };
  }
  const statistics = columnRules ? facts?.tables.find(isColumnStatistics) : undefined;
  if (statistics) {
    return { decision, error: new GatehouseError('sql_not_supported', { message: `The statement reads ${statistics}, whose column statistics (most common values, histogram bounds) hold values of masked columns (masking.columns); it was not run.` }) };
  }
  const stored = facts?.derived?.stores && unmaskableStore(facts.derived, ctx.connection.masking);
  if (stored) {
    return { decision, error: new GatehouseError('sql_not_supported', { message: `The statement would keep values of masked column "${stored.rule}" (masking.columns) as ${stored.target}, where they could later be read unmasked; it was not run.` }) };
  }
  return { decision };
}

/**
 * A statement that reads rows of tables into its answer or into something kept (RETURNING,
 * COPY TO, INSERT … SELECT, CREATE VIEW …: StatementFacts.reads) is also a `sql.select` of
 * them: a rule denying (or holding for approval) `sql.select` of `salaries` holds for
 * `update salaries … returning amount` and `create view v as select * from salaries`. Only
 * a rule's deny or approval counts: the statement needs no allow of `sql.select` of its
 * own (an `INSERT … RETURNING id` runs where inserts are allowed).
 */
function withReads(ctx: StatementContext, exchange: Exchange, facts: StatementFacts, reads: readonly string[], decision: Decision): Decision {
  const asSelect = statementExchange(ctx, [{ ...facts, class: 'select', tables: reads }], facts.text, undefined, exchange);
  const read = ctx.decisions ? ctx.decisions.decide(ctx.policy, ctx.connection.name, asSelect) : ctx.policy.decide(asSelect);
  if (read.effect === 'deny') return read.reason === 'no-rule-allows' ? decision : read;
  return read.effect === 'require_approval' && decision.effect === 'allow' ? read : decision;
}

// Each form of COPY on the server says what it does there, so the user knows why it is refused.
const copyServerDoes: Readonly<Record<CopyServerForm, string>> = {
  'to-program': 'COPY … TO PROGRAM runs a shell command on the database server, which is handed the rows unmasked and can read any table',
  'from-program': 'COPY … FROM PROGRAM runs a shell command on the database server, which can read any table',
  'to-file': 'COPY … TO a file writes the rows unmasked to a file on the database server, where they can be read back',
  'from-file': 'COPY … FROM a file reads a file on the database server, which can be any table\'s data file',
};

function serverFilesRefused(form: CopyServerForm | undefined): string {
  const does = form ? copyServerDoes[form] : 'The statement reads or writes files on the database server (pg_read_file, pg_read_binary_file, lo_import, lo_export …), which can hold any table\'s rows';
  return `${does}, masked columns (masking.columns) included; it was not run. Run it on a connection without column masking.`;
}

/**
 * The statement changes how the role the gateway logs in as upstream logs in (or the
 * session's own role, which is that role unless SET ROLE changed it: refused alike).
 */
function gatewayRoleChange(connection: PostgresConnection, change: RoleLoginChange): GatehouseError | undefined {
  const upstream = connection.target.user;
  if (change.database !== undefined && change.database !== connection.target.database) return undefined;
  if (!change.everyRole && change.role !== undefined && change.role !== upstream) return undefined;
  const whose = change.everyRole ? `every role${change.database ? ` in database "${change.database}"` : ''}, among them "${upstream}"` : `role "${change.role ?? upstream}"`;
  const instead = change.settings
    ? "Change that role's or database's settings outside the gateway."
    : "Change that role's credential outside the gateway, then update the connection's credential.";
  return new GatehouseError('access_denied', {
    rule: 'gateway-credential',
    message: `The statement changes ${change.change} of ${whose}, which this gateway logs in to the database as for every caller of connection "${connection.name}"; it was not run. ${instead}`,
  });
}

export function unparseable(detail: string): GatehouseError {
  return new GatehouseError('sql_unparseable', { message: `The SQL could not be parsed, so it was not forwarded: ${detail}.`, detail });
}
