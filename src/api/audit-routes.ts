// Admin API routes of the audit: alerts, replay, re-execution, reveal of raw content, and
// chain verification. Registered in admin-server.ts; every route here already passed the
// admin-group check there. Reveal additionally requires one of `audit.raw.revealGroups`,
// and is itself an audit event, written (durably) before anything is revealed.

import { Agent, request } from 'undici';
import type { Kysely } from 'kysely';
import type { AuditLog } from '../audit/index.js';
import { fromCheckpointProblem, getExchange, timeline, verifyChain } from '../audit/index.js';
import { listAlerts, maxAlertsPage } from '../audit/alerts/list-alerts.js';
import type { RawSealer } from '../audit/raw-content.js';
import type { Reexecutions } from '../audit/reexecutions.js';
import { GatehouseError } from '../errors/index.js';
import type { Identity } from '../exchange/index.js';
import { bearerToken } from '../protocols/http/index.js';
import type { Database } from '../store/index.js';
import type { AdminRoute, RefusedRoute } from './admin-server.js';
import { onlyParams, pageLimitParam, timeParam } from './http-helpers.js';
import { refusedRevealEvent } from './refused-reveal.js';

export interface AuditRoutesOptions {
  readonly db: Kysely<Database>;
  readonly log: AuditLog;
  readonly identify: (credential: string | undefined, client?: string) => Promise<Identity>;
  readonly publicKeyPem: string | undefined;
  /** audit.previousPublicKeys, read: checkpoints signed by keys replaced before verify too. */
  readonly previousPublicKeyPems: readonly string[];
  readonly raw: { readonly sealer: RawSealer; readonly revealGroups: readonly string[] } | undefined;
  readonly reexecutions: Reexecutions;
  /** The gateway's own data plane, where re-executions go through the whole pipeline. */
  readonly dataPlaneUrl: () => string;
  /** audit.checkpoint.every, for verification's check that no checkpoint was deleted. */
  readonly checkpointEvery?: number | undefined;
  /** Largest answer body returned by a re-execution. */
  readonly maxAnswerBytes?: number | undefined;
}


// Our own listener, reached on the address it bound: its certificate may be issued for
// a public name only, so the loopback self-call does not check it.
const selfAgent = new Agent({ connect: { rejectUnauthorized: false } });

