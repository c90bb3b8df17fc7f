import { createSecureContext } from 'node:tls';
import type { AgentHub } from '../agent/agent-hub.js';
import { viaAgent } from '../config/agents-schema.js';
import type { GatehouseConfig } from '../config/index.js';
import type { PostgresConnection } from '../protocols/postgres/index.js';

type PostgresConfig = Extract<GatehouseConfig['connections'][number], { type: 'postgres' }>;
type UpstreamTarget = PostgresConnection['target'];

export interface PostgresBuildOptions {
  /** Entity-detection masking for text values (from the masking stage, when present). */
  readonly maskText?: ((value: string) => string) | undefined;
  /** The agent endpoint, for connections routed `via: agent:<name>`. */
  readonly agentHub?: AgentHub | undefined;
}

/** One PostgresConnection per `type: postgres` connection. */
export function buildPostgresConnections(config: GatehouseConfig, options: PostgresBuildOptions = {}): PostgresConnection[] {
  return config.connections.filter((c): c is PostgresConfig => c.type === 'postgres').map((c) => {
    const certificate = c.serverTls ?? config.gateway.tls;
    return {
      name: c.name,
      listen: c.listen,
      serverTls: certificate ? createSecureContext({ cert: certificate.cert, key: certificate.key }) : undefined,
      allowPlaintext: c.allowPlaintext,
      target: viaAgent(c.via) === undefined ? directTarget(c) : agentTarget(c, viaAgent(c.via)!, options.agentHub),
      maxRows: c.limits.maxRows,
      statementTimeoutMs: c.limits.statementTimeout,
      maxMessageBytes: c.limits.maxMessageBytes,
      masking: { columns: new Map(Object.entries(c.masking.columns).map(([k, v]) => [k.toLowerCase(), v])), maskText: options.maskText },
      loginTimeoutMs: c.timeouts.login,
    };
  });
}

function directTarget(c: PostgresConfig): UpstreamTarget {
  const target = new URL(c.target);
  return {
    host: target.hostname.replace(/^\[|\]$/g, ''),
    port: target.port === '' ? 5432 : Number(target.port),
    database: decodeURIComponent(target.pathname.slice(1)),
    user: c.credential!.user, // required without via (schema.ts)
    password: c.credential!.secret,
    tls: { mode: c.tls.mode, ca: c.tls.ca },
    connectTimeoutMs: c.timeouts.connect,
    maxMessageBytes: 1024 * 1024 * 1024,
  };
}

/**
 * The database behind an agent: the byte stream is an exchange stream through it. The
 * agent logs in (with its own credential, or the one sent here) and hands back the
 * session after login, so the gateway itself never authenticates and holds no address:
 * clients name the connection as their database.
 */
function agentTarget(c: PostgresConfig, agent: string, hub: AgentHub | undefined): UpstreamTarget {
  if (!hub) throw new Error(`connection ${c.name} is routed via agent:${agent} but the agent endpoint is not running`);
  const credential = c.credential ? { user: c.credential.user, secret: c.credential.secret } : undefined;
  return {
    host: `agent:${agent}`,
    port: 0,
    database: c.name,
    user: c.credential?.user ?? '',
    // The agent logs in: an agent that asked the gateway to authenticate would get nothing of value.
    password: '',
    tls: { mode: 'disable' },
    connectTimeoutMs: c.timeouts.connect,
    maxMessageBytes: 1024 * 1024 * 1024,
    dial: (near) => hub.openStream({ agent, connection: c.name, credential, acceptTimeoutMs: c.timeouts.connect, near }),
  };
}
