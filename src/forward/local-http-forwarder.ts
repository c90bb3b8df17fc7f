// Local forwarder: undici keep-alive pool per connection, target credential injected
// here, upstream failures mapped to typed errors (502 unreachable / failed, 504 timeout).

import { Pool, errors as undiciErrors } from 'undici';
import { GatehouseError } from '../errors/index.js';
import type { ForwardRequest, ForwardResponse, Forwarder } from './forwarder.js';
import { ForwardHandler } from './upstream-answer.js';

export interface LocalHttpTarget {
  readonly name: string;
  readonly origin: string;
  readonly credential?: { readonly header: string; readonly value: string } | undefined;
  readonly ca?: string | undefined;
  readonly rejectUnauthorized: boolean;
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
}

/** What a connection's config (the gateway's or the agent's) says about an HTTP target. */
export interface HttpTargetConfig {
  readonly name: string;
  readonly tls?: { readonly ca?: string | undefined; readonly rejectUnauthorized?: boolean | undefined } | undefined;
  readonly timeouts: { readonly connect: number; readonly headers: number; readonly body: number };
}

/** The local forwarder for a configured connection, wherever it runs (gateway or agent). */
export function localForwarderFor(c: HttpTargetConfig, origin: string, credential: LocalHttpTarget['credential']): Forwarder {
  return createLocalHttpForwarder({
    name: c.name,
    origin,
    credential,
    ca: c.tls?.ca,
    rejectUnauthorized: c.tls?.rejectUnauthorized ?? true,
    connectTimeoutMs: c.timeouts.connect,
    headersTimeoutMs: c.timeouts.headers,
    bodyTimeoutMs: c.timeouts.body,
  });
}

export function createLocalHttpForwarder(target: LocalHttpTarget): Forwarder {
  const pool = new Pool(target.origin, {
    connections: 256,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    connect: {
      timeout: target.connectTimeoutMs,
      ...(target.ca === undefined ? {} : { ca: target.ca }),
      rejectUnauthorized: target.rejectUnauthorized,
    },
  });
  const credentialHeader = target.credential?.header.toLowerCase();

  return {
    async forward(request: ForwardRequest): Promise<ForwardResponse> {
      // Copied key by key, not spread: a spread object with a key added gets a hidden class of
      // its own in V8 (Node 20), every request.
      const headers: Record<string, string> = {};
      for (const name in request.headers) headers[name] = request.headers[name]!;
      if (credentialHeader !== undefined) headers[credentialHeader] = target.credential!.value;
      // dispatch with a handler of our own (upstream-answer.ts), not request(): the body
      // reaches the relay without a stream in between.
      try {
        return await new Promise<ForwardResponse>((resolve, reject) => {
          const handler = new ForwardHandler(request.signal, resolve, reject);
          pool.dispatch(
            {
              method: request.method as 'GET',
              path: request.path,
              headers,
              body: request.body ?? null,
              headersTimeout: target.headersTimeoutMs,
              bodyTimeout: target.bodyTimeoutMs,
            },
            handler,
          );
        });
      } catch (error) {
        throw mapUpstreamError(error, target.name);
      }
    },
    close: () => pool.close(),
  };
}

/** Maps an undici / socket failure to the gateway's error codes. */
export function mapUpstreamError(error: unknown, connection: string): GatehouseError {
  if (error instanceof GatehouseError) return error;
  const code = (error as { code?: string }).code ?? '';
  const detail = `connection ${connection}: ${code || (error as Error).name}: ${(error as Error).message}`;
  if (error instanceof undiciErrors.ConnectTimeoutError || error instanceof undiciErrors.HeadersTimeoutError || error instanceof undiciErrors.BodyTimeoutError) {
    return new GatehouseError('upstream_timeout', { detail, cause: error });
  }
  // Connection refused, no route, no such host, or the target's certificate failed
  // verification (OpenSSL X509 codes such as UNABLE_TO_VERIFY_LEAF_SIGNATURE).
  if (['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN'].includes(code) || /CERT|SSL|TLS|UNABLE_TO|VERIFY/.test(code)) {
    return new GatehouseError('upstream_unreachable', { detail, cause: error });
  }
  return new GatehouseError('upstream_failed', { detail, cause: error });
}
