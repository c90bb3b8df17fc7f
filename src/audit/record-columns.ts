// What an exchange's row holds at each step, as plain column values: the row as opened
// (identity, decision, request), the columns a streamed answer's progress changes, and
// the outcome. Both ways of recording (recorder.ts straight into a store, and the
// record journal on SQLite) build rows here, and both chain the same events
// (eventFor), so a row and its event digest are the same whichever path wrote them.

import { redactPathCredentials } from '../detect/path-credentials.js';
import { summarizeJsonAnswer, type Decision, type Exchange, type ExchangeOutcome, type RecordedRequest, type UnreadAnswerFormat } from '../exchange/index.js';
import type { EventInput } from './append-events.js';
import { canonicalJson } from './canonical-json.js';
import { stateDigest, type ExchangeState } from './exchange-state.js';
import type { RawSealer } from './raw-content.js';
import { storableText } from '../store/storable-text.js';

/** What has been relayed so far of an answer still streaming. */
export interface ExchangeProgress {
  /** The answer's status and first byte, and the request's size: known once it streams. */
  readonly status?: number | undefined;
  readonly ttfbMs?: number | undefined;
  readonly bytesIn?: number | undefined;
  readonly bytesOut: number;
  readonly responseBody?: string | undefined;
  readonly responseTruncated?: boolean | undefined;
  readonly responseText?: string | undefined;
  readonly chunkTimings?: readonly (readonly [number, number])[] | undefined;
  readonly durationMs: number;
}

export interface RecordColumnOptions {
  /** Links re-executions to their original (reexecute.ts), by exchange id. */
  readonly reexecutionOf?: ((exchange: Exchange) => string | undefined) | undefined;
  /** audit.raw: seal the unmasked request and answer into raw_request / raw_response. */
  readonly raw?: RawSealer | undefined;
  /**
   * An outcome's unread answer (ExchangeOutcome.unreadAnswer) is left for whoever
   * applies the columns (the record journal's worker: answerColumns there); without
   * this, it is read here.
   */
  readonly answersReadLater?: boolean | undefined;
  /**
   * recording.maxBodyBytes: the prompt text is capped like the bodies it comes from (a
   * 10 MiB upload would otherwise put 10 MiB of text in the row and the search index).
   * The row's request_truncated already says the request was cut.
   */
  readonly maxTextBytes?: number | undefined;
}

export type ExchangeColumns = Partial<ExchangeState>;

export interface RecordColumns {
  opened(exchange: Exchange, decision: Decision | undefined, request: RecordedRequest | undefined): ExchangeState;
  outcome(exchange: Exchange, outcome: ExchangeOutcome): ExchangeColumns;
  progress(progress: ExchangeProgress): ExchangeColumns;
}

