// Stage: a scoped Gatehouse token reaches only what it was issued for.
// - connection not in the token's `connections` → 403 token_scope_denied;
// - operations listed (and not `*`) and this exchange's operation not among them → 403.
// Runs after inspection, when the operation is final; identities without a scope
// (API keys, IdP tokens) pass untouched, policy still decides for everyone. A
// PostgreSQL login checks the connection only (`connectionOnly`): its operations are
// its statements', each checked as it is decided.

import { redactPathCredentials } from '../../detect/index.js';
import { GatehouseError } from '../../errors/index.js';
import type { Exchange, Identity } from '../../exchange/index.js';

export function checkTokenScope(exchange: Exchange, options: { readonly connectionOnly?: boolean } = {}): void {
  const scope = exchange.identity?.scope;
  if (!scope) return;
  if (scope.connections.length === 0) {
    throw new GatehouseError('token_scope_denied', {
      message: `This is an admin login session, scoped to no connection; it cannot be used on "${exchange.connection}". Exchange an identity provider token or API key at POST /auth/token.`,
    });
  }
  if (!scope.connections.includes(exchange.connection)) {
    throw new GatehouseError('token_scope_denied', {
      message: `This token is scoped to connection(s) ${scope.connections.join(', ')}; it cannot be used on "${exchange.connection}".`,
    });
  }
  const operations = scope.operations;
  if (options.connectionOnly) return;
  if (operations && operations.length > 0 && !operations.includes('*') && !operations.includes(exchange.operation)) {
    throw new GatehouseError('token_scope_denied', {
      message: `This token is scoped to operation(s) ${operations.join(', ')}; it cannot be used for "${redactPathCredentials(exchange.operation)}".`,
    });
  }
}

/**
 * A just-in-time token (scoped to connections) reaches those connections and nothing
 * else: not the admin API, not a vote on a review, whoever it was issued to. Login
 * sessions (scoped to no connection) and unscoped credentials pass.
 */
export function isConnectionScoped(identity: Identity): boolean {
  return (identity.scope?.connections.length ?? 0) > 0;
}

/** Throws token_scope_denied for a token scoped to connections, saying `where` it cannot be used. */
export function refuseConnectionScoped(identity: Identity, where: string): void {
  const connections = identity.scope?.connections;
  if (connections && connections.length > 0) {
    throw new GatehouseError('token_scope_denied', { message: `This token is scoped to connection(s) ${connections.join(', ')}; it cannot be used ${where}.` });
  }
}
