// The agent hub's public surface: how it is started, what it is asked to carry
// (HTTP exchanges, raw byte streams), and the status it reports. The hub itself is
// agent-hub.ts (with agent-session.ts, agent-dispatch.ts and agent-exchange-stream.ts).

import type { Duplex } from 'node:stream';
import type { Identity } from '../exchange/index.js';
import type { ForwardRequest, ForwardResponse } from '../forward/forwarder.js';
import type { Logger } from '../observability/index.js';
import type { RecordAuthRefusal } from '../identity/auth-refusal.js';

export interface AgentHubOptions {
  readonly listen: { readonly host: string; readonly port: number };
  readonly tls: { readonly cert: string; readonly key: string };
  readonly heartbeatMs: number;
  readonly queueTimeoutMs: number;
  /** Verifies an agent's key (constant-time secret comparison happens there), revocations included. */
  /** `client`: the agent's address when it connects (failed keys are throttled per address); absent on a heartbeat's re-read. */
  readonly verify: (token: string, client?: string) => Promise<Identity>;
  /** Why an identity is revoked now, or undefined: dropRevoked() asks it of every connected agent. */
  readonly revoked?: ((identity: Identity) => string | undefined) | undefined;
  /** Chains a refused agent key (401, `auth.refused`) before it is answered. */
  readonly recordRefusal?: RecordAuthRefusal | undefined;
  /** Configured routes: connection name → agent name, for status. */
  readonly routes: ReadonlyMap<string, string>;
  readonly logger: Logger;
}

export interface AgentExchange {
  readonly agent: string;
  readonly connection: string;
  readonly request: ForwardRequest;
  readonly credential: { readonly header: string; readonly value: string } | undefined;
  readonly headersTimeoutMs: number;
}

/** A raw byte stream to a connection's target, through an agent serving it. */
export interface AgentStreamRequest {
  readonly agent: string;
  readonly connection: string;
  /** The target credential when the gateway holds it (PostgreSQL: role and password). */
  readonly credential?: { readonly user: string; readonly secret: string } | undefined;
  /** How long the agent has, once it took the stream, to accept it. */
  readonly acceptTimeoutMs: number;
  /**
   * A stream this hub opened earlier: the new one goes through the same agent session
   * (a CancelRequest for the backend behind it), even if that agent is draining or full.
   */
  readonly near?: Duplex | undefined;
}

export interface AgentSessionStatus {
  readonly session: string;
  readonly name: string;
  readonly subject: string;
  readonly keyId: string;
  readonly connections: readonly string[];
  readonly concurrency: number;
  readonly inFlight: number;
  /** The agent announced it is shutting down: it gets no new exchanges. */
  readonly draining: boolean;
  readonly remoteAddress: string | undefined;
  readonly version: string;
  readonly connectedAt: string;
  readonly lastHeartbeatAt: string;
}

export interface AgentHubStatus {
  readonly agents: readonly AgentSessionStatus[];
  readonly routes: readonly { readonly connection: string; readonly agent: string; readonly connectedAgents: number }[];
  readonly queued: number;
}

export interface AgentHub {
  readonly url: string;
  forward(exchange: AgentExchange): Promise<ForwardResponse>;
  /** Opens a raw byte stream to the target (rejects with agent_unavailable when no agent serves it). */
  openStream(request: AgentStreamRequest): Promise<Duplex>;
  status(): AgentHubStatus;
  /** Drops every connected agent whose key has been revoked since it connected (call on each revocation change); returns how many. */
  dropRevoked(): number;
  close(): Promise<void>;
}
