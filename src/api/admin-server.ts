// The admin API, on its own listener. Health, readiness, metrics and the OpenAPI
// document are open (bind the listener to a private address); everything under /api
// requires an API key whose groups include one of `admin.groups`. A login session
// (cookie) that changes state must send JSON (cross-site request protection).

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Kysely } from 'kysely';
import { redactPathCredentials } from '../detect/index.js';
import { getExchange, listExchanges, maxPageSize, unmatchedFilters } from '../audit/index.js';
import { errorRegistry, GatehouseError, isGatehouseError } from '../errors/index.js';
import type { Identity } from '../exchange/index.js';
import type { RecordAuthRefusal } from '../identity/index.js';
import type { GatewayMetrics, Logger } from '../observability/index.js';
import { bearerToken } from '../protocols/http/index.js';
import { isStoreUnreachable, type Database } from '../store/index.js';
import { auditRoutes, type AuditRoutesOptions } from './audit-routes.js';
import type { AgentHub } from '../agent/agent-hub.js';
import { agentsStatus } from './agents-routes.js';
import { decodePathParam, decisionParam, intParam, onlyParams, pageLimitParam, sendJson, timeParam } from './http-helpers.js';
import { openApiDocument } from './openapi.js';
import type { createReviewsRoutes } from './reviews-routes.js';

