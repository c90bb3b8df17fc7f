// OpenID Connect Discovery 1.0 §4: fetch `<issuer>/.well-known/openid-configuration`,
// and check that the document's `issuer` is exactly the configured one (§4.3), so a
// misrouted or spoofed document cannot lend its keys to another issuer.
// Bounded: 5 s by default, 256 KiB at most.

import { GatehouseError } from '../../errors/index.js';

const maxDocumentBytes = 256 * 1024;

export interface DiscoveryDocument {
  readonly issuer: string;
  readonly jwks_uri: string;
  readonly [key: string]: unknown;
}

export function discoveryUrl(issuer: string): string {
  return `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
}

export async function fetchBoundedJson(url: string, timeoutMs: number): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'error', headers: { accept: 'application/json' } });
  } catch (error) {
    // undici says only "fetch failed"; the operator needs the socket error under it.
    throw new Error(describeFetchFailure(error), { cause: error });
  }
  if (!res.ok) throw new Error(`${url} answered ${res.status}`);
  const declared = Number(res.headers.get('content-length') ?? 0);
  if (declared > maxDocumentBytes) throw new Error(`${url} is larger than ${maxDocumentBytes} bytes`);
  const text = await res.text();
  if (text.length > maxDocumentBytes) throw new Error(`${url} is larger than ${maxDocumentBytes} bytes`);
  return JSON.parse(text) as unknown;
}

function describeFetchFailure(error: unknown): string {
  const cause = (error as { cause?: unknown }).cause as { code?: unknown; message?: unknown } | undefined;
  const message = (error as Error).message;
  if (!cause || typeof cause.message !== 'string') return message;
  return `${message}: ${typeof cause.code === 'string' && !cause.message.includes(cause.code) ? `${cause.code} ` : ''}${cause.message}`;
}

export async function discover(issuer: string, timeoutMs: number): Promise<DiscoveryDocument> {
  let doc: unknown;
  try {
    doc = await fetchBoundedJson(discoveryUrl(issuer), timeoutMs);
  } catch (error) {
    throw new GatehouseError('identity_provider_unavailable', { detail: `discovery for ${issuer} failed: ${(error as Error).message}` });
  }
  const d = doc as Partial<DiscoveryDocument> | null;
  if (!d || typeof d !== 'object' || d.issuer !== issuer || typeof d.jwks_uri !== 'string' || !URL.canParse(d.jwks_uri)) {
    throw new GatehouseError('identity_provider_unavailable', { detail: `discovery document for ${issuer} is invalid (issuer must equal the configured issuer, jwks_uri must be a URL)` });
  }
  return d as DiscoveryDocument;
}
