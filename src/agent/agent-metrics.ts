// Agent metrics on the admin /metrics: agents connected per name, exchanges in flight
// per agent session, and requests waiting for a free agent. Read from the hub at
// scrape time; a session's series disappears when it disconnects.

import { Gauge, type Registry } from 'prom-client';
import type { AgentHub } from './agent-hub.js';

export function registerAgentMetrics(registry: Registry, hub: AgentHub): void {
  new Gauge({
    name: 'gatehouse_agents_connected',
    help: 'Agents connected to this gateway, by agent name (configured names show 0).',
    labelNames: ['agent'] as const,
    registers: [registry],
    collect() {
      this.reset();
      const status = hub.status();
      for (const route of status.routes) this.set({ agent: route.agent }, 0);
      for (const a of status.agents) this.inc({ agent: a.name });
    },
  });
  new Gauge({
    name: 'gatehouse_agent_exchanges_in_flight',
    help: 'Exchanges handed to an agent session and not yet answered.',
    labelNames: ['agent', 'session'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const a of hub.status().agents) this.set({ agent: a.name, session: a.session }, a.inFlight);
    },
  });
  new Gauge({
    name: 'gatehouse_agent_exchanges_queued',
    help: 'Requests waiting for an agent with room.',
    registers: [registry],
    collect() {
      this.set(hub.status().queued);
    },
  });
}
