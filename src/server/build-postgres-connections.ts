import { createSecureContext } from 'node:tls';
import type { AgentHub } from '../agent/agent-hub.js';
import { viaAgent } from '../config/agents-schema.js';
import type { GatehouseConfig } from '../config/index.js';
import { maskJsonText, type MaskPlanner } from '../mask/index.js';
import { entityMasking, type MaskingRules, type PostgresConnection } from '../protocols/postgres/index.js';

type PostgresConfig = Extract<GatehouseConfig['connections'][number], { type: 'postgres' }>;
type UpstreamTarget = PostgresConnection['target'];

export interface PostgresBuildOptions {
  /** The masking engine: connections' and decisions' masking profiles; without it a statement asking for profiles is refused. */
  readonly planner?: MaskPlanner | undefined;
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
      ...postgresMasking(c, options.planner),
      loginTimeoutMs: c.timeouts.login,
    };
  });
}

/** The connection's masking rules, and with a planner, the same with a decision's profiles added (cached per set). */
export function postgresMasking(c: Pick<PostgresConfig, 'name' | 'masking'>, planner: MaskPlanner | undefined): Pick<PostgresConnection, 'masking' | 'maskingWith'> {
  const columns: MaskingRules['columns'] = new Map(Object.entries(c.masking.columns).map(([k, v]) => [k.toLowerCase(), v]));
  const rules = (profiles: readonly string[]): MaskingRules => {
    const answers = planner && profiles.length > 0 ? planner.plan(profiles, 'response') : undefined;
    const requests = planner && profiles.length > 0 ? planner.plan(profiles, 'request') : undefined;
    return { columns, entities: answers && entityMasking(answers), recorded: requests && ((body, counts) => maskJsonText(body, requests, counts)) };
  };
  const base = c.masking.profiles;
  if (base.length > 0 && !planner) throw new Error(`connection ${c.name} names masking profiles but the masking engine is not running`);
  if (!planner) return { masking: rules([]), maskingWith: undefined };
  const withExtra = new Map<string, MaskingRules>();
  return {
    masking: rules(base),
    maskingWith(extra) {
      const names = [...new Set([...base, ...extra])].sort();
      const key = names.join(',');
      let found = withExtra.get(key);
      // Profile sets come from the policy's rules: a handful per connection.
      if (!found) withExtra.set(key, (found = rules(names)));
      return found;
    },
  };
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
