import { errorRegistry } from '../../errors/index.js';
import type { Forwarder } from '../../forward/index.js';
import type { CredentialEchoForms } from './credential-echo.js';

/** A configured HTTP connection, as the data plane needs it at request time. */
export interface HttpConnection {
  readonly name: string;
  readonly type: 'openai' | 'http';
  /** The target URL's path, prefixed to every upstream path (e.g. `/v1`). */
  readonly basePath: string;
  /** The target URL's query, sent on every request (joinUpstreamPath). */
  readonly baseQuery?: string | undefined;
  readonly forwarder: Forwarder;
  readonly maxRequestBody: number;
  readonly maxResponseBody: number;
  /**
   * The credential the gateway injects (its forms): every answer is scanned for it and
   * each occurrence replaced (credential-echo.ts). Undefined: the gateway injects none.
   */
  readonly credentialEcho?: CredentialEchoForms | undefined;
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

// RFC 3986 §5.2.4 dot segments, however a target may read them: WHATWG URL parsers
// (`new URL`) take `\` for `/` and `%2e` for `.`, servlet containers drop `;params`,
// some targets decode `%2f` or decode twice. So a `.` or `..` segment counts between
// any of `/ \` and `/ \ ; ? #` or the end, in the path and in each percent-decoding
// of it: `/c/demo/..\admin` or `/c/demo/%252e%252e/admin` would otherwise escape the
// connection's base path on such a target.
const dotSegment = /(?:^|[/\\])\.{1,2}(?:[/\\;?#]|$)/;
const asciiEscape = /%([0-7][0-9a-f])/gi;

/** True when the path has a `.` or `..` segment (plain or percent-encoded, once or more). */
export function hasDotSegment(rest: string): boolean {
  const query = rest.indexOf('?');
  let path = query < 0 ? rest : rest.slice(0, query);
  // A dot segment needs a `.` or a `%` (of %2e): most paths have neither.
  if (!path.includes('.') && !path.includes('%')) return false;
  for (let round = 0; round < 4; round++) {
    if (dotSegment.test(path)) return true;
    // Only ASCII escapes can make a dot or a separator.
    const decoded = path.replace(asciiEscape, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
    if (decoded === path) return false;
    path = decoded;
  }
  return true; // still encoded after four rounds: nobody needs that, refuse it
}

/**
 * The path (without the query) as targets route it, for the operation and the `path`
 * fact that policy sees: percent-escapes decoded (uvicorn or Go's net/http route
 * `/chat/%63ompletions` and `/chat%2Fcompletions` as `/chat/completions`), runs of `/`
 * merged and trailing slashes dropped (nginx, Express, FastAPI …). Otherwise an
 * encoded or respelled path was a different operation or path to the gateway, whose
 * guardrails and path rules then did not apply (`/model.safetenso%72s`, `//admin/x`),
 * and the same endpoint to the target. Spellings some targets read alike are read alike:
 * `\` taken for `/`. The path is forwarded as sent. An error message instead when it has a
 * dot segment, encoded or not (hasDotSegment), a `#` or a `;`, a malformed escape or an
 * encoded NUL.
 */
export function policyPath(rest: string): { path: string } | { error: string } {
  // A request target has no fragment (RFC 9112 §3.2), but targets that parse it as a URL
  // (Node's url.parse, httptools) route `/chat/completions#x` as `/chat/completions`.
  if (rest.includes('#')) return { error: 'The path has a "#": a request has no fragment; percent-encode it (%23) if it is part of the path.' };
  if (hasDotSegment(rest)) return { error: errorRegistry.invalid_path.message };
  const query = rest.indexOf('?');
  let path = query < 0 ? rest : rest.slice(0, query);
  // Servlet containers drop `;params` from each segment (`/admin;x/users` is `/admin/users`
  // to them), other targets keep them (`/model;x.bin` is a file of its own): no one
  // spelling is safe for rules to read, so a raw `;` is refused (`%3B` is a plain character).
  if (path.includes(';')) return { error: 'The path has a ";", which targets read differently (path parameters); percent-encode it (%3B) if it is part of a name.' };
  if (path.includes('%')) {
    const decoded = decodeURIComponentSafe(path);
    if (decoded === undefined) return { error: 'The path has a malformed percent-escape.' };
    // Targets written in C (and some file APIs) end a path at NUL: `model.safetensors%00.txt`.
    if (decoded.includes('\u0000')) return { error: 'The path has an encoded NUL character (%00).' };
    path = decoded;
  }
  // WHATWG URL parsers (`new URL`) take `\` for `/`: `/chat\completions` is `/chat/completions` to them.
  if (path.includes('\\')) path = path.replaceAll('\\', '/');
  if (path.includes('//')) path = path.replace(/\/{2,}/g, '/');
  if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
  return { path };
}

/**
 * Joins a target's base path and a caller's path: `/v1` + `/chat/completions`. A target
 * URL's query (`baseQuery`, e.g. Azure OpenAI's `api-version=2024-06-01`) is sent on
 * every request, first; a caller's parameter of the same name is left out, so the
 * operator's value is the one the target reads. It used to be dropped without a word.
 */
export function joinUpstreamPath(basePath: string, rest: string, baseQuery = ''): string {
  const joined = basePath === '' || basePath === '/' ? rest : basePath.endsWith('/') ? basePath + rest.slice(1) : basePath + rest;
  if (baseQuery === '') return joined;
  const mark = joined.indexOf('?');
  if (mark < 0) return `${joined}?${baseQuery}`;
  const fixed = new Set(new URLSearchParams(baseQuery).keys());
  const callers = joined
    .slice(mark + 1)
    .split('&')
    .filter((pair) => pair !== '' && !fixed.has(new URLSearchParams(pair).keys().next().value ?? ''));
  return `${joined.slice(0, mark)}?${[baseQuery, ...callers].join('&')}`;
}

/** A target URL's query as sent (without `?`), '' without one. */
export function targetQuery(target: URL): string {
  return target.search.replace(/^\?/, '');
}

/** decodeURIComponent, or undefined for a malformed escape (instead of a URIError). */
export function decodeURIComponentSafe(value: string): string | undefined {
  try {
    return decodeURIComponent(value);
  } catch {
    return undefined;
  }
}
