// Builds the Exchange a PostgreSQL connection would decide for one statement, without a
// socket: for policy dry runs (`gatehouse policy check`, `POST /api/policy/check`). The
// operation and the SQL facts come from the same inspection as live statements, so a
// dry run decides as the listener would.

import { GatehouseError } from '../../errors/index.js';
import type { Exchange, IdentityKind } from '../../exchange/index.js';
import { statementShape } from './decide-statement.js';
import { inspectSql } from './inspect-sql.js';

export interface StatementDryRunInput {
  readonly subject: string;
  readonly groups: readonly string[];
  readonly kind: IdentityKind;
  readonly connection: string;
  /** The statement, inspected as the listener would: its operation and facts. */
  readonly sql?: string | undefined;
  /** Without `sql`: the operation (`sql.select` …), decided on names alone. */
  readonly operation?: string | undefined;
  /** When the statement happens (time windows); default now. */
  readonly at?: number | undefined;
}

/** Throws `invalid_request_body` without SQL or operation, or for several statements; `sql_unparseable` as the listener would. */
export async function dryRunStatement(input: StatementDryRunInput): Promise<Exchange> {
  let shape: { operation: string; facts: Exchange['facts'] };
  if (input.sql === undefined) {
    if (input.operation === undefined) {
      throw new GatehouseError('invalid_request_body', { message: 'A PostgreSQL connection needs the statement (the SQL) or an operation such as sql.select.' });
    }
    shape = { operation: input.operation, facts: { stream: false } };
  } else {
    const inspection = await inspectSql(input.sql);
    if (!inspection.ok) throw new GatehouseError('sql_unparseable', { message: `The SQL could not be parsed, so it would not be forwarded: ${inspection.error}.` });
    if (inspection.statements.length !== 1) {
      throw new GatehouseError('invalid_request_body', { message: `The SQL holds ${inspection.statements.length} statements; each is decided on its own: check one at a time.` });
    }
    const facts = inspection.statements[0]!;
    shape = statementShape([facts], facts.text);
  }
  return {
    id: 'dry-run',
    sessionId: 'dry-run',
    protocol: 'postgres',
    connection: input.connection,
    operation: shape.operation,
    startedAt: input.at ?? Date.now(),
    client: { address: undefined },
    facts: shape.facts,
    identity: { subject: input.subject, kind: input.kind, groups: input.groups, method: 'api_key', credentialId: 'dry-run' },
  };
}
