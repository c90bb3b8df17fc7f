// Wiring: builds a running gateway from a validated config — store, identity, policy,
// recorder, the data plane and the admin API — and takes it down in order.

import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { registerAgentMetrics, startAgentHub } from '../agent/index.js';
import { createAdminHandler } from '../api/index.js';
import { createRecorder } from '../audit/index.js';
import type { GatehouseConfig } from '../config/index.js';
import { viaAgent } from '../config/agents-schema.js';
import { ApiKeyService, apiKeyAuthenticator, identifyCaller } from '../identity/index.js';
import { createLogger, createMetrics, exchangeLogFields, type Logger } from '../observability/index.js';
import type { PipelineStages } from '../pipeline/index.js';
import { compilePolicy } from '../policy/index.js';
import { createDataPlaneHandler } from '../protocols/http/index.js';
import { openStore, type Store } from '../store/index.js';
import { buildHttpConnections } from './build-connections.js';

export interface Gateway {
  readonly dataPlaneUrl: string;
  readonly adminUrl: string | undefined;
  readonly agentsUrl: string | undefined;
  readonly store: Store;
  readonly apiKeys: ApiKeyService;
  readonly logger: Logger;
  close(): Promise<void>;
}

export interface StartOptions {
  readonly logger?: Logger;
}

export async function startGateway(config: GatehouseConfig, options: StartOptions = {}): Promise<Gateway> {
  const logger = options.logger ?? createLogger(config.log.level);
  const store = await openStore(config.store);
  const apiKeys = new ApiKeyService(store.db);
  const identify = identifyCaller([apiKeyAuthenticator(apiKeys)]);
  const policy = compilePolicy(config.connections.map((c) => ({ connection: c.name, groups: c.access.groups })));
  const recorder = createRecorder(store.db);
  const metrics = createMetrics();
  const agentHub = config.agents ? await startAgentHub({
    listen: config.agents.listen, tls: config.agents.tls, heartbeatMs: config.agents.heartbeat, queueTimeoutMs: config.agents.queueTimeout,
    verify: (token) => apiKeys.verify(token), logger,
    routes: new Map(config.connections.flatMap((c) => { const agent = viaAgent(c.via); return agent ? [[c.name, agent] as const] : []; })),
  }) : undefined;
  if (agentHub) registerAgentMetrics(metrics.registry, agentHub);
  const connections = buildHttpConnections(config, agentHub);

  const stages: PipelineStages = {
    identify,
    policy,
    recorder,
    observe(exchange, decision, outcome) {
      metrics.observeExchange(exchange, decision, outcome);
      const fields = exchangeLogFields(exchange, decision, outcome);
      if (outcome.errorCode === 'internal_error' || outcome.errorCode === 'recording_failed') logger.error(fields, 'exchange failed');
      else logger.info(fields, 'exchange');
    },
  };

  const dataPlane = createDataPlaneHandler({
    connections,
    stages,
    maxRecordedBody: config.recording.maxBodyBytes,
    onUnrouted: (error) => metrics.observeUnrouted(error.code),
  });
  const dataServer = await listen(dataPlane, config.gateway.listen, config.gateway.tls);
  const dataPlaneUrl = urlOf(dataServer, config.gateway.tls !== undefined);

  let adminServer: Server | undefined;
  if (config.admin.enabled) {
    const admin = createAdminHandler({ db: store.db, identify, adminGroups: config.admin.groups, metrics, logger, agents: agentHub });
    adminServer = await listen((req, res) => {
      admin(req, res).catch((error: unknown) => {
        logger.error({ err: String(error) }, 'admin request failed');
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    }, config.admin.listen, config.admin.tls);
  }
  const adminUrl = adminServer ? urlOf(adminServer, config.admin.tls !== undefined) : undefined;
  logger.info({ dataPlane: dataPlaneUrl, admin: adminUrl, agents: agentHub?.url, connections: [...connections.keys()], policyVersion: policy.version, store: store.dialect }, 'gateway started');

  let closing: Promise<void> | undefined;
  return {
    dataPlaneUrl,
    adminUrl,
    agentsUrl: agentHub?.url,
    store,
    apiKeys,
    logger,
    close() {
      closing ??= (async () => {
        await Promise.all([closeServer(dataServer), adminServer ? closeServer(adminServer) : undefined]);
        await agentHub?.close();
        await recorder.drain();
        await Promise.all([...connections.values()].map((c) => c.forwarder.close()));
        await store.close();
        logger.info('gateway stopped');
        await new Promise<void>((resolve) => logger.flush(() => resolve()));
      })();
      return closing;
    },
  };
}

async function listen(handler: RequestListener, address: { host: string; port: number }, tls: { cert: string; key: string } | undefined): Promise<Server> {
  const server = tls ? createHttpsServer({ cert: tls.cert, key: tls.key }, handler) : createHttpServer(handler);
  // Answers may stream for minutes; a slow upstream is bounded by the connection's own
  // timeouts instead. Idle keep-alive sockets are closed after 65 s.
  server.requestTimeout = 0;
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port, address.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

function urlOf(server: Server, tls: boolean): string {
  const { address, port } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  return `${tls ? 'https' : 'http'}://${host}:${port}`;
}

/** Stops accepting, lets in-flight exchanges finish for up to 10 s, then cuts them. */
function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => server.closeAllConnections(), 10_000);
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}
