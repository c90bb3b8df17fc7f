// The one schema, shared by SQLite and PostgreSQL. Times are epoch milliseconds,
// JSON is stored as text, booleans as 0/1, so both dialects hold the same values.

import type { ColumnType, Generated } from 'kysely';

export interface ApiKeysTable {
  id: string;
  name: string;
  kind: string;
  groups: string;
  secret_hash: string;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
  last_used_at: number | null;
  /** 1 for a new name, +1 per rotation; unique with name (migration 0004). */
  generation: Generated<number>;
}

export interface IdentityRevocationsTable {
  id: string;
  /** token (value: credential id, e.g. jti:…), subject, user, key (value: key id). */
  kind: string;
  value: string;
  created_at: number;
  /** After this the row can be forgotten (a token's own expiry); null: never. */
  expires_at: number | null;
  reason: string | null;
  revoked_by: string | null;
}

export interface IdentityStateTable {
  name: string;
  value: number;
}

export interface IdentitySamlAssertionsTable {
  /** `<idp issuer> <assertion ID>` */
  id: string;
  expires_at: number;
}

export interface IdentitySigningKeysTable {
  kid: string;
  public_jwk: string;
  created_at: number;
}

export interface ExchangesTable {
  id: string;
  session_id: string;
  seq: Generated<number>;
  protocol: string;
  connection: string;
  operation: string;
  started_at: number;
  ended_at: number | null;
  complete: number;
  subject: string | null;
  identity_kind: string | null;
  auth_method: string | null;
  credential_id: string | null;
  groups: string;
  client_address: string | null;
  decision: string;
  rules: string;
  reason: string | null;
  policy_version: string | null;
  status: number | null;
  error_code: string | null;
  error_detail: string | null;
  model: string | null;
  stream: number;
  method: string | null;
  path: string | null;
  request_headers: string | null;
  request_body: string | null;
  request_truncated: number;
  prompt_text: string | null;
  response_headers: string | null;
  response_body: string | null;
  response_truncated: Generated<number>;
  response_text: string | null;
  usage: string | null;
  bytes_in: Generated<number>;
  bytes_out: Generated<number>;
  ttfb_ms: number | null;
  duration_ms: number | null;
}

export interface Database {
  api_keys: ApiKeysTable;
  exchanges: ExchangesTable;
  identity_revocations: IdentityRevocationsTable;
  identity_state: IdentityStateTable;
  identity_signing_keys: IdentitySigningKeysTable;
  identity_saml_assertions: IdentitySamlAssertionsTable;
}

/** Row types as read back. */
export type ExchangeRow = { [K in keyof ExchangesTable]: ExchangesTable[K] extends ColumnType<infer S, unknown, unknown> ? S : ExchangesTable[K] };
export type ApiKeyRow = { [K in keyof ApiKeysTable]: ApiKeysTable[K] extends ColumnType<infer S, unknown, unknown> ? S : ApiKeysTable[K] };
