// An exchange row's recorded state, and its digest. The `exchanges` table is the
// queryable view; every write to a row emits an event (exchange.opened / .progress /
// .finished / .refused) whose `details.state` is the digest of the row as written, so
// `audit verify` can prove each row still holds what the chain vouches for.
//
//   state = sha256(canonical(every column below, as stored))

import type { ExchangeRow } from '../store/index.js';
import { canonicalJson, sha256Hex } from './canonical-json.js';

/** Every column of `exchanges` except `seq` (storage order) and derived search columns. */
export const recordedColumns = [
  'id', 'session_id', 'protocol', 'connection', 'operation', 'started_at', 'ended_at', 'complete',
  'subject', 'identity_kind', 'auth_method', 'credential_id', 'groups', 'client_address',
  'decision', 'rules', 'reason', 'policy_version', 'status', 'error_code', 'error_detail',
  'model', 'stream', 'method', 'path', 'request_headers', 'request_body', 'request_truncated', 'prompt_text',
  'response_headers', 'response_body', 'response_truncated', 'response_text', 'usage',
  'bytes_in', 'bytes_out', 'ttfb_ms', 'duration_ms',
  'review_id', 'reexecution_of', 'chunk_timings', 'raw_request', 'raw_response',
  'obligations', 'masking_counts', 'approval_via',
] as const satisfies readonly (keyof ExchangeRow)[];

export type RecordedColumn = (typeof recordedColumns)[number];
export type ExchangeState = { [K in RecordedColumn]: ExchangeRow[K] };

/** The columns a freshly opened row holds before anything is set (the table defaults). */
export const defaultState: Omit<ExchangeState, 'id' | 'session_id' | 'protocol' | 'connection' | 'operation' | 'started_at' | 'decision'> = {
  ended_at: null, complete: 0, subject: null, identity_kind: null, auth_method: null, credential_id: null, groups: '[]',
  client_address: null, rules: '[]', reason: null, policy_version: null, status: null, error_code: null, error_detail: null,
  model: null, stream: 0, method: null, path: null, request_headers: null, request_body: null, request_truncated: 0, prompt_text: null,
  response_headers: null, response_body: null, response_truncated: 0, response_text: null, usage: null,
  bytes_in: 0, bytes_out: 0, ttfb_ms: null, duration_ms: null,
  review_id: null, reexecution_of: null, chunk_timings: null, raw_request: null, raw_response: null,
  obligations: null, masking_counts: null, approval_via: null,
};

/**
 * A row read from a record journal line with every column, a missing one at its default
 * (defaultState): an open line leaves default-valued columns out (journal-lines.ts).
 * One literal in column order, so every row the applier hashes and binds has the same
 * shape. journal-lines tests hold it equal to `{ ...defaultState, ...row }`.
 */
export function rowWithDefaults(r: Readonly<Record<string, unknown>>): ExchangeState {
  return {
    id: r.id, session_id: r.session_id, protocol: r.protocol, connection: r.connection, operation: r.operation,
    started_at: r.started_at, ended_at: r.ended_at ?? null, complete: r.complete === undefined ? 0 : r.complete,
    subject: r.subject ?? null, identity_kind: r.identity_kind ?? null, auth_method: r.auth_method ?? null,
    credential_id: r.credential_id ?? null, groups: r.groups === undefined ? '[]' : r.groups, client_address: r.client_address ?? null,
    decision: r.decision, rules: r.rules === undefined ? '[]' : r.rules, reason: r.reason ?? null,
    policy_version: r.policy_version ?? null, status: r.status ?? null, error_code: r.error_code ?? null,
    error_detail: r.error_detail ?? null, model: r.model ?? null, stream: r.stream === undefined ? 0 : r.stream,
    method: r.method ?? null, path: r.path ?? null, request_headers: r.request_headers ?? null,
    request_body: r.request_body ?? null, request_truncated: r.request_truncated === undefined ? 0 : r.request_truncated,
    prompt_text: r.prompt_text ?? null, response_headers: r.response_headers ?? null, response_body: r.response_body ?? null,
    response_truncated: r.response_truncated === undefined ? 0 : r.response_truncated, response_text: r.response_text ?? null,
    usage: r.usage ?? null, bytes_in: r.bytes_in === undefined ? 0 : r.bytes_in, bytes_out: r.bytes_out === undefined ? 0 : r.bytes_out,
    ttfb_ms: r.ttfb_ms ?? null, duration_ms: r.duration_ms ?? null, review_id: r.review_id ?? null,
    reexecution_of: r.reexecution_of ?? null, chunk_timings: r.chunk_timings ?? null, raw_request: r.raw_request ?? null,
    raw_response: r.raw_response ?? null, obligations: r.obligations ?? null, masking_counts: r.masking_counts ?? null,
    approval_via: r.approval_via ?? null,
  } as ExchangeState;
}

export function stateOf(row: Readonly<Record<string, unknown>>): Record<RecordedColumn, unknown> {
  const state = {} as Record<RecordedColumn, unknown>;
  for (const column of recordedColumns) {
    const value = row[column];
    // PostgreSQL bigint arrives as a number (store/open-store.ts); normalise anything numeric-looking the same way on both dialects.
    state[column] = value === undefined ? null : typeof value === 'bigint' ? Number(value) : value;
  }
  return state;
}

