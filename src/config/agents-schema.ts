// The `agents:` section: the gateway's agent endpoint, where egress-only agents dial in
// (HTTP/2 over TLS; see docs/agent.md). Built from the main schema's own field types
// so units, secrets and listen addresses read the same everywhere.

import { z } from 'zod';
import { timerDuration } from './fields.js';

export interface AgentsSchemaParts {
  readonly listen: z.ZodType<{ host: string; port: number }>;
  readonly listenerTls: z.ZodType<{ cert: string; key: string }>;
}

export function agentsSection({ listen, listenerTls }: AgentsSchemaParts) {
  return z.strictObject({
    listen,
    /** Always TLS: the tunnel carries target credentials and whole exchanges. */
    tls: listenerTls,
    /** How often both ends send a heartbeat; a link silent for 3 intervals is dropped. */
    heartbeat: timerDuration(100, 'a shorter heartbeat floods every tunnel with frames (and 0 drops every agent)').default(10_000),
    /** How long a request may wait for a free agent before `agent_unavailable`. */
    queueTimeout: timerDuration(0, 'a request may wait no time at all').default(30_000),
  });
}

/** `agent:<name>` in a connection's `via`. */
export const viaPattern = /^agent:([a-z0-9][a-z0-9_-]{0,62})$/;

/** The agent name a connection is routed through, or undefined for a local connection. */
export function viaAgent(via: string | undefined): string | undefined {
  return via === undefined ? undefined : viaPattern.exec(via)?.[1];
}
