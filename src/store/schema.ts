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
  /** JSON of the decision's obligations (0005_policy_obligations). */
  obligations: string | null;
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
  /** How an approval let this exchange pass (migration 0009): held | retry | grant. */
  approval_via: ColumnType<string | null, string | null | undefined, string | null>;
  masking_counts?: string | null;
  /** The review that let this exchange pass (migration 0003, set by approvals). */
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
  reviews: ReviewsTable;
  review_votes: ReviewVotesTable;
  review_grants: ReviewGrantsTable;
  identity_revocations: IdentityRevocationsTable;
  identity_state: IdentityStateTable;
  identity_signing_keys: IdentitySigningKeysTable;
  identity_saml_assertions: IdentitySamlAssertionsTable;
  audit_events: AuditEventsTable;
  audit_head: AuditHeadTable;
  audit_checkpoints: AuditCheckpointsTable;
  record_journal: RecordJournalTable;
  audit_sink_cursors: AuditSinkCursorsTable;
}

/** How far each audit sink has taken the chain (migration 0014, src/audit/sink-delivery.ts). */
export interface AuditSinkCursorsTable {
  /** `file:<digest of the path>`, `webhook:<digest of the URL>`, `stdout`. */
  sink: string;
  /** The last seq the sink took. */
  delivered_seq: number;
  updated_at: number;
}

/** How far each record journal segment has been applied (migration 0011, src/audit/journal/). */
export interface RecordJournalTable {
  segment: string;
  /** Bytes of the segment applied. */
  applied: number;
  /** 1 once the segment's last line is applied; the file is then deleted. */
  done: number;
}

/** Row types as read back. */
export type ExchangeRow = { [K in keyof ExchangesTable]: ExchangesTable[K] extends ColumnType<infer S, unknown, unknown> ? S : ExchangesTable[K] };

/** Approvals (migration 0009): see src/approvals/. */
export interface ReviewsTable {
  id: string;
  state: string;
  subject: string;
  identity_kind: string | null;
  connection: string;
  operation: string;
  digest: string;
  policy_version: string;
  rules: string;
  reviewer_groups: string;
  min_approvals: number;
  justification: string | null;
  exchange_id: string | null;
  model: string | null;
  prompt_preview: string | null;
  created_at: number;
  expires_at: number;
  decided_at: number | null;
  decided_by: string | null;
  usable_until: number | null;
  grant_ms: number | null;
  executed_at: number | null;
  executed_by_exchange: string | null;
  /** The API key that asked (migration 0017); null: none (an identity provider's subject), or opened before. */
  api_key: string | null;
}

export interface ReviewVotesTable {
  review_id: string;
  voter: string;
  voter_groups: string;
  vote: string;
  comment: string | null;
  grant_ms: number | null;
  via: string;
  created_at: number;
}

export interface ReviewGrantsTable {
  review_id: string;
  subject: string;
  connection: string;
  operation: string;
  /** The deciding rules (JSON), so a grant for one rule never covers another. */
  rules: string;
  created_at: number;
  expires_at: number;
  /** As ReviewsTable.api_key, from the review that gave it. */
  api_key: string | null;
}

export type ReviewRow = ReviewsTable;
export type ReviewVoteRow = ReviewVotesTable;
export type ApiKeyRow = { [K in keyof ApiKeysTable]: ApiKeysTable[K] extends ColumnType<infer S, unknown, unknown> ? S : ApiKeysTable[K] };
export type AuditEventRow = AuditEventsTable;
export type AuditCheckpointRow = AuditCheckpointsTable;
