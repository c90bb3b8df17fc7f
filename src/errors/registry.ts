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
  approval_required: { status: 403, type: 'permission_error', message: 'This request requires approval. A review is pending; retry with "Gatehouse-Review: <review_id>" once it is approved.' },
  approval_denied: { status: 403, type: 'permission_error', message: 'This request was reviewed and denied.' },
  approval_expired: { status: 403, type: 'permission_error', message: 'The review for this request expired before it was approved, or the approval is no longer usable.' },
  approval_invalid: { status: 403, type: 'permission_error', message: 'The review named in Gatehouse-Review does not approve this request.' },
  review_not_found: { status: 404, type: 'invalid_request_error', message: 'No such review.' },
  review_not_pending: { status: 409, type: 'invalid_request_error', message: 'The review is no longer pending.' },
  review_vote_refused: { status: 403, type: 'permission_error', message: 'You may not vote on this review.' },
  invalid_vote: { status: 400, type: 'invalid_request_error', message: 'The vote is not valid.' },
  masking_failed: { status: 502, type: 'upstream_error', message: 'The answer could not be masked, so it was withheld.' },
  masking_profile_unknown: { status: 500, type: 'server_error', message: 'The exchange names a masking profile that is not configured, so it was not forwarded.' },
  response_blocked: { status: 403, type: 'permission_error', message: 'The answer was blocked by a response guardrail.' },
  embeddings_blocked: { status: 403, type: 'permission_error', message: 'Raw embedding vectors are not available to this caller.' },
  // PostgreSQL wire-protocol adapter (src/protocols/postgres); SQLSTATEs in its errors.ts.
  protocol_violation: { status: 400, type: 'invalid_request_error', message: 'The client sent a malformed or unexpected protocol message.' },
  tls_required: { status: 403, type: 'permission_error', message: 'This listener requires TLS: connect with sslmode=require or stricter.' },
  user_mismatch: { status: 401, type: 'authentication_error', message: 'The user name does not match the credential presented as the password.' },
  database_not_found: { status: 404, type: 'invalid_request_error', message: 'No such database on this connection.' },
  sql_unparseable: { status: 400, type: 'invalid_request_error', message: 'The SQL could not be parsed, so it was not forwarded.' },
  sql_not_supported: { status: 400, type: 'invalid_request_error', message: 'This statement or protocol feature is not supported through the gateway.' },
  row_limit_exceeded: { status: 403, type: 'permission_error', message: 'The query returned more rows than this connection allows.' },
  statement_timeout: { status: 504, type: 'upstream_error', message: 'The statement ran longer than the connection allows and was cancelled.' },
  rate_limited: { status: 429, type: 'rate_limit_error', message: 'A rate limit was reached. Retry later.' },
  invalid_policy: { status: 400, type: 'invalid_request_error', message: 'The policy is not valid; the running policy is unchanged.' },
  limits_unavailable: { status: 503, type: 'server_error', message: 'Limits could not be checked, so the request was refused.' },
  internal_error: { status: 500, type: 'server_error', message: 'Internal gateway error.' },
} as const satisfies Record<string, { status: number; type: string; message: string }>;

export type ErrorCode = keyof typeof errorRegistry;

export const errorCodes = Object.keys(errorRegistry) as ErrorCode[];
