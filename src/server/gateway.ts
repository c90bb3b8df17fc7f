// Wiring: builds a running gateway from a validated config — store, identity, policy,
// recorder, the data plane and the admin API — and takes it down in order.

import { createServer as createHttpServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { dirname, resolve } from 'node:path';
import { createAdminHandler, createReviewsRoutes, identityAdminRoutes, storeProbe } from '../api/index.js';
import { reviewAuditEvent, startApprovals, type ApprovalService } from '../approvals/index.js';
import { createRawSealer, createRecorder, openAuditTrail, recordCheckpointKey, readEd25519PublicKey, Reexecutions, registerJournalMetrics, startJournalRecorder, type AuditTrail, type EventInput, type Recorder } from '../audit/index.js';
import { disabledRecorder } from '../audit/disabled-recorder.js';
import { heldRecordsKeyPurpose } from '../audit/held-records-file.js';
import { changedReviewRules, changesNeedingRestart, type GatehouseConfig } from '../config/index.js';
import { GatehouseError } from '../errors/index.js';
import type { Exchange } from '../exchange/index.js';
import { authRefusedEvent, buildIdentity, checkTokenScope, readCookie, sessionCookie, type ApiKeyService, type AuthRefusal } from '../identity/index.js';
import { registerAgentMetrics, startAgentHub } from '../agent/index.js';
import { viaAgent } from '../config/agents-schema.js';
import { createLogger, createMetrics, exchangeLogFields, type Logger } from '../observability/index.js';
import type { PipelineStages } from '../pipeline/index.js';
import { createPolicyRuntime, type DecisionPolicy, type DetectEntities, type PolicyChangeEvent, type PolicyRuntime } from '../policy/index.js';
import { createPolicyRoutes } from '../api/policy-routes.js';
import { limitConnections, type ConnectionLimits, type RefusalReason } from './connection-limits.js';
import { createLimitStore } from './create-limit-store.js';
import { startAlerts } from './start-alerts.js';
import { startDependencyMonitor } from './dependency-monitor.js';
import { startAuthThrottle } from './start-auth-throttle.js';
import { answerPlainHttp } from './plain-http-on-tls.js';
import { answerClientErrors } from './client-errors.js';
import { renewListenerCertificates } from './renew-certificates.js';
import { logHeldRecords } from './log-held-records.js';
import { credentialRedactor, disguisedEntityTypes, maskPlannerFromConfig, targetCredentialEntity } from '../mask/index.js';
import { redactPathCredentials } from '../detect/index.js';
import { listenerTimeouts } from './listener-timeouts.js';
import { closeNow, closeServer, trackKeepAlive } from './stop-listener.js';
import { createDataPlaneHandler, type ResponseGuard } from '../protocols/http/index.js';
import { startPostgresListener, type PostgresListener } from '../protocols/postgres/index.js';
import { createAuthRoutes } from '../protocols/http/auth-routes.js';
import { lockSqliteStore, openStore, type Store } from '../store/index.js';
import { buildHttpConnections } from './build-connections.js';
import { buildPostgresConnections } from './build-postgres-connections.js';

export interface Gateway {
  readonly dataPlaneUrl: string;
  readonly adminUrl: string | undefined;
  /** PostgreSQL listeners by connection name: `host:port`. */
  readonly postgresListeners: ReadonlyMap<string, string>;
  /** The agent endpoint (`agents.listen`), when configured. */
  readonly agentsUrl: string | undefined;
  readonly store: Store;
  readonly apiKeys: ApiKeyService;
  readonly logger: Logger;
  /** Present when config has an `approvals:` section. */
  readonly approvals: ApprovalService | undefined;
  /** The live policy: `reload(by)` recompiles it (SIGHUP, file change, admin API). */
  readonly policy: PolicyRuntime;
  /** Administrative acts: `await gateway.audit.log.event({ kind, actor, target, details })`. */
  readonly audit: AuditTrail;
  /** Resolves when every exchange recorded so far can be read from the store. */
  settleRecords(): Promise<void>;
  /** Stops: in-flight exchanges get up to `gateway.shutdownGrace` (10 s), then are cut (recorded as gateway_shutdown). */
  close(): Promise<void>;
  /** During close(): cut the exchanges still in flight now instead of at the end of the grace period. */
  endGracePeriod(): void;
}

export interface StartOptions {
  readonly logger?: Logger;
  /**
   * Replaces the policy compiled from config, for embedding Gatehouse in another
   * program and for tests (e.g. a policy that returns `require_approval`).
   */
  readonly policy?: DecisionPolicy;
  /** Response-side guardrail check (policy provides it). */
  readonly responseGuard?: ResponseGuard | undefined;
  /** The config file: watched, and re-read when the policy reloads. */
  readonly configFile?: string;
  /** Entity detection for policy `entities` conditions (without it, such rules are refused). */
  readonly detectEntities?: DetectEntities;
  /** Called after every policy change, with who made it (for the audit log). */
  readonly onPolicyChange?: (event: PolicyChangeEvent) => void;
  /** Longest time to receive a whole request, headers and body (default 300 s; tests shorten it). */
  readonly requestTimeoutMs?: number;
  /**
   * Aborted (a stop signal while starting): the start ends after the step under way,
   * closes what it had opened (listeners, worker threads, the store) and rejects with
   * the signal's reason.
   */
  readonly signal?: AbortSignal | undefined;
}

type Closer = () => unknown;
export async function startGateway(config: GatehouseConfig, options: StartOptions = {}): Promise<Gateway> {
  // What a failed or stopped start had opened is closed, newest first: no listener
  // stays bound and no worker thread runs after startGateway rejects.
  const opened: Closer[] = [];
  try {
    return await buildGateway(config, options, opened);
  } catch (error) {
    for (const close of opened.reverse()) await Promise.resolve().then(close).catch(() => undefined);
    throw error;
  }
}

async function buildGateway(config: GatehouseConfig, options: StartOptions, opened: Closer[]): Promise<Gateway> {
  const stopAsked = () => options.signal?.throwIfAborted();
  stopAsked();
  const logger = options.logger ?? createLogger(config.log.level);
  // One gateway per SQLite store (store-lock.ts), checked before the store is touched.
  // A PostgreSQL store is shared by design: several gateways, no lock.
  const storeLock = 'sqlite' in config.store ? lockSqliteStore(config.store.sqlite.path) : undefined;
  if (storeLock) opened.push(() => storeLock.release());
  const store = await openStore(config.store);
  opened.push(() => store.close());
  stopAsked();
  // The config schema defaults gatewayTokens.keyFile beside the data (withDefaultKeyFile);
  // this is only for a config that did not go through it.
  const dataDir = 'sqlite' in config.store ? dirname(config.store.sqlite.path) : resolve('data');
  const identity = await buildIdentity(config.identity, store.db, { publicUrl: config.gateway.publicUrl, dataDir, postgresUrl: 'postgres' in config.store ? config.store.postgres.url : undefined, onListenError: (error) => logger.warn({ err: error.message }, 'revocation LISTEN connection failed; reconnecting') });
  opened.push(() => identity.close());
  stopAsked();
  const { apiKeys, identify } = identity;
  const audit = openAuditTrail(store.db, config.audit, { sqlitePath: store.sqlitePath, createKey: true, withSinks: true, onSinkError: (sink, error) => logger.warn({ sink, err: String(error) }, 'audit sink failed') });
  // Before anything is chained here: the sinks resume where they left off (events a CLI
  // or a crashed gateway's journal chained since are sent first).
  opened.push(() => audit.close());
  await audit.startSinks();
  stopAsked();
  const limitStore = createLimitStore(config.policy.limits);
  opened.push(() => limitStore.close());
  let reloadApprovals: (next: GatehouseConfig, by: string) => void = () => undefined;
  // The HTTPS listeners, once bound: a reload renews their certificates (renew-certificates.ts).
  const tlsListeners: { gateway?: HttpsServer; admin?: HttpsServer } = {};
  // The config as running: the start config, with the listener certificates reloads renewed.
  let applied = config;
  // A reload is an administrative act: the chain records what changed, and a refused one.
  // Token issue is an administrative act (issue #8): chained before the token is handed out.
  identity.gatewayTokens?.recordIssuesWith((who, scope, issued) =>
    audit.log.event({ kind: 'token.issued', actor: who.subject, target: `jti:${issued.jti}`, details: { via: who.credentialId ?? null, kind: who.kind, groups: who.groups, scope, expiresAt: issued.expiresAt } }),
  );
  // A credential refused outside a data-plane exchange (which chains its own) is chained too.
  const recordAuthRefusal = (refusal: AuthRefusal) => audit.log.event(authRefusedEvent(refusal));
  const chainEvent = (event: EventInput) => void audit.log.event(event).catch((error: unknown) => logger.error({ err: String(error) }, 'audit event failed'));
  const metrics = createMetrics();
  const alerts = startAlerts(config.audit.alerts, logger, chainEvent);
  const throttle = startAuthThrottle(config, limitStore, logger, metrics, chainEvent, alerts);
  opened.push(() => throttle.close());
  const identifyAdmin = throttle.guard(identity.identifyAdmin, 'admin');
  const identifyOnAdmin = throttle.guard(identify, 'admin');
  const policyRuntime = createPolicyRuntime({
    config,
    configFile: options.configFile,
    store: limitStore,
    logger,
    // Policy `entities` conditions use the masking engine's detectors, disguises included.
    detectEntities: options.detectEntities ?? disguisedEntityTypes,
    // A policy injected in place of the config's (embedding, tests) has rules of its own,
    // which approvals.rules may name.
    checkApprovals: options.policy === undefined,
    onPolicyChange: (event) => {
      // Every policy change is an administrative act in the audit chain.
      chainEvent({ kind: 'policy.changed', actor: event.by, target: `policy:${event.version}`, details: { previousVersion: event.previousVersion, ruleCount: event.ruleCount } });
      options.onPolicyChange?.(event);
    },
    onReloadRefused: (by, message) => chainEvent({ kind: 'policy.reload_refused', actor: by, target: `policy:${policyRuntime.current().version}`, details: { error: message.slice(0, 1000) } }),
    onReload: (next, by) => {
      reloadApprovals(next, by);
      applied = renewListenerCertificates(applied, next, tlsListeners, logger);
      // Edits outside the policy are read but not applied: say so on every reload.
      const restartNeeded = changesNeedingRestart(applied, next);
      if (restartNeeded.length > 0) logger.warn({ restartNeeded }, 'config changes not applied: restart the gateway to apply them');
      return restartNeeded;
    },
  });
  opened.push(() => policyRuntime.close());
  const policy = options.policy ?? policyRuntime.policy;
  const reexecutions = new Reexecutions();
  const raw = config.audit.raw.enabled && config.audit.raw.key ? { sealer: createRawSealer(config.audit.raw.key), revealGroups: config.audit.raw.revealGroups } : undefined;
  const reexecutionOf = (exchange: Exchange) => reexecutions.take(exchange.id);
  // On SQLite, records go through the record journal (src/audit/journal/): appended on
  // this thread, applied to the store by a worker. On PostgreSQL, straight to the store.
  const journal =
    config.recording.enabled && store.sqlitePath
      ? await startJournalRecorder({
          sqlitePath: store.sqlitePath,
          audit: config.audit,
          raw: raw?.sealer,
          reexecutionOf,
          maxTextBytes: config.recording.maxBodyBytes,
          onEvents: audit.hasSinks ? (events) => audit.publish(events) : undefined,
          onError: (message) => logger.error({ err: message }, 'record journal: applying to the store failed (records stay in the journal and are retried)'),
          onSegmentDeleted: (segment, written) => logger.error({ segment, written }, 'record journal: a segment was deleted while this gateway wrote to it (what was not applied of it is lost; chained as recording.journal_missing); writing on in a new segment'),
        })
      : undefined;
  if (journal) opened.push(() => journal.close());
  stopAsked();
  const recorder: Recorder & { close?: () => Promise<void> } = !config.recording.enabled
    ? disabledRecorder
    : (journal ?? createRecorder(store.db, { writer: audit.writer, raw: raw?.sealer, reexecutionOf, maxTextBytes: config.recording.maxBodyBytes, onHeldRecords: logHeldRecords(logger), heldRecords: audit.signer && config.audit.keyFile !== undefined ? { dir: dirname(config.audit.keyFile), key: audit.signer.deriveKey(heldRecordsKeyPurpose) } : undefined }));
  if (!config.recording.enabled) logger.warn('recording.enabled is false: exchanges are not recorded or audited (a benchmark switch, not for production)');
  const agentHub = config.agents
    ? await startAgentHub({
        listen: config.agents.listen,
        tls: config.agents.tls,
        heartbeatMs: config.agents.heartbeat,
        queueTimeoutMs: config.agents.queueTimeout,
        verify: throttle.guard(async (token) => {
          if (token === undefined) throw new GatehouseError('unauthenticated');
          const agent = await apiKeys.verify(token);
          identity.revocations.check(agent);
          return agent;
        }, 'agents'),
        revoked: (agent) => identity.revocations.reason(agent),
        recordRefusal: recordAuthRefusal,
        logger,
        routes: new Map(config.connections.flatMap((c) => { const agent = viaAgent(c.via); return agent ? [[c.name, agent] as const] : []; })),
      })
    : undefined;
  if (agentHub) opened.push(() => agentHub.close());
  stopAsked();
  if (agentHub) registerAgentMetrics(metrics.registry, agentHub);
  // A revoked agent key ends the agent's link, as a revoked caller's exchanges are cut.
  if (agentHub) identity.revocations.onChange(() => agentHub.dropRevoked());
  if (journal) registerJournalMetrics(metrics.registry, journal);
  const dependencies = startDependencyMonitor({ logger, registry: metrics.registry, checks: { store: storeProbe(store.db), ...(config.policy.limits.store === 'redis' ? { limits: () => limitStore.ping() } : {}) }, policyVersion: () => policyRuntime.current().version });
  opened.push(() => dependencies.close());
  const connections = buildHttpConnections(config, agentHub);
  opened.push(() => Promise.all([...connections.values()].map((c) => c.forwarder.close())));
  // Credentials in what a refused request's record, or a review's preview, keeps are their type label.
  const redactCredentials = credentialRedactor();
  const approvals = config.approvals
    ? await startApprovals({
        db: store.db,
        store: config.store,
        config: config.approvals,
        adminGroups: config.admin.groups,
        logger,
        policy,
        redactPreview: redactCredentials,
        // Every review and every vote is an audit event in the chain.
        audit: (event) => {
          audit.log
            .event(reviewAuditEvent(event))
            .catch((error: unknown) => logger.error({ err: String(error) }, 'audit event failed'));
        },
      })
    : undefined;
  if (approvals) opened.push(() => approvals.close());
  stopAsked();
  // Reviewers and times per rule reload with the policy (the rules they name do); the
  // rest of `approvals:` (notifications, URLs, the section itself) needs a restart.
  let appliedApprovals = config.approvals;
  reloadApprovals = (next, by) => {
    // Adding or removing the section is reported by changesNeedingRestart.
    if (!approvals || !next.approvals) return;
    approvals.service.setReviewRules(next.approvals);
    // Who may approve what changed: as much an administrative act as a policy change.
    const changed = changedReviewRules(appliedApprovals, next.approvals);
    appliedApprovals = next.approvals;
    if (changed.length > 0) chainEvent({ kind: 'approvals.changed', actor: by, target: 'approvals', details: { changed } });
  };

  const stages: PipelineStages = {
    identify: throttle.guard(identify, 'data'),
    checkScope: checkTokenScope,
    policy,
    limits: policyRuntime.limits,
    recorder,
    approvals: approvals?.stage,
    redactRefused: redactCredentials,
    observe(exchange, decision, outcome) {
      metrics.observeExchange(exchange, decision, outcome);
      alerts.observe(exchange);
      // The target sent its own credential back (scrubbed): the operator should know, once per exchange, without the value.
      const echoed = outcome.maskCounts?.[targetCredentialEntity];
      if (echoed) logger.warn({ exchange: exchange.id, connection: exchange.connection, operation: redactPathCredentials(exchange.operation), scrubbed: echoed }, 'target echoed its credential; replaced in the answer');
      // The fields are built only for a line that is written (level warn skips `info`).
      if (outcome.errorCode === 'internal_error' || outcome.errorCode === 'recording_failed') logger.error(exchangeLogFields(exchange, decision, outcome), 'exchange failed');
      else if (logger.isLevelEnabled('info')) logger.info(exchangeLogFields(exchange, decision, outcome), 'exchange');
    },
  };

  const maskPlanner = maskPlannerFromConfig(config.masking);
  const dataPlane = createDataPlaneHandler({
    connections,
    stages,
    maxRecordedBody: config.recording.maxBodyBytes,
    recording: config.recording.enabled,
    keepRawAnswer: raw !== undefined,
    masking: {
      planner: maskPlanner,
      maxBufferBytes: config.masking.maxBufferBytes,
      // The decision names the response rules to enforce (obligations.responseGuards).
      responseGuard: (decision) => {
        const names = decision.obligations?.responseGuards;
        if (names && names.length > 0) return policyRuntime.policy.responseCheck(names);
        return options.responseGuard;
      },
    },
    progress: { intervalMs: config.audit.progress.interval, bytes: config.audit.progress.bytes },
    bindReexecution: (id, token) => reexecutions.bind(id, token),
    onUnrouted: (error) => metrics.observeUnrouted(error.code),
    inFlight: identity.inFlight,
    assertIdentity: identity.gatewayTokens ? (who, connection, ttlMs, exchangeId) => identity.gatewayTokens!.assertIdentity(who, connection, ttlMs, exchangeId) : undefined,
  });
  const gatewayTokens = identity.gatewayTokens;
  const authRoutes = gatewayTokens
    ? createAuthRoutes({
        identify: stages.identify,
        tokens: gatewayTokens,
        // HTTP and PostgreSQL connections alike: a token may be scoped to a database.
        connections: new Set(config.connections.map((c) => c.name)),
        defaultTtlMs: config.identity.gatewayTokens.defaultTtl,
        maxTtlMs: config.identity.gatewayTokens.maxTtl,
        onIssued: (who, jti, names) => logger.info({ subject: who.subject, jti, connections: names }, 'gateway token issued'),
        recordRefusal: recordAuthRefusal,
        onRecordFailed: (error) => logger.error({ err: String(error) }, 'token request refusal not recorded'),
      })
    : undefined;
  const requestTimeoutMs = options.requestTimeoutMs ?? 300_000;
  const connectionLimits = (listener: 'data' | 'admin', limits: ConnectionLimits): ListenLimits => ({
    ...limits,
    onRefused: (reason) => metrics.observeRefusedConnection(listener, reason),
    onUnparsed: (code) => metrics.observeUnrouted(code),
    // Admin API clients (the CLI included) read the admin API's own error shape.
    envelope: listener === 'admin' ? (error: GatehouseError) => JSON.stringify({ error: { code: error.code, message: error.message } }) : undefined,
    track: (open) => metrics.trackConnections(listener, open),
  });
  const dataServer = await listen((req, res) => authRoutes?.(req, res) || dataPlane(req, res), config.gateway.listen, config.gateway.tls, requestTimeoutMs, connectionLimits('data', config.gateway), dataPlane.declaresTooLarge);
  opened.push(() => closeNow(dataServer));
  if (config.gateway.tls) tlsListeners.gateway = dataServer as HttpsServer;
  stopAsked();
  const dataPlaneUrl = urlOf(dataServer, config.gateway.tls !== undefined);
  const postgresListeners: PostgresListener[] = [];
  const postgresNames: string[] = [];
  const postgresStages: PipelineStages = { ...stages, identify: throttle.guard(identify, 'postgres') };
  for (const connection of buildPostgresConnections(config, { agentHub, planner: maskPlanner })) {
    postgresNames.push(connection.name);
    const listener = await startPostgresListener({ connection, stages: postgresStages, inFlight: identity.inFlight, onSessionError: (error) => logger.warn({ connection: connection.name, err: String(error) }, 'postgres session failed') });
    postgresListeners.push(listener);
    opened.push(() => listener.close());
    stopAsked();
    logger.info({ connection: connection.name, address: listener.address }, 'postgres listener started');
  }

  let adminServer: Server | undefined;
  // Set when close() begins: /readyz says 503 from then on, while the admin listener stays up.
  let stopping = false;
  if (config.admin.enabled) {
    const auditRoutes = { db: store.db, log: audit.log, identify: identifyOnAdmin, publicKeyPem: audit.signer?.publicKeyPem, previousPublicKeyPems: config.audit.previousPublicKeys.map(readEd25519PublicKey), checkpointEvery: config.audit.checkpoint.every, raw, reexecutions, dataPlaneUrl: () => dataPlaneUrl };
    const admin = createAdminHandler({
      db: store.db,
      identify: identifyAdmin,
      adminGroups: config.admin.groups,
      metrics,
      logger,
      reviews: approvals && createReviewsRoutes({ service: approvals.service, identify: identifyOnAdmin }),
      routes: [...createPolicyRoutes({ runtime: policyRuntime, connections: config.connections }), ...identityAdminRoutes(identity.revocations, apiKeys, audit.log.change, { oidc: config.identity.oidc.issuers.map((i) => i.name), saml: config.identity.saml?.name })],
      // A refused login (OIDC callback, SAML response) is a failed authentication on record, and counted, as a refused data-plane credential is.
      publicRoutes: identity.loginRoutes(config.admin.tls !== undefined, {
        record: (refusal) => audit.log.event({ kind: 'login.refused', actor: null, target: refusal.provider, details: { reason: refusal.reason, client: refusal.client ?? null } }),
        throttle: (attempt, client) => throttle.guardAttempt(attempt, 'admin', client),
      }),
      sessionCredential: (req) => readCookie(req, sessionCookie),
      audit: auditRoutes,
      agents: agentHub,
      connectionNames: config.connections.map((c) => c.name),
      ruleNames: () => policyRuntime.current().ruleNames,
      settleRecords: () => recorder.drain(),
      recordAuthRefusal,
      limitsReady: () => limitStore.ping(),
      stopping: () => stopping,
    });
    adminServer = await listen((req, res) => {
      admin(req, res).catch((error: unknown) => {
        logger.error({ err: String(error) }, 'admin request failed');
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    }, config.admin.listen, config.admin.tls, requestTimeoutMs, connectionLimits('admin', config.admin));
    opened.push(() => closeNow(adminServer!));
    if (config.admin.tls) tlsListeners.admin = adminServer as HttpsServer;
    stopAsked();
  }
  const adminUrl = adminServer ? urlOf(adminServer, config.admin.tls !== undefined) : undefined;
  approvals?.setAdminUrl(adminUrl);
  const checkpointKey = await recordCheckpointKey(store.db, audit);
  await audit.log.event({ kind: 'gateway.started', actor: 'gatehouse', target: null, details: { dataPlane: dataPlaneUrl, admin: adminUrl ?? null, connections: [...connections.keys(), ...postgresNames], policyVersion: policy.version, recording: config.recording.enabled, checkpointKey } });
  logger.info({ dataPlane: dataPlaneUrl, admin: adminUrl, agents: agentHub?.url, connections: [...connections.keys(), ...postgresNames], policyVersion: policy.version, store: store.dialect }, 'gateway started');

  let closing: Promise<void> | undefined;
  const graceOver = new AbortController();
  return {
    dataPlaneUrl,
    adminUrl,
    postgresListeners: new Map(config.connections.filter((c) => c.type === 'postgres').map((c, i) => [c.name, postgresListeners[i]!.address])),
    agentsUrl: agentHub?.url,
    store,
    apiKeys,
    logger,
    approvals: approvals?.service,
    policy: policyRuntime,
    audit,
    settleRecords: () => recorder.drain(),
    close() {
      closing ??= (async () => {
        // In-flight exchanges past the grace period are ended as gateway_shutdown (recorded so).
        const cutInFlight = () => identity.inFlight.cutAll(new GatehouseError('gateway_shutdown'));
        const graceMs = config.gateway.shutdownGrace;
        logger.info({ shutdownGraceMs: graceMs }, 'stopping: no new connections; exchanges in flight may finish within the grace period, then are cut');
        stopping = true;
        const graceEnds = Date.now() + graceMs;
        await Promise.all([closeServer(dataServer, graceMs, graceOver.signal, cutInFlight), ...postgresListeners.map((l) => l.close(graceMs))]);
        // The admin listener stays up while the data plane drains: a balancer's /readyz
        // probe reads 503 gateway_stopping (not a refused connection) and /metrics can be
        // scraped. It closes now, its own requests in flight given what is left of the grace.
        if (adminServer) await closeServer(adminServer, graceOver.signal.aborted ? 0 : Math.max(0, graceEnds - Date.now()), graceOver.signal);
        await agentHub?.close();
        await recorder.drain();
        await recorder.close?.();
        await approvals?.close();
        policyRuntime.close();
        dependencies.close();
        await throttle.close();
        await limitStore.close();
        await identity.close();
        await audit.log.event({ kind: 'gateway.stopped', actor: 'gatehouse', target: null }).catch((error: unknown) => logger.error({ err: String(error) }, 'audit event failed'));
        await audit.close();
        await Promise.all([...connections.values()].map((c) => c.forwarder.close()));
        await store.close();
        storeLock?.release();
        logger.info('gateway stopped');
        await new Promise<void>((resolve) => logger.flush(() => resolve()));
      })();
      return closing;
    },
    endGracePeriod() {
      graceOver.abort();
    },
  };
}

interface ListenLimits extends ConnectionLimits {
  readonly onRefused: (reason: RefusalReason) => void;
  /** A request the HTTP parser refused (client-errors.ts). */
  readonly onUnparsed: (code: string) => void;
  readonly envelope?: ((error: GatehouseError) => string) | undefined;
  readonly track: (open: () => number) => void;
}

/** `refusesBody`: a request with `Expect: 100-continue` this says is refused gets its answer (413) without `100 Continue`. */
async function listen(handler: RequestListener, address: { host: string; port: number }, tls: { cert: string; key: string } | undefined, requestTimeoutMs: number, limits: ListenLimits, refusesBody?: (req: IncomingMessage) => boolean): Promise<Server> {
  // Node checks these timeouts every connectionsCheckingInterval (listener-timeouts.ts).
  const timeouts = listenerTimeouts(requestTimeoutMs);
  const options = { connectionsCheckingInterval: timeouts.connectionsCheckingInterval };
  const server = tls ? createHttpsServer({ ...options, cert: tls.cert, key: tls.key }, handler) : createHttpServer(options, handler);
  // Without this listener Node sends `100 Continue` to every `Expect: 100-continue`, and
  // a client declaring a body over the limit uploads all of it before its 413. Refused,
  // the body never comes: the answer closes the connection.
  if (refusesBody) {
    server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
      if (refusesBody(req)) res.shouldKeepAlive = false;
      else res.writeContinue();
      handler(req, res);
    });
  }
  // While it stops: answers say `Connection: close`, idle connections are closed (drain-keep-alive.ts).
  trackKeepAlive(server);
  // requestTimeout bounds receiving the request (headers and body), not the answer, which
  // may stream for minutes (bounded by the connection's own timeouts). Off, a body
  // dripped a byte at a time (under the 30 s idle limit of readBody) held its socket
  // and buffer forever, also on the admin listener and its unauthenticated login routes.
  server.requestTimeout = timeouts.requestTimeout;
  server.keepAliveTimeout = timeouts.keepAliveTimeout;
  server.headersTimeout = timeouts.headersTimeout;
  // A plain-HTTP request to a TLS listener gets an answer saying so (plain-http-on-tls.ts);
  // installed first, so the connection limits still run before it.
  // Headers over 16 KiB or a malformed request: the listener's envelope, not a bare 431/400.
  answerClientErrors(server, { envelope: limits.envelope, onRefused: limits.onUnparsed });
  if (tls) answerPlainHttp(server, { firstByteTimeoutMs: server.headersTimeout, envelope: limits.envelope });
  // A socket that is open, idle or slow, holds a descriptor and memory: bounded per
  // listener and per client address (connection-limits.ts).
  limits.track(limitConnections(server, limits, { tls: tls !== undefined, onRefused: limits.onRefused, envelope: limits.envelope }).open);
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
