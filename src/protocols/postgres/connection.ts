import type { SecureContext } from 'node:tls';
import type { Decision } from '../../exchange/index.js';
import type { UpstreamTarget } from './forward.js';
import type { MaskingRules } from './mask-rows.js';

/** A configured PostgreSQL connection, as its listener needs it at run time. */
export interface PostgresConnection {
  readonly name: string;
  readonly listen: { readonly host: string; readonly port: number };
  /** The gateway's certificate, offered when a client sends SSLRequest; none: answer 'N'. */
  readonly serverTls: SecureContext | undefined;
  /** Accept a session that did not negotiate TLS (e.g. on loopback). */
  readonly allowPlaintext: boolean;
  readonly target: UpstreamTarget;
  /** Most DataRows (or COPY rows) one statement may return; undefined: no limit. */
  readonly maxRows: number | undefined;
  /** Statements running longer are cancelled upstream; undefined: no limit. */
  readonly statementTimeoutMs: number | undefined;
  /** Largest client message accepted. */
  readonly maxMessageBytes: number;
  readonly masking: MaskingRules;
  /**
   * The connection's masking with more masking profiles (a decision's obligations.mask);
   * undefined: this connection cannot apply profiles (no masking engine), so such a
   * statement is refused.
   */
  readonly maskingWith?: ((profiles: readonly string[]) => MaskingRules) | undefined;
  /** Login (TLS, password, upstream connection) must finish within this. */
  readonly loginTimeoutMs: number;
}

/** The masking of a statement under `decision`: the connection's, with the profiles the decision adds. */
export function maskingFor(connection: PostgresConnection, decision: Decision | undefined): MaskingRules {
  const extra = decision?.obligations?.mask;
  return extra && extra.length > 0 && connection.maskingWith ? connection.maskingWith(extra) : connection.masking;
}

/** The database a client may name in its StartupMessage: the target's, or the connection's name. */
export function databaseAllowed(connection: PostgresConnection, database: string): boolean {
  return database === connection.target.database || database === connection.name;
}
