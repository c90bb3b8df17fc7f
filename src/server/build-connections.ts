import type { AgentHub } from '../agent/agent-hub.js';
import type { GatehouseConfig } from '../config/index.js';
import { credentialHeader } from '../config/fields.js';
import { viaAgent } from '../config/agents-schema.js';
import { createAgentForwarder, localForwarderFor } from '../forward/index.js';
import { credentialEchoForms, targetQuery, type HttpConnection } from '../protocols/http/index.js';

/**
 * One HttpConnection (with its own keep-alive pool) per configured connection; a
 * connection with `via: agent:<name>` forwards through the agent hub instead.
 */
export function buildHttpConnections(config: GatehouseConfig, agentHub?: AgentHub): Map<string, HttpConnection> {
  const connections = new Map<string, HttpConnection>();
  for (const c of config.connections) {
    if (c.type === 'postgres') continue; // its own listener: build-postgres-connections.ts
    const credential = credentialHeader(c.credential);
    const agent = viaAgent(c.via);
    // The agent's config holds the target (and its base path); the gateway sends paths as the caller wrote them.
    const target = agent === undefined ? new URL(c.target) : undefined;
    if (agent !== undefined && agentHub === undefined) throw new Error(`connection ${c.name} is routed via agent:${agent} but the agent endpoint is not running`);
    connections.set(c.name, {
      name: c.name,
      type: c.type,
      basePath: target ? target.pathname.replace(/\/+$/, '') : '',
      baseQuery: target ? targetQuery(target) : '',
      maxRequestBody: c.limits.maxRequestBody ?? config.gateway.maxRequestBody,
      maxResponseBody: c.limits.maxResponseBody ?? config.gateway.maxResponseBody,
      // The credential the gateway injects (not one an agent holds): looked for in every answer.
      credentialEcho: credentialEchoForms(c.credential),
      masking: c.masking,
      identityAssertion: c.identityAssertion ? { header: c.identityAssertion.header.toLowerCase(), ttlMs: c.identityAssertion.ttl } : undefined,
      forwarder: target
        ? localForwarderFor(c, target.origin, credential)
        : createAgentForwarder(agentHub!, { connection: c.name, agent: agent!, credential, headersTimeoutMs: c.timeouts.headers }),
    });
  }
  return connections;
}