/**
 * The row's values in `recordedColumns` order (undefined as null), for positional
 * binding: written out, as a loop over the names made megamorphic keyed loads.
 * audit-units tests hold it equal to recordedColumns.map().
 */
export function stateValues(row: Readonly<Record<string, unknown>>): unknown[] {
  return [
    row.id ?? null, row.session_id ?? null, row.protocol ?? null, row.connection ?? null, row.operation ?? null,
    row.started_at ?? null, row.ended_at ?? null, row.complete ?? null, row.subject ?? null, row.identity_kind ?? null,
    row.auth_method ?? null, row.credential_id ?? null, row.groups ?? null, row.client_address ?? null,
    row.decision ?? null, row.rules ?? null, row.reason ?? null, row.policy_version ?? null, row.status ?? null,
    row.error_code ?? null, row.error_detail ?? null, row.model ?? null, row.stream ?? null, row.method ?? null,
    row.path ?? null, row.request_headers ?? null, row.request_body ?? null, row.request_truncated ?? null,
    row.prompt_text ?? null, row.response_headers ?? null, row.response_body ?? null, row.response_truncated ?? null,
    row.response_text ?? null, row.usage ?? null, row.bytes_in ?? null, row.bytes_out ?? null, row.ttfb_ms ?? null,
    row.duration_ms ?? null, row.review_id ?? null, row.reexecution_of ?? null, row.chunk_timings ?? null,
    row.raw_request ?? null, row.raw_response ?? null, row.obligations ?? null, row.masking_counts ?? null,
    row.approval_via ?? null
  ];
}

// Column names in canonical (UTF-16 code unit) order, each with its JSON key prefix.
const canonicalColumns = [...recordedColumns].sort().map((column, i) => [column, `${i === 0 ? '{' : ','}${JSON.stringify(column)}:`] as const);

/** Cleared by plain() when a value is not a string, a finite number or null (the literal form does not apply). */
let allPlain = true;

function plain(value: unknown): unknown {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value))) return value;
  allPlain = false;
  return null;
}

/**
 * The row with every column in canonical key order, as one fixed-shape literal: one
 * JSON.stringify of it is the canonical form, at about half the cost of writing the
 * values out one by one. Undefined when a value is not a string, a finite number or
 * null. Keys sorted by hand; audit-units tests hold them equal to the sorted columns.
 */
export function canonicalState(row: Readonly<Record<string, unknown>>): Record<RecordedColumn, unknown> | undefined {
  allPlain = true;
  const state = {
    approval_via: plain(row.approval_via), auth_method: plain(row.auth_method), bytes_in: plain(row.bytes_in),
    bytes_out: plain(row.bytes_out), chunk_timings: plain(row.chunk_timings),
    client_address: plain(row.client_address), complete: plain(row.complete), connection: plain(row.connection),
    credential_id: plain(row.credential_id), decision: plain(row.decision), duration_ms: plain(row.duration_ms),
    ended_at: plain(row.ended_at), error_code: plain(row.error_code), error_detail: plain(row.error_detail),
    groups: plain(row.groups), id: plain(row.id), identity_kind: plain(row.identity_kind),
    masking_counts: plain(row.masking_counts), method: plain(row.method), model: plain(row.model),
    obligations: plain(row.obligations), operation: plain(row.operation), path: plain(row.path),
    policy_version: plain(row.policy_version), prompt_text: plain(row.prompt_text), protocol: plain(row.protocol),
    raw_request: plain(row.raw_request), raw_response: plain(row.raw_response), reason: plain(row.reason),
    reexecution_of: plain(row.reexecution_of), request_body: plain(row.request_body),
    request_headers: plain(row.request_headers), request_truncated: plain(row.request_truncated),
    response_body: plain(row.response_body), response_headers: plain(row.response_headers),
    response_text: plain(row.response_text), response_truncated: plain(row.response_truncated),
    review_id: plain(row.review_id), rules: plain(row.rules), session_id: plain(row.session_id),
    started_at: plain(row.started_at), status: plain(row.status), stream: plain(row.stream),
    subject: plain(row.subject), ttfb_ms: plain(row.ttfb_ms), usage: plain(row.usage),
  };
  return allPlain ? state : undefined;
}

/**
 * sha256 of canonicalJson(stateOf(row)). Every column holds a string, a number or null,
 * so the canonical form is the sorted columns in order (audit-units tests hold the two
 * equal). This runs on every record write.
 */
export function stateDigest(row: Readonly<Record<string, unknown>>): string {
  const state = canonicalState(row);
  if (state !== undefined) return sha256Hex(JSON.stringify(state));
  let text = '';
  for (const [column, prefix] of canonicalColumns) {
    const value = row[column];
    let json: string;
    if (value === undefined || value === null) json = 'null';
    else if (typeof value === 'string') json = JSON.stringify(value);
    else if (typeof value === 'number') {
      if (!Number.isFinite(value)) throw new TypeError('canonical JSON: non-finite number');
      json = JSON.stringify(value);
    } else if (typeof value === 'bigint') json = JSON.stringify(Number(value));
    else json = canonicalJson(value);
    text += prefix + json;
  }
  return sha256Hex(`${text}}`);
}
