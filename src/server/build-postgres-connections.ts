import { createSecureContext } from 'node:tls';
import type { GatehouseConfig } from '../config/index.js';
import type { PostgresConnection } from '../protocols/postgres/index.js';

type PostgresConfig = Extract<GatehouseConfig['connections'][number], { type: 'postgres' }>;

export interface PostgresBuildOptions {
  /** Entity-detection masking for text values (from the masking stage, when present). */
  readonly maskText?: ((value: string) => string) | undefined;
}

/** One PostgresConnection per `type: postgres` connection. */
export function buildPostgresConnections(config: GatehouseConfig, options: PostgresBuildOptions = {}): PostgresConnection[] {
  return config.connections.filter((c): c is PostgresConfig => c.type === 'postgres').map((c) => {
    const target = new URL(c.target);
    const certificate = c.serverTls ?? config.gateway.tls;
    return {
      name: c.name,
      listen: c.listen,
      serverTls: certificate ? createSecureContext({ cert: certificate.cert, key: certificate.key }) : undefined,
      allowPlaintext: c.allowPlaintext,
      target: {
        host: target.hostname.replace(/^\[|\]$/g, ''),
        port: target.port === '' ? 5432 : Number(target.port),
        database: decodeURIComponent(target.pathname.slice(1)),
        user: c.credential.user,
        password: c.credential.secret,
        tls: { mode: c.tls.mode, ca: c.tls.ca },
        connectTimeoutMs: c.timeouts.connect,
        maxMessageBytes: 1024 * 1024 * 1024,
      },
      maxRows: c.limits.maxRows,
      statementTimeoutMs: c.limits.statementTimeout,
      maxMessageBytes: c.limits.maxMessageBytes,
      masking: { columns: new Map(Object.entries(c.masking.columns).map(([k, v]) => [k.toLowerCase(), v])), maskText: options.maskText },
      loginTimeoutMs: c.timeouts.login,
    };
  });
}
