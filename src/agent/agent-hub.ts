// The gateway's side of the agent tunnel: an HTTP/2 TLS listener agents dial in to.
// It authenticates each agent (an API key of kind `agent` in the group
// `agent:<name>`, not revoked; an agent whose key is revoked later is dropped),
// keeps its announced connections, heartbeats it, and hands it
// exchanges: least outstanding first, queued while every agent is busy, handed to
// another agent when the one they were given to dies before taking them. Two kinds:
// HTTP exchanges (forward) and raw byte streams to a target (openStream, for the
// PostgreSQL adapter), each its own HTTP/2 stream.
//
// This file routes the endpoint's streams (agent-listener.ts is its socket, TLS then
// HTTP/2); agent-session.ts admits and watches agents, agent-dispatch.ts queues and
// hands out exchanges, and agent-exchange-stream.ts carries an exchange an agent took.

import { constants as h2 } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { createDispatcher } from './agent-dispatch.js';
import { takeExchange } from './agent-exchange-stream.js';
import type { AgentHub, AgentHubOptions, AgentHubStatus } from './agent-hub-types.js';
import { reply } from './agent-reply.js';
import { createAgentListener } from './agent-listener.js';
import { acceptAgent } from './agent-session.js';
import { destroySession, resetStream } from './h2-teardown.js';
import { connectPath, exchangePathPrefix } from './protocol.js';

export type { AgentExchange, AgentHub, AgentHubOptions, AgentHubStatus, AgentSessionStatus, AgentStreamRequest } from './agent-hub-types.js';

export async function startAgentHub(options: AgentHubOptions): Promise<AgentHub> {
  const { logger } = options;
  const dispatcher = createDispatcher({ queueTimeoutMs: options.queueTimeoutMs, logger });

  const { tls: server, h2: h2server } = createAgentListener(options.tls);
  h2server.on('stream', (stream, headers) => {
    // A stream reset with an error code (the agent's RST_STREAM when its target cut an
    // answer, or ours on a bad head) emits 'error'; unheard, that is an uncaught
    // exception that ends the gateway. Its handlers see it as 'close' without the trailer.
    stream.on('error', () => undefined);
    const path = headers[':path'] ?? '';
    // Async, so that a throw in a handler is a rejection caught below, not an uncaught exception.
    const handle = async () => (path === connectPath ? acceptAgent(stream, headers, options, dispatcher) : path.startsWith(exchangePathPrefix) ? takeExchange(stream, path.slice(exchangePathPrefix.length), dispatcher) : reply(stream, 404, 'route_not_found', 'No such agent route: this is the Gatehouse agent endpoint, which `gatehouse agent` processes connect to.'));
    void handle().catch((error: unknown) => {
      logger.warn({ err: String(error) }, 'agent stream failed');
      resetStream(stream, h2.NGHTTP2_INTERNAL_ERROR);
    });
  });
  // A session that never authenticates is not kept open.
  h2server.on('session', (h2session) => {
    const timer = setTimeout(() => {
      if (!dispatcher.sessionOf(h2session)) destroySession(h2session);
    }, 15_000);
    h2session.once('close', () => clearTimeout(timer));
    h2session.on('error', () => undefined);
  });
  h2server.on('sessionError', () => undefined);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.listen.port, options.listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { address, port } = server.address() as AddressInfo;
  const url = `https://${address.includes(':') ? `[${address}]` : address}:${port}`;

  return {
    url,
    forward: dispatcher.submit,
    openStream: dispatcher.openStream,
    dropRevoked() {
      let dropped = 0;
      for (const session of [...dispatcher.sessions.values()]) {
        const why = options.revoked?.(session.identity);
        if (why === undefined) continue;
        logger.warn({ agent: session.hello.name, session: session.id, subject: session.identity.subject, reason: why }, 'agent key revoked; dropping the agent');
        dispatcher.drop(session);
        dropped++;
      }
      return dropped;
    },
    status(): AgentHubStatus {
      const agents = [...dispatcher.sessions.values()].map((s) => ({
        session: s.id,
        name: s.hello.name,
        subject: s.identity.subject,
        keyId: s.identity.credentialId,
        connections: [...s.hello.connections],
        concurrency: s.hello.concurrency,
        inFlight: s.offered.size + s.taken.size,
        draining: s.draining,
        remoteAddress: s.h2session.socket?.remoteAddress,
        version: s.hello.version,
        connectedAt: new Date(s.connectedAt).toISOString(),
        lastHeartbeatAt: new Date(s.lastSeenAt).toISOString(),
      }));
      const routes = [...options.routes].map(([connection, agent]) => ({
        connection,
        agent,
        connectedAgents: agents.filter((a) => a.name === agent && a.connections.includes(connection)).length,
      }));
      return { agents, routes, queued: dispatcher.queued() };
    },
    async close() {
      dispatcher.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // It never listened: this only closes the h2 sessions it still serves (not yet authenticated).
      h2server.close();
      await closed;
    },
  };
}