export interface AdminServerOptions {
  readonly db: Kysely<Database>;
  readonly identify: (credential: string | undefined, client?: string) => Promise<Identity>;
  readonly adminGroups: readonly string[];
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
  /** Approvals routes (/api/reviews…), when approvals are configured. */
  readonly reviews?: ReturnType<typeof createReviewsRoutes> | undefined;
  /** More routes from other modules (policy, identity revocations), behind the same admin check. */
  readonly routes?: readonly AdminRoute[];
  /** Unauthenticated routes answered before /api (identity: /auth/login, /auth/callback); false = not mine. */
  readonly publicRoutes?: ((req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean>) | undefined;
  /** Reads a browser session credential (the login cookie) when there is no bearer token. */
  readonly sessionCredential?: ((req: IncomingMessage) => string | undefined) | undefined;
  /** Replay, re-execution, reveal and verification routes (audit-routes.ts). */
  readonly audit?: AuditRoutesOptions | undefined;
  /** The configured connections' names, for the hint beside an empty search (GET /api/sessions). */
  readonly connectionNames?: readonly string[] | undefined;
  /** The running policy's rule names (they change on reload), for the same hint. */
  readonly ruleNames?: (() => readonly string[]) | undefined;
  /** The agent endpoint, for GET /api/agents. */
  readonly agents?: AgentHub | undefined;
  /** Resolves when the limit counters answer (Redis with `policy.limits.store: redis`), for /readyz. */
  readonly limitsReady?: (() => Promise<void>) | undefined;
  /** True once the gateway is stopping: /readyz then answers 503 gateway_stopping, so a load balancer takes it out of rotation. */
  readonly stopping?: (() => boolean) | undefined;
  /** Waits until every exchange recorded so far is in the store (the record journal is applied in batches). */
  readonly settleRecords?: (() => Promise<void>) | undefined;
  /** Chains a refused credential (401) as `auth.refused`, unless its route records its own (logins, reveals). */
  readonly recordAuthRefusal?: RecordAuthRefusal | undefined;
}

export type Route = (req: IncomingMessage, url: URL, params: readonly string[], caller: Identity) => Promise<unknown>;
/**
 * Told of a refusal of its route (a 4xx: the caller's credential, the admin check, the
 * route itself), with the caller when one was identified and the path's parameters as
 * sent (decoded when they could be). An attempt may be worth an audit event.
 */
export type RefusedRoute = (caller: Identity | undefined, params: readonly string[], refusal: GatehouseError) => Promise<void>;
export type AdminRoute = readonly [method: string, pattern: RegExp, route: Route, refused?: RefusedRoute];

const openApiBody = JSON.stringify(openApiDocument);
const safeMethods = new Set(['GET', 'HEAD']);

function isJsonContentType(value: string | undefined): boolean {
  return value?.split(';', 1)[0]!.trim().toLowerCase() === 'application/json';
}

export function createAdminHandler(options: AdminServerOptions) {
  const { db, metrics } = options;
  const adminGroups = new Set(options.adminGroups);

  const routes: readonly AdminRoute[] = [
    ['GET', /^\/api\/sessions$/, (_req, url) => sessionsList(url)],
    ['GET', /^\/api\/sessions\/([^/]+)$/, async (_req, _url, [id]) => {
      const exchange = await getExchange(db, id!);
      if (!exchange) throw new GatehouseError('route_not_found', { message: `No session with id "${id}".` });
      return exchange;
    }],
    ...(options.routes ?? []),
    ...(options.audit ? auditRoutes(options.audit) : []),
    ['GET', /^\/api\/agents$/, async () => agentsStatus(options.agents)],
  ];

  const sessionsParams = ['connection', 'subject', 'decision', 'operation', 'group', 'rule', 'review', 'text', 'since', 'until', 'limit', 'cursor'];

  async function sessionsList(url: URL) {
    const q = url.searchParams;
    onlyParams(q, sessionsParams);
    const cursor = q.get('cursor');
    const since = timeParam(q, 'since');
    const until = timeParam(q, 'until');
    // Swapped bounds match nothing, and the empty answer read as "nothing happened".
    if (since !== undefined && until !== undefined && since > until) throw new GatehouseError('invalid_query', { message: `Query parameter "since" (${q.get('since')}) is after "until" (${q.get('until')}): no time is in that range.` });
    const filter = {
      connection: q.get('connection') ?? undefined,
      subject: q.get('subject') ?? undefined,
      decision: decisionParam(q),
      operation: q.get('operation') ?? undefined,
      group: q.get('group') ?? undefined,
      rule: q.get('rule') ?? undefined,
      review: q.get('review') ?? undefined,
      text: q.get('text') ?? undefined,
      since,
      until,
      limit: pageLimitParam(q, maxPageSize),
      before: cursor === null ? undefined : intParam(q, 'cursor'),
    };
    const page = await listExchanges(db, filter);
    const answer = { sessions: page.items, next: page.next === undefined ? null : String(page.next) };
    // Nothing found because a filter names a value no exchange has (a typo): say which,
    // with the nearest names, rather than an empty page alone.
    if (page.items.length > 0 || cursor !== null) return answer;
    const unmatched = await unmatchedFilters(db, filter, { connections: options.connectionNames ?? [], rules: options.ruleNames?.() });
    return unmatched.length === 0 ? answer : { ...answer, unmatched };
  }

  async function identifyCaller(req: IncomingMessage): Promise<Identity> {
    const bearer = bearerToken(req.headers.authorization);
    const session = bearer === undefined ? options.sessionCredential?.(req) : undefined;
    // A browser sends the session cookie with any form another site (or another port of
    // this host: SameSite ignores ports) submits. A form cannot send a JSON content type,
    // and a script can only after a CORS preflight this API never grants.
    if (session !== undefined && !safeMethods.has(req.method ?? 'GET') && !isJsonContentType(req.headers['content-type'])) {
      throw new GatehouseError('access_denied', {
        message: 'A request authenticated by the session cookie that changes state must have "Content-Type: application/json".',
        rule: 'admin-session-csrf',
      });
    }
    return options.identify(bearer ?? session, req.socket.remoteAddress);
  }

  function requireAdmin(identity: Identity): void {
    if (!identity.groups.some((g) => adminGroups.has(g))) {
      throw new GatehouseError('access_denied', { message: `${identity.subject} is not in an admin group.`, rule: 'admin-groups' });
    }
  }

  /**
   * An identified caller refused a change (not an admin, a token scoped elsewhere, a
   * cookie without JSON): an attempt an auditor wants to see (a non-admin trying to
   * revoke or reload). Anonymous refusals stay in the log only: anyone could flood the
   * chain with them.
   */
  function refusedWrite(req: IncomingMessage, url: URL): RefusedRoute | undefined {
    const log = options.audit?.log;
    if (!log) return undefined;
    return async (caller, _params, refusal) =>
      void (await log.event({
        kind: 'admin.refused',
        actor: caller?.subject ?? null,
        target: `${req.method ?? 'POST'} ${redactPathCredentials(url.pathname).slice(0, 200)}`,
        details: { code: refusal.code, reason: refusal.message.slice(0, 300), ...(refusal.rule ? { rule: refusal.rule } : {}), groups: caller?.groups ?? [] },
      }));
  }

  async function runRoute(req: IncomingMessage, url: URL, [, pattern, route, refused]: AdminRoute): Promise<unknown> {
    const sent = pattern.exec(url.pathname)!.slice(1);
    let caller: Identity | undefined;
    let params = sent;
    try {
      caller = await identifyCaller(req);
      requireAdmin(caller);
      params = sent.map(decodePathParam);
      // What a client has been answered is on record: an API read must find it.
      await options.settleRecords?.();
      return await route(req, url, params, caller);
    } catch (error) {
      // The refusal stands whatever happens to its record; a failed record is logged.
      const record = refused ?? (caller && error instanceof GatehouseError && error.status === 403 && !safeMethods.has(req.method ?? 'GET') ? refusedWrite(req, url) : undefined);
      if (record && isGatehouseError(error) && error.status < 500) {
        await record(caller, params, error).catch((failure: unknown) => options.logger.error({ code: error.code, detail: String(failure) }, 'admin refusal not recorded'));
      }
      throw error;
    }
  }

  async function handleAdmin(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let url: URL | undefined;
    // A route that records its own refusals (login.refused, exchange.reveal_refused): its
    // 401 is not chained twice.
    let recordsOwnRefusals = false;
    try {
      url = URL.canParse(req.url ?? '/', 'http://admin.invalid') ? new URL(req.url ?? '/', 'http://admin.invalid') : undefined;
      if (!url) throw new GatehouseError('route_not_found', { message: 'The request target is not a valid path.' });
      if (req.method === 'GET' && url.pathname === '/healthz') return sendJson(res, 200, { status: 'ok' });
      if (req.method === 'GET' && url.pathname === '/readyz') return await readiness(res);
      if (req.method === 'GET' && url.pathname === '/metrics') {
        const body = await metrics.registry.metrics();
        res.writeHead(200, { 'content-type': metrics.registry.contentType });
        res.end(body);
        return;
      }
      if (req.method === 'GET' && url.pathname === '/api/openapi.json') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(openApiBody);
        return;
      }
      recordsOwnRefusals = true;
      if (options.publicRoutes && (await options.publicRoutes(req, res, url))) return;
      recordsOwnRefusals = false;
      if (options.reviews && (await options.reviews(req, res, url))) return;
      const matching = routes.filter(([, pattern]) => pattern.test(url!.pathname));
      if (matching.length > 0) {
        const found = matching.find(([method]) => method === req.method);
        if (!found) throw new GatehouseError('method_not_allowed', { message: `Use ${matching[0]![0]} for ${url.pathname}.` });
        recordsOwnRefusals = found[3] !== undefined;
        return sendJson(res, 200, await runRoute(req, url, found));
      }
      // The routes exist only with approvals configured; a bare "No such route." left a
      // reviewer guessing whether the URL or the gateway was wrong.
      if (!options.reviews && /^\/api\/reviews(\/|$)/.test(url.pathname)) {
        throw new GatehouseError('route_not_found', { message: 'Approvals are not configured on this gateway: its config has no "approvals:" section (see docs/approvals.md).' });
      }
      throw new GatehouseError('route_not_found');
    } catch (error) {
      const failure = isGatehouseError(error) ? error : new GatehouseError(isStoreUnreachable(error) ? 'store_unavailable' : 'internal_error', { detail: String(error) });
      if (failure.status >= 500) options.logger.error({ code: failure.code, detail: failure.detail }, 'admin API error');
      // a refused login (SAML response, OIDC callback) or admin credential: the cause is
      // only in the detail, for operators. The path only: a callback's query holds the code.
      else if (failure.detail !== undefined) options.logger.info({ path: url === undefined ? undefined : redactPathCredentials(url.pathname), code: failure.code, detail: failure.detail }, 'admin request refused');
      if (failure.status === 401 && !recordsOwnRefusals && options.recordAuthRefusal) {
        const request = `${req.method ?? 'GET'} ${url === undefined ? '' : redactPathCredentials(url.pathname)}`;
        await options.recordAuthRefusal({ listener: 'admin', request, error: failure, client: req.socket.remoteAddress }).catch((cause: unknown) => options.logger.error({ code: failure.code, detail: String(cause) }, 'admin refusal not recorded'));
      }
      return sendJson(res, failure.status, { error: { code: failure.code, message: failure.message } }, failure.retryAfterSeconds === undefined ? {} : { 'retry-after': String(failure.retryAfterSeconds) });
    }
  }

