// Admin API routes for identity (admin groups required, like every /api route):
//   GET  /api/whoami                the caller's subject, kind, groups and method
//   GET  /api/revocations           every revocation, newest first
//   POST /api/revocations           {"kind":"token|subject|user|key|signing-key","value":"…","reason"?:"…"}
//   POST /api/revocations/<id>/lift lifts one (e.g. re-enables a user)
// A key revocation also marks the API key revoked. Each takes effect on this gateway
// at once and on every gateway sharing the store within a second, and commits with its
// audit event in one transaction (nothing changes unless the event is chained).

import type { IncomingMessage } from 'node:http';
import type { ChainedChange } from '../audit/index.js';
import { GatehouseError } from '../errors/index.js';
import { apiKeyReference, liftChained, revocationKinds, revocationValue, revokeChained, revokeKeysChained, type ApiKeyService, type RevocationKind, type RevocationService, type SubjectSources } from '../identity/index.js';

import type { AdminRoute } from './admin-server.js';

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > 16 * 1024) throw new GatehouseError('request_too_large');
    chunks.push(chunk);
  }
  try {
    const value = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new GatehouseError('invalid_request_body', { message: 'The request body must be a JSON object.' });
}

/** `change` is the gateway's AuditLog.change: each act commits with its event. */
export function identityAdminRoutes(revocations: RevocationService, apiKeys: ApiKeyService, change: ChainedChange, sources?: SubjectSources): AdminRoute[] {
  return [
    ['GET', /^\/api\/whoami$/, async (_req, _url, _params, caller) => ({ subject: caller.subject, kind: caller.kind, groups: caller.groups, method: caller.method })],
    ['GET', /^\/api\/revocations$/, async () => ({ revocations: await revocations.list() })],
    ['POST', /^\/api\/revocations$/, async (req, _url, _params, caller) => {
      const body = await readJson(req);
      const { kind, value, reason } = body;
      if (typeof kind !== 'string' || !(revocationKinds as readonly string[]).includes(kind)) {
        throw new GatehouseError('invalid_request_body', { message: `"kind" must be one of ${revocationKinds.join(', ')}.` });
      }
      if (typeof value !== 'string' || value.trim() === '') throw new GatehouseError('invalid_request_body', { message: '"value" must be a non-empty string.' });
      if (reason !== undefined && typeof reason !== 'string') throw new GatehouseError('invalid_request_body', { message: '"reason" must be a string.' });
      // PostgreSQL's text cannot hold U+0000: on a PostgreSQL store such a revocation
      // failed with 500 internal_error, after the caller had been told nothing useful.
      if (value.includes('\u0000') || reason?.includes('\u0000')) throw new GatehouseError('invalid_request_body', { message: '"value" and "reason" must not contain the character U+0000.' });
      let target = value;
      if (kind !== 'key') {
        try {
          target = revocationValue(kind as RevocationKind, value, sources);
        } catch (error) {
          if (error instanceof RangeError) throw new GatehouseError('invalid_request_body', { message: `Cannot revoke ${kind}: ${error.message}.` });
          throw error;
        }
      }
      if (target.length > 512) throw new GatehouseError('invalid_request_body', { message: '"value" must be at most 512 characters.' });
      if (kind === 'key') {
        // by name: every live key of the name (both keys during a rotation)
        const revoked = await revokeKeysChained(change, { apiKeys, revocations }, value, caller.subject, reason);
        if (revoked.length === 0) throw new GatehouseError('route_not_found', { message: `No live API key with id or name "${apiKeyReference(value)}".` });
        const records = revoked.map((r) => r.revocation);
        return { revocation: records[0], revocations: records };
      }
      let record;
      try {
        record = await revokeChained(change, revocations, { kind: kind as RevocationKind, value: target, reason, revokedBy: caller.subject });
      } catch (error) {
        if (error instanceof RangeError) throw new GatehouseError('invalid_request_body', { message: `Cannot revoke ${kind}: ${error.message}.` });
        throw error;
      }
      return { revocation: record };
    }],
    ['POST', /^\/api\/revocations\/([^/]+)\/lift$/, async (_req, _url, [id], caller) => {
      if (!(await liftChained(change, revocations, id!, caller.subject))) throw new GatehouseError('route_not_found', { message: `No revocation with id "${id}".` });
      return { lifted: id };
    }],
  ];
}
