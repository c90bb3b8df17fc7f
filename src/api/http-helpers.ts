// Small shared pieces of the admin API's HTTP handling: JSON answers, path and query
// parameters with errors in the API's own shape.

import type { ServerResponse } from 'node:http';
import { GatehouseError } from '../errors/index.js';
import { parseIsoTime } from '../config/units.js';

export function sendJson(res: ServerResponse, status: number, value: unknown, headers: Readonly<Record<string, string>> = {}): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

export function decodePathParam(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    throw new GatehouseError('route_not_found', { message: 'The path is not valid percent-encoding.' });
  }
}

export function intParam(q: URLSearchParams, name: string): number {
  const value = Number(q.get(name));
  if (!Number.isInteger(value) || value < 0) throw new GatehouseError('invalid_query', { message: `Query parameter "${name}" must be a non-negative integer.` });
  return value;
}

export function timeParam(q: URLSearchParams, name: string): number | undefined {
  const value = q.get(name);
  if (value === null) return undefined;
  const time = parseIsoTime(value);
  if (time === undefined) throw new GatehouseError('invalid_query', { message: `Query parameter "${name}" must be an ISO 8601 time, e.g. 2026-11-23T10:00:00Z.` });
  return time;
}

/**
 * Refuses a query parameter the route does not take, or one given twice: a misspelt filter
 * (`?subjet=key:ci-bot`) would otherwise be ignored, and the answer list every record
 * as if it were the filtered one.
 */
export function onlyParams(q: URLSearchParams, allowed: readonly string[]): void {
  for (const name of q.keys()) {
    if (!allowed.includes(name)) throw new GatehouseError('invalid_query', { message: `Unknown query parameter "${name}"; this route takes ${allowed.join(', ')}.` });
    // A repeated filter was read as its first value: `text=a&text=b` looked like an AND.
    const count = q.getAll(name).length;
    if (count > 1) throw new GatehouseError('invalid_query', { message: `Query parameter "${name}" is given ${count} times; give each parameter once.` });
  }
}

/** `limit` of a listing: 1 to `max` (a value outside is refused rather than quietly clamped). */
export function pageLimitParam(q: URLSearchParams, max: number): number | undefined {
  if (!q.has('limit')) return undefined;
  const value = Number(q.get('limit'));
  if (!Number.isInteger(value) || value < 1 || value > max) throw new GatehouseError('invalid_query', { message: `Query parameter "limit" must be an integer from 1 to ${max}.` });
  return value;
}

const decisions = ['allow', 'deny', 'require_approval'];

/** `decision`: one of the recorded effects; a misspelt one would match nothing and read as "none found". */
export function decisionParam(q: URLSearchParams): string | undefined {
  const value = q.get('decision');
  if (value === null) return undefined;
  if (!decisions.includes(value)) throw new GatehouseError('invalid_query', { message: `Query parameter "decision" must be one of ${decisions.join(', ')}.` });
  return value;
}
