import type { GatehouseConfig } from '../config/index.js';
import { createLocalHttpForwarder } from '../forward/index.js';
import type { HttpConnection } from '../protocols/http/index.js';

/** One HttpConnection (with its own keep-alive pool) per configured connection. */
export function buildHttpConnections(config: GatehouseConfig): Map<string, HttpConnection> {
  const connections = new Map<string, HttpConnection>();
  for (const c of config.connections) {
    if (c.type === 'postgres') continue; // its own listener: build-postgres-connections.ts
    const target = new URL(c.target);
    const credential = c.credential ? { header: c.credential.header, value: c.credential.scheme ? `${c.credential.scheme} ${c.credential.secret}` : c.credential.secret } : undefined;
    connections.set(c.name, {
      name: c.name,
      type: c.type,
      basePath: target.pathname.replace(/\/+$/, ''),
      maxRequestBody: c.limits.maxRequestBody ?? config.gateway.maxRequestBody,
      maxResponseBody: c.limits.maxResponseBody ?? config.gateway.maxResponseBody,
      masking: c.masking,
      identityAssertion: c.identityAssertion ? { header: c.identityAssertion.header.toLowerCase(), ttlMs: c.identityAssertion.ttl } : undefined,
      forwarder: createLocalHttpForwarder({
        name: c.name,
        origin: target.origin,
        credential,
        ca: c.tls?.ca,
        rejectUnauthorized: c.tls?.rejectUnauthorized ?? true,
        connectTimeoutMs: c.timeouts.connect,
        headersTimeoutMs: c.timeouts.headers,
        bodyTimeoutMs: c.timeouts.body,
      }),
    });
  }
  return connections;
}
