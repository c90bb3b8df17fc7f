// Tells a store that cannot be reached (PostgreSQL down, restarting, refusing or
// dropping connections) from a failing query, so callers answer 503 `store_unavailable`
// and not 500 `internal_error`, which means a bug. The node-postgres connection errors
// have no class of their own: they are recognised by errno code, SQLSTATE and message.

const networkCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE']);

// SQLSTATE (PostgreSQL Appendix A): class 08 connection exception; 57P01 admin_shutdown,
// 57P02 crash_shutdown, 57P03 cannot_connect_now; 53300 too_many_connections.
const unavailableStates = new Set(['57P01', '57P02', '57P03', '53300']);

// node-postgres (pg, pg-pool) messages for a connection lost, timed out or unusable.
const lostConnection = /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error and is not queryable|Connection terminated due to connection timeout)/;

/** True when `error` says the store could not be reached, rather than that a query failed. */
export function isStoreUnreachable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && (networkCodes.has(code) || unavailableStates.has(code) || /^08[0-9A-Z]{3}$/.test(code))) return true;
  if (lostConnection.test(error.message)) return true;
  return error instanceof AggregateError && error.errors.some(isStoreUnreachable);
}
