// GET /api/agents: the agents connected to this gateway and, per connection routed
// through an agent, how many serve it. Agent status is live state of this process,
// not stored: with several gateways, ask each (agents connect to every gateway).

import type { AgentHub, AgentHubStatus } from '../agent/agent-hub.js';

export function agentsStatus(hub: AgentHub | undefined): AgentHubStatus & { readonly enabled: boolean } {
  if (!hub) return { enabled: false, agents: [], routes: [], queued: 0 };
  return { enabled: true, ...hub.status() };
}
