// The HTTP listeners' timeouts for receiving a request (docs/security.md, Bounded input):
// headers within 30 s, the whole request within `requestTimeoutMs` (5 minutes), idle
// keep-alive sockets closed after 65 s. Node enforces headersTimeout and requestTimeout
// only when it checks its connections, every connectionsCheckingInterval (30 s by
// default): a slow client's headers were cut after up to 60 s, not 30. Checking every
// sixth of the shorter limit keeps each within a sixth of its value (35 s for headers);
// the check walks the open connections, which maxConnections bounds.

export interface ListenerTimeouts {
  readonly requestTimeout: number;
  readonly headersTimeout: number;
  readonly keepAliveTimeout: number;
  readonly connectionsCheckingInterval: number;
}

export function listenerTimeouts(requestTimeoutMs: number): ListenerTimeouts {
  const headersTimeout = Math.min(30_000, requestTimeoutMs);
  return {
    requestTimeout: requestTimeoutMs,
    headersTimeout,
    keepAliveTimeout: 65_000,
    connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.floor(headersTimeout / 6))),
  };
}