export function recordColumns(options: RecordColumnOptions = {}): RecordColumns {
  const maxText = options.maxTextBytes ?? Number.POSITIVE_INFINITY;
  const sealed = (text: string | undefined, id: string) => (options.raw && text !== undefined ? options.raw.seal(text, id) : null);
  return {
    // Every column written out in one literal (no spread of the defaults): this runs
    // for every exchange on the relaying thread, and a fixed-shape literal is cheap.
    opened: (exchange, decision, request) => storable({
      id: exchange.id,
      session_id: exchange.sessionId,
      protocol: exchange.protocol,
      connection: exchange.connection,
      // `http.GET /users/sk-live-…` is recorded as `http.GET /users/[OPENAI_KEY]`.
      operation: recordedOperation(exchange.operation),
      started_at: exchange.startedAt,
      ended_at: null,
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
      status: null,
      error_code: null,
      error_detail: null,
      model: exchange.facts.model ?? null,
      stream: exchange.facts.stream ? 1 : 0,
      method: request?.method ?? null,
      path: request?.path ?? null,
      request_headers: request ? JSON.stringify(request.headers) : null,
      request_body: request?.body ?? null,
      request_truncated: request?.truncated ? 1 : 0,
      prompt_text: capUtf8(exchange.facts.text, maxText) ?? null,
      response_headers: null,
      response_body: null,
      response_truncated: 0,
      response_text: null,
      usage: null,
      bytes_in: 0,
      bytes_out: 0,
      ttfb_ms: null,
      duration_ms: null,
      review_id: exchange.approval?.reviewId ?? null,
      reexecution_of: options.reexecutionOf?.(exchange) ?? null,
      chunk_timings: null,
      raw_request: sealed(request?.rawBody ?? request?.body, exchange.id),
      raw_response: null,
      obligations: decision?.obligations ? JSON.stringify(decision.obligations) : null,
      masking_counts: null,
      approval_via: exchange.approval?.via ?? null,
    }),
    outcome: (exchange, outcome) => {
      const answer = outcome.unreadAnswer && !options.answersReadLater ? answerColumns(outcome.unreadAnswer, outcome.responseBody) : undefined;
      return storable({
        ended_at: exchange.startedAt + Math.round(outcome.durationMs),
        complete: outcome.complete ? 1 : 0,
        status: outcome.status ?? null,
        error_code: outcome.errorCode ?? null,
        error_detail: outcome.errorDetail ?? null,
        response_headers: outcome.responseHeaders ? JSON.stringify(outcome.responseHeaders) : null,
        response_body: outcome.responseBody ?? null,
        response_truncated: outcome.responseTruncated ? 1 : 0,
        response_text: answer ? answer.response_text : (outcome.responseText ?? null),
        usage: answer ? answer.usage : outcome.usage ? JSON.stringify(outcome.usage) : null,
        bytes_in: outcome.bytesIn,
        bytes_out: outcome.bytesOut,
        ttfb_ms: outcome.ttfbMs === undefined ? null : Math.round(outcome.ttfbMs),
        duration_ms: Math.round(outcome.durationMs),
        masking_counts: outcome.maskCounts ? JSON.stringify(outcome.maskCounts) : null,
        ...(outcome.chunkTimings ? { chunk_timings: JSON.stringify(outcome.chunkTimings) } : {}),
        ...(options.raw ? { raw_response: sealed(outcome.rawResponseBody ?? outcome.responseBody, exchange.id) } : {}),
      });
    },
    progress: (progress) => storable({
      status: progress.status ?? null,
      ttfb_ms: progress.ttfbMs === undefined ? null : Math.round(progress.ttfbMs),
      bytes_in: progress.bytesIn ?? 0,
      bytes_out: progress.bytesOut,
      response_body: progress.responseBody ?? null,
      response_truncated: progress.responseTruncated ? 1 : 0,
      response_text: progress.responseText ?? null,
      duration_ms: Math.round(progress.durationMs),
      chunk_timings: progress.chunkTimings ? JSON.stringify(progress.chunkTimings) : null,
    }),
  };
}

/**
 * The row with every text column storable (storableText: U+0000 written as U+FFFD). A
 * prompt, a body, a model name or an answer holding one failed the recording, and so the
 * exchange (503 recording_failed), on a PostgreSQL store only.
 */
function storable<T extends object>(row: T): T {
  const columns = row as Record<string, unknown>;
  for (const key in columns) {
    const value = columns[key];
    if (typeof value === 'string') columns[key] = storableText(value);
  }
  return row;
}

/**
 * Operations repeat (`chat.completions` on every chat exchange), and scanning one for
 * credentials cost about a microsecond: those found to hold none are remembered, a few
 * hundred at most. One that holds a credential is never kept, and scanned each time.
 */
const cleanOperations = new Set<string>();

function recordedOperation(operation: string): string {
  if (cleanOperations.has(operation)) return operation;
  const redacted = printableOperation(redactPathCredentials(operation));
  if (redacted === operation) {
    if (cleanOperations.size >= 512) cleanOperations.clear();
    cleanOperations.add(operation);
  }
  return redacted;
}

// Control characters (C0, DEL, C1) a caller percent-encoded into a path (`/a%1Bb`) are
// decoded in the operation policy reads (`http.GET /a<ESC>b`); recorded, and so in the
// events, sinks and exports, they are percent-encoded again (`http.GET /a%1Bb`): an
// operation is one line of text (a CLI table row, a log line) and its event hashes the
// same under the jq step of audit.md (jq writes DEL as \u007f).
const operationControls = /[\u0000-\u001f\u007f-\u009f]/g;

function printableOperation(operation: string): string {
  return operation.replace(operationControls, (char) => encodeURIComponent(char));
}

