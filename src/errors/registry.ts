// One registry of every error a caller or operator can see: a stable code, the HTTP
// status it maps to, and its public message. Each protocol adapter maps a GatehouseError
// to its own wire shape from this table; docs/errors.md is kept in step by a test.

export const errorRegistry = {
  unauthenticated: { status: 401, type: 'authentication_error', message: 'No credential was presented. Send "Authorization: Bearer <key>".' },
  invalid_credential: { status: 401, type: 'authentication_error', message: 'The credential presented is not valid.' },
  credential_expired: { status: 401, type: 'authentication_error', message: 'The credential presented has expired.' },
  credential_revoked: { status: 401, type: 'authentication_error', message: 'The credential presented has been revoked.' },
  access_denied: { status: 403, type: 'permission_error', message: 'Access denied by policy.' },
  connection_not_found: { status: 404, type: 'invalid_request_error', message: 'No such connection.' },
  route_not_found: { status: 404, type: 'invalid_request_error', message: 'No such route.' },
  method_not_allowed: { status: 405, type: 'invalid_request_error', message: 'The method is not allowed on this route.' },
  invalid_path: { status: 400, type: 'invalid_request_error', message: 'The path contains "." or ".." segments, which could leave the connection.' },
  request_too_large: { status: 413, type: 'invalid_request_error', message: 'The request body exceeds the configured limit.' },
  invalid_query: { status: 400, type: 'invalid_request_error', message: 'A query parameter is not valid.' },
  invalid_request_body: { status: 400, type: 'invalid_request_error', message: 'The request body is not valid JSON.' },
  response_too_large: { status: 502, type: 'upstream_error', message: 'The upstream response exceeds the configured limit.' },
  upstream_unreachable: { status: 502, type: 'upstream_error', message: 'The upstream could not be reached.' },
  upstream_failed: { status: 502, type: 'upstream_error', message: 'The upstream connection failed while answering.' },
  upstream_timeout: { status: 504, type: 'upstream_error', message: 'The upstream did not answer in time.' },
  client_closed: { status: 499, type: 'client_error', message: 'The client closed the connection before the answer was complete.' },
  recording_failed: { status: 503, type: 'server_error', message: 'The exchange could not be recorded, so it was not forwarded.' },
  store_unavailable: { status: 503, type: 'server_error', message: 'The store does not answer.' },
  agent_unavailable: { status: 503, type: 'server_error', message: 'No agent serving this connection is connected to the gateway.' },
  agent_disconnected: { status: 502, type: 'upstream_error', message: 'The agent carrying the exchange disconnected before the answer was complete.' },
  internal_error: { status: 500, type: 'server_error', message: 'Internal gateway error.' },
} as const satisfies Record<string, { status: number; type: string; message: string }>;

export type ErrorCode = keyof typeof errorRegistry;

export const errorCodes = Object.keys(errorRegistry) as ErrorCode[];
