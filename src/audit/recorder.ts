// The recorder: every exchange, allowed or denied, becomes a row.
// - open(): written and committed before the request is forwarded;
// - finish(): written and committed before the last byte is released to the client;
// - a denial is one write with the decision and the error.
// Headers are recorded through an allow-list (recordable-headers.ts); bodies are
// capped at `maxBodyBytes` with a truncation flag.

import type { Kysely } from 'kysely';
import type { Decision, Exchange, ExchangeOutcome, RecordedRequest } from '../exchange/index.js';
import type { Database } from '../store/index.js';
import { GroupCommitWriter } from './group-commit.js';

export interface Recorder {
  open(exchange: Exchange, decision: Decision, request: RecordedRequest): Promise<void>;
  finish(exchange: Exchange, outcome: ExchangeOutcome): Promise<void>;
  /** One write for an exchange that never reached the upstream. */
  refuse(exchange: Exchange, decision: Decision | undefined, request: RecordedRequest | undefined, outcome: ExchangeOutcome): Promise<void>;
  drain(): Promise<void>;
}

export function createRecorder(db: Kysely<Database>): Recorder {
  const writer = new GroupCommitWriter(db);

  const openRow = (exchange: Exchange, decision: Decision | undefined, request: RecordedRequest | undefined) => ({
    id: exchange.id,
    session_id: exchange.sessionId,
    protocol: exchange.protocol,
    connection: exchange.connection,
    operation: exchange.operation,
    started_at: exchange.startedAt,
    complete: 0,
    subject: exchange.identity?.subject ?? null,
    identity_kind: exchange.identity?.kind ?? null,
    auth_method: exchange.identity?.method ?? null,
    credential_id: exchange.identity?.credentialId ?? null,
    groups: JSON.stringify(exchange.identity?.groups ?? []),
    client_address: exchange.client.address ?? null,
    decision: decision?.effect ?? 'deny',
    rules: JSON.stringify(decision?.rules ?? []),
    reason: decision?.reason ?? null,
    policy_version: decision?.policyVersion ?? null,
    obligations: decision?.obligations ? JSON.stringify(decision.obligations) : null,
    model: exchange.facts.model ?? null,
    stream: exchange.facts.stream ? 1 : 0,
    method: request?.method ?? null,
    path: request?.path ?? null,
    request_headers: request ? JSON.stringify(request.headers) : null,
    request_body: request?.body ?? null,
    request_truncated: request?.truncated ? 1 : 0,
    prompt_text: exchange.facts.text ?? null,
    review_id: exchange.approval?.reviewId ?? null,
    approval_via: exchange.approval?.via ?? null,
  });

  const outcomeColumns = (exchange: Exchange, outcome: ExchangeOutcome) => ({
    ended_at: exchange.startedAt + Math.round(outcome.durationMs),
    complete: outcome.complete ? 1 : 0,
    status: outcome.status ?? null,
    error_code: outcome.errorCode ?? null,
    error_detail: outcome.errorDetail ?? null,
    response_headers: outcome.responseHeaders ? JSON.stringify(outcome.responseHeaders) : null,
    response_body: outcome.responseBody ?? null,
    response_truncated: outcome.responseTruncated ? 1 : 0,
    response_text: outcome.responseText ?? null,
    usage: outcome.usage ? JSON.stringify(outcome.usage) : null,
    bytes_in: outcome.bytesIn,
    bytes_out: outcome.bytesOut,
    ttfb_ms: outcome.ttfbMs === undefined ? null : Math.round(outcome.ttfbMs),
    duration_ms: Math.round(outcome.durationMs),
    masking_counts: outcome.maskCounts ? JSON.stringify(outcome.maskCounts) : null,
  });

  return {
    open: (exchange, decision, request) => writer.write((trx) => trx.insertInto('exchanges').values(openRow(exchange, decision, request)).execute()),
    finish: (exchange, outcome) =>
      writer.write((trx) => trx.updateTable('exchanges').set(outcomeColumns(exchange, outcome)).where('id', '=', exchange.id).execute()),
    refuse: (exchange, decision, request, outcome) =>
      writer.write((trx) => trx.insertInto('exchanges').values({ ...openRow(exchange, decision, request), ...outcomeColumns(exchange, outcome) }).execute()),
    drain: () => writer.drain(),
  };
}