/** The response_text and usage columns of an answer recorded unread (`body` is its response_body). */
export function answerColumns(format: UnreadAnswerFormat, body: string | null | undefined): { response_text: string | null; usage: string | null } {
  if (format !== 'openai-json' || typeof body !== 'string') return { response_text: null, usage: null };
  const { text, usage } = summarizeJsonAnswer(body);
  return storable({ response_text: text ?? null, usage: usage ? JSON.stringify(usage) : null });
}

export type ExchangeEventKind = 'exchange.opened' | 'exchange.progress' | 'exchange.finished' | 'exchange.refused';
/**
 * The events that carry a row's digest (`details.state`) and so vouch for it; other
 * events about an exchange (exchange.revealed, exchange.reexecuted) only name it.
 */
export const exchangeEventKinds: readonly ExchangeEventKind[] = ['exchange.opened', 'exchange.progress', 'exchange.finished', 'exchange.refused'];

/**
 * The chained event for a write that leaves the row as `row`: its digest and key facts.
 * `inserted`: this write inserts the row, so the row's `seq` (its position in listings,
 * not part of the digest) is allocated in the transaction that chains this event, and
 * rows must appear in the order of their inserting events (verify-chain.ts).
 */
export function eventFor(kind: ExchangeEventKind, row: ExchangeState, inserted = false): EventInput {
  const details: ExchangeEventDetails = {
    state: stateDigest(row),
    connection: row.connection,
    operation: row.operation,
    decision: row.decision,
    rules: JSON.parse(row.rules ?? '[]') as unknown,
    status: row.status,
    complete: row.complete === 1,
    bytesOut: row.bytes_out,
    errorCode: row.error_code,
    // Only on the inserting event: absent (not false) elsewhere, so an update's event is as before.
    ...(inserted ? { inserted: true as const } : {}),
  };
  return { kind, actor: row.subject, target: row.id, details, canonicalDetails: canonicalExchangeDetails(details) };
}

type ExchangeEventDetails = {
  readonly state: string;
  readonly connection: unknown;
  readonly operation: unknown;
  readonly decision: unknown;
  readonly rules: unknown;
  readonly status: unknown;
  readonly complete: boolean;
  readonly bytesOut: unknown;
  readonly errorCode: unknown;
  readonly inserted?: true;
};

/**
 * canonicalJson(details) written out for this fixed shape (keys in canonical order), as
 * every record write chains one; undefined when a value is not of the shape, and the
 * generic form is used (audit-units tests hold the two equal).
 */
function canonicalExchangeDetails(d: ExchangeEventDetails): string | undefined {
  const { bytesOut, status, connection, operation, decision, errorCode } = d;
  if (typeof bytesOut !== 'number' || !Number.isFinite(bytesOut)) return undefined;
  if (status !== null && (typeof status !== 'number' || !Number.isFinite(status))) return undefined;
  if (typeof connection !== 'string' || typeof operation !== 'string' || typeof decision !== 'string') return undefined;
  if (errorCode !== null && typeof errorCode !== 'string') return undefined;
  return (
    `{"bytesOut":${bytesOut},"complete":${d.complete},"connection":${JSON.stringify(connection)},"decision":${JSON.stringify(decision)},` +
    `"errorCode":${JSON.stringify(errorCode)},${d.inserted ? '"inserted":true,' : ''}"operation":${JSON.stringify(operation)},"rules":${canonicalJson(d.rules)},"state":${JSON.stringify(d.state)},"status":${JSON.stringify(status)}}`
  );
}

/** `text` cut to at most `maxBytes` of UTF-8, never inside a character. */
export function capUtf8(text: string | undefined, maxBytes: number): string | undefined {
  // Three UTF-8 bytes per UTF-16 unit at most: most texts are decided without counting.
  if (text === undefined || text.length * 3 <= maxBytes || Buffer.byteLength(text) <= maxBytes) return text;
  const cut = Buffer.from(text).subarray(0, maxBytes).toString('utf8');
  // A character cut in two decodes to U+FFFD at the end: drop it.
  return cut.endsWith('\ufffd') && !text.startsWith(cut) ? cut.slice(0, -1) : cut;
}
