// Errors on a PostgreSQL connection are ErrorResponse messages with a SQLSTATE
// (PostgreSQL docs, Appendix A "Error Codes"). Each Gatehouse error code maps to one;
// a code without its own mapping falls back by HTTP status class, so a code added
// elsewhere still gets a sensible SQLSTATE.

import type { ErrorCode } from '../../errors/index.js';
import type { GatehouseError } from '../../errors/index.js';
import { errorResponse } from './codec.js';

const sqlstates: Partial<Record<ErrorCode, string>> = {
  unauthenticated: '28P01', // invalid_password
  invalid_credential: '28P01',
  credential_expired: '28P01',
  credential_revoked: '28P01',
  gateway_shutdown: '57P01',
  too_many_connections: '53300', // too_many_connections // admin_shutdown, as PostgreSQL's own shutdown
  user_mismatch: '28000', // invalid_authorization_specification
  tls_required: '28000',
  // Not 28P01: psql and drivers read that as a wrong password and prompt for another.
  auth_throttled: '28000',
  access_denied: '42501', // insufficient_privilege
  database_not_found: '3D000', // invalid_catalog_name
  protocol_violation: '08P01', // protocol_violation
  sql_unparseable: '42601', // syntax_error
  sql_not_supported: '0A000', // feature_not_supported
  row_limit_exceeded: '54000', // program_limit_exceeded
  too_many_statements: '54000',
  statement_timeout: '57014', // query_canceled
  approval_required: '57014', // not approved while held, or cancelled while held: not run
  approval_expired: '57014',
  approval_denied: '42501',
  transaction_aborted: '25P02', // in_failed_sql_transaction, as the database answers any statement there
  approval_invalid: '42501',
  upstream_unreachable: '08001', // sqlclient_unable_to_establish_sqlconnection
  upstream_failed: '08006', // connection_failure
  upstream_timeout: '08001',
  agent_unavailable: '08001', // no agent carries the connection (via: agent:<name>)
  agent_disconnected: '08006',
  recording_failed: '58000', // system_error
  store_unavailable: '57P03', // cannot_connect_now: the gateway's store is down, try again later
  internal_error: 'XX000', // internal_error
};

export function sqlstateOf(error: GatehouseError): string {
  const mapped = sqlstates[error.code];
  if (mapped) return mapped;
  if (error.status === 401) return '28P01';
  if (error.status === 403) return '42501';
  if (error.status < 500) return '08P01';
  if (error.status === 503) return '58000'; // a dependency of the gateway, not a bug (XX000)
  return 'XX000';
}

/** The ErrorResponse for a Gatehouse error; the rule that decided is named in the message. */
export function errorResponseFor(error: GatehouseError, severity: 'ERROR' | 'FATAL' = 'ERROR'): Buffer {
  const message = error.rule && !error.message.includes(error.rule) ? `${error.message} (rule: ${error.rule})` : error.message;
  const review = error.fields?.review_id;
  return errorResponse({ severity, code: sqlstateOf(error), message, detail: `gatehouse code: ${error.code}`, hint: review === undefined ? undefined : reviewHint(review, error.fields?.review_url) });
}

/**
 * The review a held statement waits on, or was refused on, for a program to read: the
 * hint (H) of the NoticeResponse that says it is held and of the ErrorResponse that
 * refuses it, `gatehouse review: <id>` then ` <url>` when there is one (docs/errors.md).
 */
export function reviewHint(id: string, url: string | undefined): string {
  return url ? `gatehouse review: ${id} ${url}` : `gatehouse review: ${id}`;
}
