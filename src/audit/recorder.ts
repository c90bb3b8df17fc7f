// The recorder: every exchange, allowed or denied, becomes a row, and every write to
// that row emits a chained audit event carrying the digest of the row as written
// (exchange-state.ts), in the same transaction.
// - open(): written and committed before the request is forwarded (exchange.opened);
// - progress(): while an answer streams, throttled by the adapter, so a gateway killed
//   mid-stream leaves a row marked incomplete with what was relayed (exchange.progress);
// - finish(): written and committed before the last byte is released (exchange.finished);
// - a denial is one write with the decision and the error (exchange.refused).
// Headers are recorded through an allow-list (recordable-headers.ts); bodies are
// capped at `maxBodyBytes` with a truncation flag.

import type { Kysely } from 'kysely';
import type { Decision, Exchange, ExchangeOutcome, RecordedRequest } from '../exchange/index.js';
import type { Database } from '../store/index.js';
import { stateDigest, defaultState, type ExchangeState } from './exchange-state.js';
import { GroupCommitWriter } from './group-commit.js';
import type { EventInput } from './append-events.js';
import type { RawSealer } from './raw-content.js';

/** What has been relayed so far of an answer still streaming. */
export interface ExchangeProgress {
  readonly bytesOut: number;
  readonly responseBody?: string | undefined;
  readonly responseTruncated?: boolean | undefined;
  readonly responseText?: string | undefined;
  readonly chunkTimings?: readonly (readonly [number, number])[] | undefined;
  readonly durationMs: number;
}

export interface Recorder {
  open(exchange: Exchange, decision: Decision, request: RecordedRequest): Promise<void>;
  progress(exchange: Exchange, progress: ExchangeProgress): Promise<void>;
  finish(exchange: Exchange, outcome: ExchangeOutcome): Promise<void>;
  /** One write for an exchange that never reached the upstream. */
  refuse(exchange: Exchange, decision: Decision | undefined, request: RecordedRequest | undefined, outcome: ExchangeOutcome): Promise<void>;
  drain(): Promise<void>;
}

export interface RecorderOptions {
  /** Shared with the AuditLog so both append to the chain in the same batches. */
  readonly writer?: GroupCommitWriter | undefined;
  /** Links re-executions to their original (reexecute.ts), by exchange id. */
  readonly reexecutionOf?: ((exchange: Exchange) => string | undefined) | undefined;
  /** audit.raw: seal the unmasked request and answer into raw_request / raw_response. */
  readonly raw?: RawSealer | undefined;
}

export function createRecorder(db: Kysely<Database>, options: RecorderOptions = {}): Recorder {
  const writer = options.writer ?? new GroupCommitWriter(db);
  // The row as last written, per exchange in flight: each event hashes the whole row.
  const rows = new Map<string, ExchangeState>();

  const openRow = (exchange: Exchange, decision: Decision | undefined, request: RecordedRequest | undefined): ExchangeState => ({
    ...defaultState,
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
    reexecution_of: options.reexecutionOf?.(exchange) ?? null,
    raw_request: sealed(request?.rawBody ?? request?.body, exchange.id),
  });

  const sealed = (text: string | undefined, id: string) => (options.raw && text !== undefined ? options.raw.seal(text, id) : null);

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
    ...(outcome.chunkTimings ? { chunk_timings: JSON.stringify(outcome.chunkTimings) } : {}),
    ...(options.raw ? { raw_response: sealed(outcome.rawResponseBody ?? outcome.responseBody, exchange.id) } : {}),
  });

  const progressColumns = (progress: ExchangeProgress) => ({
    bytes_out: progress.bytesOut,
    response_body: progress.responseBody ?? null,
    response_truncated: progress.responseTruncated ? 1 : 0,
    response_text: progress.responseText ?? null,
    duration_ms: Math.round(progress.durationMs),
    chunk_timings: progress.chunkTimings ? JSON.stringify(progress.chunkTimings) : null,
  });

  const eventFor = (kind: string, row: ExchangeState): EventInput => ({
    kind,
    actor: row.subject,
    target: row.id,
    details: {
      state: stateDigest(row),
      connection: row.connection,
      operation: row.operation,
      decision: row.decision,
      rules: JSON.parse(row.rules ?? '[]') as unknown,
      status: row.status,
      complete: row.complete === 1,
      bytesOut: row.bytes_out,
      errorCode: row.error_code,
    },
  });

  return {
    open(exchange, decision, request) {
      const row = openRow(exchange, decision, request);
      rows.set(exchange.id, row);
      return writer.record({ exchange: { insert: row }, event: eventFor('exchange.opened', row) });
    },
    progress(exchange, progress) {
      const previous = rows.get(exchange.id);
      if (!previous) return Promise.resolve();
      const columns = progressColumns(progress);
      const row = { ...previous, ...columns };
      rows.set(exchange.id, row);
      return writer.record({ exchange: { update: exchange.id, columns }, event: eventFor('exchange.progress', row) });
    },
    finish(exchange, outcome) {
      const columns = outcomeColumns(exchange, outcome);
      const previous = rows.get(exchange.id);
      rows.delete(exchange.id);
      if (previous) return writer.record({ exchange: { update: exchange.id, columns }, event: eventFor('exchange.finished', { ...previous, ...columns }) });
      // Without the opened row in memory (not expected), read it back so the digest is exact.
      return writer.write(async (trx, emit) => {
        await trx.updateTable('exchanges').set(columns).where('id', '=', exchange.id).execute();
        const base = (await trx.selectFrom('exchanges').selectAll().where('id', '=', exchange.id).executeTakeFirst()) as ExchangeState | undefined;
        if (base) emit(eventFor('exchange.finished', { ...base, ...columns }));
      });
    },
    refuse(exchange, decision, request, outcome) {
      const row = { ...openRow(exchange, decision, request), ...outcomeColumns(exchange, outcome) };
      return writer.record({ exchange: { insert: row }, event: eventFor('exchange.refused', row) });
    },
    drain: () => writer.drain(),
  };
}
