// Admin API routes of the policy:
// - POST /api/policy/check: a dry run; the decision, and every rule with each of its
//   criteria and whether it held. Nothing is forwarded, counted or recorded.
// - POST /api/policy/reload: recompiles the policy from the config and policy files;
//   an invalid policy is refused with 400 invalid_policy (naming the rule and field)
//   and the running policy stays. The change is attributed to the admin's subject.
// - GET /api/policy: the running version and rule count.

import type { IncomingMessage } from 'node:http';
import type { ConnectionConfig } from '../config/index.js';
import { GatehouseError } from '../errors/index.js';
import type { IdentityKind } from '../exchange/index.js';
import { PolicyReloadError, type PolicyRuntime } from '../policy/index.js';
import { dryRunExchange } from '../protocols/http/index.js';
import { dryRunStatement } from '../protocols/postgres/index.js';
import type { AdminRoute } from './admin-server.js';
import { parseIsoTime } from '../config/units.js';

const maxCheckBody = 1024 * 1024;
const kinds: readonly IdentityKind[] = ['human', 'service', 'agent'];

export interface PolicyRoutesOptions {
  readonly runtime: PolicyRuntime;
  readonly connections: readonly ConnectionConfig[];
}

export function createPolicyRoutes({ runtime, connections }: PolicyRoutesOptions): AdminRoute[] {
  const typeOf = new Map(connections.map((c) => [c.name, c.type]));
  return [
    ['GET', /^\/api\/policy$/, async () => ({ version: runtime.current().version, ruleCount: runtime.current().ruleCount })],
    ['POST', /^\/api\/policy\/check$/, async (req) => {
      const input = parseCheck(await readJson(req));
      const connectionType = typeOf.get(input.connection);
      if (!connectionType) throw invalid(`No connection named "${input.connection}" is configured on this gateway.`);
      if (connectionType === 'postgres') {
        // `request` is `{ "sql": "…" }`, inspected as the listener would.
        const sql = (input.request as { sql?: unknown } | undefined)?.sql;
        if (input.request !== undefined && typeof sql !== 'string') throw invalid('On a postgres connection "request" must be {"sql": "<one statement>"}.');
        return runtime.current().explain(await dryRunStatement({ ...input, sql: sql as string | undefined }));
      }
      // A JSON request is given as the object; any other body (multipart) as its text, with its contentType.
      if (input.contentType !== undefined && typeof input.request !== 'string') throw invalid('With "contentType", "request" must be the body as a string.');
      const body = input.request === undefined ? undefined : Buffer.from(typeof input.request === 'string' && input.contentType !== undefined ? input.request : JSON.stringify(input.request));
      const exchange = dryRunExchange({ ...input, connectionType, body });
      return runtime.current().explain(exchange);
    }],
    ['POST', /^\/api\/policy\/reload$/, async (_req, _url, _params, admin) => {
      try {
        return runtime.reload(`admin:${admin.subject}`);
      } catch (error) {
        if (error instanceof PolicyReloadError) throw new GatehouseError('invalid_policy', { message: `The policy is not valid; the running policy is unchanged. ${error.message}` });
        throw error;
      }
    }],
  ];
}

interface CheckInput {
  subject: string;
  groups: string[];
  kind: IdentityKind;
  connection: string;
  operation?: string | undefined;
  method?: string | undefined;
  path?: string | undefined;
  at?: number | undefined;
  contentType?: string | undefined;
  request?: unknown;
}

function parseCheck(value: unknown): CheckInput {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid('The body must be a JSON object.');
  const v = value as Record<string, unknown>;
  const str = (name: string, required: boolean): string | undefined => {
    const x = v[name];
    if (x === undefined && !required) return undefined;
    if (typeof x !== 'string' || x === '') throw invalid(`"${name}" must be a non-empty string.`);
    return x;
  };
  const groups = v['groups'] ?? [];
  if (!Array.isArray(groups) || !groups.every((g) => typeof g === 'string')) throw invalid('"groups" must be an array of strings.');
  const kind = (v['kind'] ?? 'service') as IdentityKind;
  if (!kinds.includes(kind)) throw invalid('"kind" must be human, service or agent.');
  const atText = str('at', false);
  const at = atText === undefined ? undefined : parseIsoTime(atText);
  if (atText !== undefined && at === undefined) throw invalid('"at" must be an ISO 8601 time, e.g. 2026-11-23T10:00:00Z.');
  return { subject: str('subject', true)!, groups, kind, connection: str('connection', true)!, operation: str('operation', false), method: str('method', false), path: str('path', false), at, contentType: str('contentType', false), request: v['request'] };
}

function invalid(message: string): GatehouseError {
  return new GatehouseError('invalid_request_body', { message });
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxCheckBody) throw new GatehouseError('request_too_large');
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new GatehouseError('invalid_request_body');
  }
}
