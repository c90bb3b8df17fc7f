import type { Forwarder } from '../../forward/index.js';

/** A configured HTTP connection, as the data plane needs it at request time. */
export interface HttpConnection {
  readonly name: string;
  readonly type: 'openai' | 'http';
  /** The target URL's path, prefixed to every upstream path (e.g. `/v1`). */
  readonly basePath: string;
  readonly forwarder: Forwarder;
  readonly maxRequestBody: number;
  readonly maxResponseBody: number;
  /** Masking profiles applied to every exchange on this connection. */
  readonly masking?: readonly string[] | undefined;
  /** Send the upstream a short-lived signed assertion of who called, in this header. */
  readonly identityAssertion?: { readonly header: string; readonly ttlMs: number } | undefined;
}

/** `/c/<connection>/<rest>` → connection name and the rest (with its query). */
export function parseDataPlanePath(url: string): { connection: string; rest: string } | undefined {
  if (!url.startsWith('/c/')) return undefined;
  const slash = url.indexOf('/', 3);
  const query = url.indexOf('?', 3);
  const end = slash < 0 ? (query < 0 ? url.length : query) : query >= 0 && query < slash ? query : slash;
  const raw = url.slice(3, end);
  const connection = raw.includes('%') ? decodeURIComponentSafe(raw) : raw;
  if (connection === undefined || connection === '') return undefined;
  let rest = url.slice(end);
  if (rest === '' || rest.startsWith('?')) rest = `/${rest}`;
  return { connection, rest };
}

// RFC 3986 §5.2.4 dot segments, also percent-encoded: a target that normalises paths
// would otherwise let `/c/demo/../admin` escape the connection's base path.
const dotSegment = /(?:^|\/)(?:\.|%2e){1,2}(?:\/|\?|$)/i;

/** True when the path has a `.` or `..` segment (plain or percent-encoded). */
export function hasDotSegment(rest: string): boolean {
  const query = rest.indexOf('?');
  const path = query < 0 ? rest : rest.slice(0, query);
  // A dot segment needs a `.` or a `%` (of %2e): most paths have neither.
  if (!path.includes('.') && !path.includes('%')) return false;
  return dotSegment.test(path);
}

/**
 * The path (without the query) as policy sees it: percent-escapes decoded and runs of
 * `/` merged, as most targets resolve a path (nginx, Express, FastAPI …). Otherwise
 * `/model.safetenso%72s` or `//admin/x` would reach the file a rule on `*.safetensors`
 * or `/admin/*` is about, unseen. Returns an error message instead when an escape is
 * malformed, or when decoding reveals a dot segment (`/a%2F..%2Fadmin`).
 */
export function policyPath(rest: string): { path: string } | { error: string } {
  const query = rest.indexOf('?');
  let path = query < 0 ? rest : rest.slice(0, query);
  if (path.includes('%')) {
    try {
      path = decodeURIComponent(path);
    } catch {
      return { error: 'The path has a malformed percent-escape.' };
    }
    if (decodedDotSegment.test(path)) return { error: 'The path contains "." or ".." segments, which could leave the connection.' };
  }
  if (path.includes('//')) path = path.replace(/\/{2,}/g, '/');
  return { path };
}

const decodedDotSegment = /(?:^|[\/\\])\.{1,2}(?:[\/\\]|$)/;

/** Joins a target's base path and a caller's path: `/v1` + `/chat/completions`. */
export function joinUpstreamPath(basePath: string, rest: string): string {
  if (basePath === '' || basePath === '/') return rest;
  return basePath.endsWith('/') ? basePath + rest.slice(1) : basePath + rest;
}

function decodeURIComponentSafe(value: string): string | undefined {
  try {
    return decodeURIComponent(value);
  } catch {
    return undefined;
  }
}
