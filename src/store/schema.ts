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
  review_id: Generated<string | null>;
  reexecution_of: Generated<string | null>;
  /** JSON [[msSinceStart, bytes], …], bounded (see audit/chunk-timings.ts). */
  chunk_timings: Generated<string | null>;
  /** AES-256-GCM sealed raw request / answer, only when audit.raw is enabled. */
  raw_request: Generated<string | null>;
  raw_response: Generated<string | null>;
}

export interface AuditEventsTable {
  seq: number;
  id: string;
  at: number;
  writer: string;
  kind: string;
  actor: string | null;
  target: string | null;
  details: string;
  prev_hash: string;
  hash: string;
}

export interface AuditHeadTable {
  id: number;
  seq: number;
  hash: string;
  checkpoint_seq: number;
  checkpoint_at: number;
}

export interface AuditCheckpointsTable {
  seq: number;
  hash: string;
  at: number;
  key_id: string;
  signature: string;
}

export interface Database {
  api_keys: ApiKeysTable;
  exchanges: ExchangesTable;
  audit_events: AuditEventsTable;
  audit_head: AuditHeadTable;
  audit_checkpoints: AuditCheckpointsTable;
}

/** Row types as read back. */
export type ExchangeRow = { [K in keyof ExchangesTable]: ExchangesTable[K] extends ColumnType<infer S, unknown, unknown> ? S : ExchangesTable[K] };
export type ApiKeyRow = ApiKeysTable;
export type AuditEventRow = AuditEventsTable;
export type AuditCheckpointRow = AuditCheckpointsTable;
