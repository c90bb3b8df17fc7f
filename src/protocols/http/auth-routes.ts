// Identity endpoints on the data-plane listener (callers that need a token are the
// callers of the data plane; the admin listener is often private):
//   POST /auth/token             exchange an IdP token or an API key (bearer) for a
//                                short-lived Gatehouse token scoped to connections and
//                                operations (RFC 6749 §5.1 response shape);
//   GET  /.well-known/jwks.json  every gateway's public token-signing keys.
// A Gatehouse token cannot be exchanged for another: renewal goes back to the IdP or
// key, so revoking those ends the chain.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseDuration } from '../../config/index.js';
import { GatehouseError, isGatehouseError } from '../../errors/index.js';
import type { Identity } from '../../exchange/index.js';
import type { RecordAuthRefusal } from '../../identity/auth-refusal.js';
import type { GatewayTokens } from '../../identity/gateway-tokens/gateway-tokens.js';
import { bearerToken } from './headers.js';
import { readBody } from './read-body.js';
import { writeError } from './write-error.js';

export interface AuthRoutesOptions {
  readonly identify: (credential: string | undefined, client?: string) => Promise<Identity>;
  readonly tokens: GatewayTokens;
  readonly connections: ReadonlySet<string>;
  readonly defaultTtlMs: number;
  readonly maxTtlMs: number;
  readonly onIssued?: (identity: Identity, jti: string, connections: readonly string[]) => void;
  /** Chains a refused credential (401) before it is answered: a failed authentication on record. */
  readonly recordRefusal?: RecordAuthRefusal | undefined;
  /** Told when a refusal could not be recorded (the refusal stands). */
  readonly onRecordFailed?: ((error: unknown) => void) | undefined;
}

const maxTokenRequestBytes = 16 * 1024;
const opPattern = /^[\x21-\x7e][\x20-\x7e]{0,199}$/;

function invalid(message: string): GatehouseError {
  return new GatehouseError('token_request_invalid', { message });
}

function parseRequest(body: Buffer, options: AuthRoutesOptions) {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw invalid('The token request body must be JSON: {"connections": ["name"], "operations"?: [...], "ttl"?: "15m"}.');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalid('The token request body must be a JSON object.');
  const { connections, operations, ttl } = value as Record<string, unknown>;
  if (!Array.isArray(connections) || connections.length === 0 || connections.length > 100 || !connections.every((c) => typeof c === 'string')) {
    throw invalid('"connections" must be a non-empty list of connection names.');
  }
  const unknown = connections.filter((c) => !options.connections.has(c));
  if (unknown.length > 0) throw invalid(`Unknown connection(s): ${unknown.slice(0, 5).map((c) => JSON.stringify(c.slice(0, 64))).join(', ')}.`);
  if (operations !== undefined && (!Array.isArray(operations) || operations.length > 100 || !operations.every((o) => typeof o === 'string' && opPattern.test(o)))) {
    throw invalid('"operations" must be a list of operation names (e.g. "chat.completions"), or "*".');
  }
  let ttlMs = options.defaultTtlMs;
  if (ttl !== undefined) {
    const parsed = typeof ttl === 'string' || typeof ttl === 'number' ? parseDuration(typeof ttl === 'number' ? `${ttl}s` : ttl) : undefined;
    if (parsed === undefined || parsed < 1000) throw invalid('"ttl" must be a duration of at least 1s (e.g. "10m", or seconds as a number).');
    if (parsed > options.maxTtlMs) throw invalid(`"ttl" may be at most ${options.maxTtlMs / 1000}s on this gateway.`);
    ttlMs = parsed;
  }
  return { connections: [...new Set(connections as string[])], operations: operations as string[] | undefined, ttlMs };
}

/** Returns a handler that answers the identity routes and false for anything else. */
export function createAuthRoutes(options: AuthRoutesOptions) {
  return function handleAuthRoute(req: IncomingMessage, res: ServerResponse): boolean {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (path === '/.well-known/jwks.json') {
      if (req.method !== 'GET' && req.method !== 'HEAD') writeError(res, new GatehouseError('method_not_allowed', { message: 'Use GET for /.well-known/jwks.json.' }));
      else void options.tokens.jwks().then(
        (jwks) => send(res, 200, jwks, { 'cache-control': 'public, max-age=60' }),
        (error: unknown) => writeError(res, new GatehouseError('store_unavailable', { detail: String(error) })),
      );
      return true;
    }
    if (path !== '/auth/token') return false;
    void (async () => {
      if (req.method !== 'POST') throw new GatehouseError('method_not_allowed', { message: 'Use POST for /auth/token.' });
      const identity = await options.identify(bearerToken(req.headers.authorization), req.socket.remoteAddress);
      if (identity.method === 'gateway_token') throw invalid('A Gatehouse token cannot be exchanged for another; present your identity provider token or API key.');
      const request = parseRequest(await readBody(req, maxTokenRequestBytes), options);
      const scope = { connections: request.connections, ...(request.operations ? { operations: request.operations } : {}) };
      const issued = await options.tokens.issue(identity, scope, request.ttlMs);
      options.onIssued?.(identity, issued.jti, request.connections);
      send(res, 200, {
        access_token: issued.token,
        token_type: 'Bearer',
        expires_in: issued.expiresIn,
        jti: issued.jti,
        scope,
      }, { 'cache-control': 'no-store' });
    })().catch(async (error: unknown) => {
      const failure = isGatehouseError(error) ? error : new GatehouseError('internal_error', { detail: String(error) });
      if (failure.status === 401 && options.recordRefusal) {
        await options.recordRefusal({ listener: 'data', request: `${req.method ?? 'POST'} /auth/token`, error: failure, client: req.socket.remoteAddress }).catch((cause: unknown) => options.onRecordFailed?.(cause));
      }
      writeError(res, failure);
    });
    return true;
  };
}

function send(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}
