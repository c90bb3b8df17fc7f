// Header handling between caller and target (RFC 9110 §7.6.1): hop-by-hop headers,
// and any header the Connection header names, are dropped in both directions; the
// caller's credentials and the gateway's own control headers never travel upstream.
// The caller's address is appended to X-Forwarded-For, as a reverse proxy does: what a
// caller sent in that header is kept before it, so a target trusting only the last
// entry (the gateway's) cannot be given a made-up address. When the answer is masked,
// its headers are masked too (maskResponseHeaders). The caller's credential stops here
// whatever header carries it: a client that sends its key twice (an Anthropic SDK's
// `x-api-key` beside `Authorization`, Azure's `api-key`) would otherwise hand it to the
// target, and so does any header holding a Gatehouse API key, which no target can use.

import { validateHeaderValue, type IncomingHttpHeaders } from 'node:http';
import { applyFindings, type EntityCounts, type MaskPlan } from '../../mask/index.js';

const hopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authenticate', 'proxy-authorization']);
const callerOnly = new Set(['authorization', 'host', 'content-length', 'expect', 'cookie']);

const closeToken: ReadonlySet<string> = new Set(['close']);

function connectionTokens(value: string | string[] | undefined): ReadonlySet<string> | undefined {
  if (value === undefined) return undefined;
  const text = Array.isArray(value) ? value.join(',') : value;
  // The usual values, without splitting: `keep-alive` names a header that is dropped anyway.
  if (text.length <= 10) {
    const lower = text.toLowerCase();
    if (lower === 'keep-alive') return undefined;
    if (lower === 'close') return closeToken;
  }
  return new Set(text.split(',').map((t) => t.trim().toLowerCase()).filter(Boolean));
}

export interface UpstreamHeaderOptions {
  /** Force an uncompressed answer, so the gateway can read (record, mask) it. */
  readonly identityEncoding: boolean;
  readonly bodyLength: number | undefined;
  /** The caller's IP address (the socket's), appended to X-Forwarded-For. */
  readonly clientAddress?: string | undefined;
  /** The credential the caller presented (the bearer token): no header carrying it is forwarded. */
  readonly callerCredential?: string | undefined;
}

/** `ghk_<16 id>_<43 secret>` anywhere in a value (identity/api-key-format.ts). */
const gatehouseKey = /ghk_[0-9a-z]{16}_[A-Za-z0-9_-]{43}/;

function carriesCallerCredential(value: string, credential: string | undefined): boolean {
  return (credential !== undefined && credential.length >= 8 && value.includes(credential)) || (value.includes('ghk_') && gatehouseKey.test(value));
}

export function upstreamRequestHeaders(incoming: IncomingHttpHeaders, options: UpstreamHeaderOptions): Record<string, string> {
  const named = connectionTokens(incoming.connection);
  const out: Record<string, string> = {};
  for (const name in incoming) {
    if (hopByHop.has(name) || callerOnly.has(name) || name.startsWith('gatehouse-') || named?.has(name)) continue;
    const value = incoming[name];
    if (value === undefined) continue;
    const joined = Array.isArray(value) ? value.join(', ') : value;
    if (carriesCallerCredential(joined, options.callerCredential)) continue;
    out[name] = joined;
  }
  if (options.identityEncoding) out['accept-encoding'] = 'identity';
  if (options.bodyLength !== undefined) out['content-length'] = String(options.bodyLength);
  if (options.clientAddress !== undefined) {
    const before = out['x-forwarded-for'];
    out['x-forwarded-for'] = before ? `${before}, ${options.clientAddress}` : options.clientAddress;
  }
  return out;
}

export function downstreamResponseHeaders(upstream: Readonly<Record<string, string | string[] | undefined>>): Record<string, string | string[]> {
  const named = connectionTokens(upstream['connection']);
  const out: Record<string, string | string[]> = {};
  for (const name in upstream) {
    const value = upstream[name];
    if (value === undefined || hopByHop.has(name) || named?.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/** The bearer token from `Authorization: Bearer …`, if there is one. */
export function bearerToken(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  const space = authorization.indexOf(' ');
  if (space < 0 || authorization.slice(0, space).toLowerCase() !== 'bearer') return undefined;
  const token = authorization.slice(space + 1).trim();
  return token === '' ? undefined : token;
}

/**
 * The target's answer headers with every value masked by the answer's plan: a header
 * carries values as a body does (`Location: /u?email=ann@example.com`, `X-User-Email`,
 * a cookie's value). A value masked into something a header cannot carry is dropped.
 * The same object when nothing was found.
 */
export function maskResponseHeaders<T extends Readonly<Record<string, string | string[] | undefined>>>(headers: T, plan: MaskPlan, counts: EntityCounts): T | Record<string, string | string[] | undefined> {
  let out: Record<string, string | string[] | undefined> | undefined;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    const masked = Array.isArray(value) ? maskValues(value, plan, counts) : maskValue(value, plan, counts);
    if (masked === value) continue;
    out ??= { ...headers };
    if (masked === undefined || (Array.isArray(masked) && masked.length === 0)) delete out[name];
    else out[name] = masked;
  }
  return out ?? headers;
}

function maskValues(values: string[], plan: MaskPlan, counts: EntityCounts): string[] {
  const masked = values.map((v) => maskValue(v, plan, counts));
  return masked.every((m, i) => m === values[i]) ? values : masked.filter((m): m is string => m !== undefined);
}

function maskValue(value: string, plan: MaskPlan, counts: EntityCounts): string | undefined {
  const findings = plan.find(value);
  if (findings.length === 0) return value;
  const masked = applyFindings(value, findings, counts);
  try {
    validateHeaderValue('x', masked);
    return masked;
  } catch {
    return undefined;
  }
}
