// Agent forwarder: the connection's target lives where only an egress-only agent can
// reach it, so the exchange is handed to the agent hub, which carries it over that
// agent's HTTP/2 tunnel. The target credential, when the gateway holds one, travels in
// the exchange frame inside the TLS tunnel; the caller's credential never does (the
// data plane has stripped it from the headers before any forwarder sees them).

import type { AgentHub } from '../agent/agent-hub.js';
import type { ForwardRequest, ForwardResponse, Forwarder } from './forwarder.js';

export interface AgentTarget {
  readonly connection: string;
  readonly agent: string;
  readonly credential?: { readonly header: string; readonly value: string } | undefined;
  readonly headersTimeoutMs: number;
}

export function createAgentForwarder(hub: AgentHub, target: AgentTarget): Forwarder {
  const credential = target.credential ? { header: target.credential.header.toLowerCase(), value: target.credential.value } : undefined;
  return {
    forward(request: ForwardRequest): Promise<ForwardResponse> {
      return hub.forward({ agent: target.agent, connection: target.connection, request, credential, headersTimeoutMs: target.headersTimeoutMs });
    },
    // The hub is shared by every agent connection and closed by the gateway.
    close: async () => undefined,
  };
}