  // Ready when the store and the limit counters both answer, each within the probe bound
  // (a dependency that hangs must read "not ready"); a gateway missing either refuses
  // requests (fail closed), so a load balancer should route around it.
  async function readiness(res: ServerResponse): Promise<void> {
    if (options.stopping?.()) return sendJson(res, 503, { status: 'stopping', error: { code: 'gateway_stopping', message: errorRegistry.gateway_stopping.message }, unavailable: ['gateway_stopping'] });
    const checks: ReadonlyArray<readonly ['store_unavailable' | 'limits_unavailable', (() => Promise<unknown>) | undefined]> = [
      ['store_unavailable', storeProbe(db)],
      ['limits_unavailable', options.limitsReady],
    ];
    const results = await Promise.allSettled(checks.map(([, check]) => (check ? withTimeout(check(), readinessTimeoutMs) : undefined)));
    const failed = checks.filter((_, i) => results[i]!.status === 'rejected');
    if (failed.length === 0) return sendJson(res, 200, { status: 'ready' });
    for (const [i, [code]] of checks.entries()) {
      const result = results[i]!;
      if (result.status === 'rejected') options.logger.warn({ code, detail: String(result.reason) }, 'not ready');
    }
    const [code] = failed[0]!;
    return sendJson(res, 503, { error: { code, message: errorRegistry[code].message }, unavailable: failed.map(([c]) => c) });
  }

  // The routes behind the admin check, for the test that keeps the OpenAPI document in step.
  return Object.assign(handleAdmin, { routes: routes.map(([method, pattern]) => [method, pattern] as const) });
}

/** How long /readyz waits for the store before answering 503. */
export const readinessTimeoutMs = 2_000;

/** The query /readyz (and the dependency monitor) asks the store: one indexed read. */
export function storeProbe(db: Kysely<Database>): () => Promise<unknown> {
  return () => db.selectFrom('api_keys').select('id').limit(1).execute();
}

export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