export function auditRoutes(options: AuditRoutesOptions): readonly AdminRoute[] {
  const { db } = options;
  const found = async (id: string) => {
    const exchange = await getExchange(db, id);
    if (!exchange) throw new GatehouseError('route_not_found', { message: `No session with id "${id}".` });
    return exchange;
  };

  // An attempt to reveal that was refused is what an auditor looks for first.
  const recordRefusedReveal: RefusedRoute = (caller, [id], refusal) => options.log.event(refusedRevealEvent(caller, id ?? '', refusal));

  return [
    ['GET', /^\/api\/alerts$/, async (_req, url) => {
      const q = url.searchParams;
      onlyParams(q, ['since', 'until', 'limit']);
      return { alerts: await listAlerts(db, { since: timeParam(q, 'since'), until: timeParam(q, 'until'), limit: pageLimitParam(q, maxAlertsPage) ?? 100 }) };
    }],
    ['GET', /^\/api\/sessions\/([^/]+)\/replay$/, async (_req, _url, [id]) => {
      const exchange = await found(id!);
      return { session: exchange, timeline: timeline(exchange) };
    }],
    ['POST', /^\/api\/sessions\/([^/]+)\/reexecute$/, async (req, _url, [id]) => {
      const exchange = await found(id!);
      if (exchange.request.method === null || exchange.request.path === null) throw new GatehouseError('reexecute_unavailable', { message: `Session "${id}" has no recorded request line.` });
      if (exchange.request.truncated) throw new GatehouseError('reexecute_unavailable', { message: `Session "${id}" has a truncated request body; it cannot be repeated faithfully.` });
      // No body recorded although one was sent (a binary body is recorded by size only; a
      // refusal may come before the body is read): repeating it would send another request.
      const sent = exchange.request.headers ?? {};
      if (exchange.request.body === null && (exchange.bytesIn > 0 || Number(sent['content-length'] ?? 0) > 0 || sent['transfer-encoding'] !== undefined)) {
        throw new GatehouseError('reexecute_unavailable', { message: `Session "${id}" has no recorded request body (binary, or refused before it was read); it cannot be repeated faithfully.` });
      }
      const identity = await options.identify(bearerToken(req.headers.authorization), req.socket.remoteAddress);
      const token = options.reexecutions.issue(exchange.id);
      const headers: Record<string, string> = { authorization: req.headers.authorization!, 'gatehouse-reexecution': token };
      const contentType = exchange.request.headers?.['content-type'];
      if (contentType) headers['content-type'] = contentType;
      // The caller's own key: identity, policy and recording apply as to any request.
      const res = await request(`${options.dataPlaneUrl()}/c/${encodeURIComponent(exchange.connection)}${exchange.request.path}`, {
        method: exchange.request.method as 'GET',
        headers,
        body: exchange.request.body ?? undefined,
        dispatcher: selfAgent,
      });
      const limit = options.maxAnswerBytes ?? 1024 * 1024;
      let body = '';
      let truncated = false;
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        if (body.length + chunk.length > limit) truncated = true;
        else body += chunk.toString('utf8');
      }
      const newId = res.headers['gatehouse-exchange-id'];
      await options.log.event({ kind: 'exchange.reexecuted', actor: identity.subject, target: exchange.id, details: { exchange: typeof newId === 'string' ? newId : null, status: res.statusCode } });
      return { id: typeof newId === 'string' ? newId : null, reexecutionOf: exchange.id, status: res.statusCode, body, truncated };
    }],
    ['POST', /^\/api\/sessions\/([^/]+)\/reveal$/, async (_req, _url, [id], identity) => {
      const raw = options.raw;
      if (!raw) throw new GatehouseError('reveal_unavailable', { message: 'Raw content is not recorded on this gateway (audit.raw.enabled is false).' });
      if (!identity.groups.some((g) => raw.revealGroups.includes(g))) {
        throw new GatehouseError('access_denied', { message: `${identity.subject} is not in a group allowed to reveal raw content.`, rule: 'audit-reveal-groups' });
      }
      const row = await db.selectFrom('exchanges').select(['id', 'raw_request', 'raw_response']).where('id', '=', id!).executeTakeFirst();
      if (!row) throw new GatehouseError('route_not_found', { message: `No session with id "${id}".` });
      if (row.raw_request === null && row.raw_response === null) throw new GatehouseError('reveal_unavailable', { message: `Session "${id}" has no raw content recorded.` });
      // Durable before anything is shown: no reveal goes unrecorded.
      await options.log.event({ kind: 'exchange.revealed', actor: identity.subject, target: row.id, details: { groups: identity.groups } });
      try {
        return {
          id: row.id,
          request: row.raw_request === null ? null : raw.sealer.open(row.raw_request, row.id),
          response: row.raw_response === null ? null : raw.sealer.open(row.raw_response, row.id),
        };
      } catch (error) {
        throw new GatehouseError('reveal_unavailable', { message: 'The raw content could not be opened with the configured key.', detail: (error as Error).message });
      }
    }, recordRefusedReveal],
    ['GET', /^\/api\/audit\/verify$/, async (_req, url) => {
      const from = url.searchParams.get('from');
      const fromCheckpoint = from === null ? undefined : Number(from);
      if (fromCheckpoint !== undefined && (!Number.isInteger(fromCheckpoint) || fromCheckpoint < 0)) throw new GatehouseError('invalid_query', { message: 'Query parameter "from" must be the seq of a checkpoint.' });
      const notCheckpoint = fromCheckpoint === undefined ? undefined : await fromCheckpointProblem(db, fromCheckpoint);
      if (notCheckpoint) throw new GatehouseError('invalid_query', { message: `Query parameter "from": ${notCheckpoint}.` });
      return verifyChain(db, { publicKeyPem: options.publicKeyPem, previousPublicKeyPems: options.previousPublicKeyPems, fromCheckpoint, checkpointEvery: options.checkpointEvery });
    }],
  ];
}
