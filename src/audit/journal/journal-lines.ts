// The open line every exchange writes to the record journal, on the relaying thread.
// It leaves out the columns that still hold their table default when an exchange is
// opened (the response, the outcome, most optional columns: 24 of 46 for a plain chat
// exchange): the applier puts the defaults back (exchange-state.ts rowWithDefaults), so
// the row applied is the same. A plain chat exchange's open line is 907 bytes instead
// of 1 318, which costs less to serialise here, to write (the page-cache pages a
// segment grows by), and to parse on the journal worker.
//
// It is still one JSON.stringify: the row goes through a literal of fixed shape whose
// default-valued columns are `undefined`, which JSON.stringify leaves out. (Writing the
// line out by hand, with the keys as template text, measured fewer instructions but
// more time: the regular-expression test per value and flattening the concatenated
// string cost more than JSON.stringify's own loop.) An applier of an older version
// reads these lines too: it has always filled a short row with the defaults.

import type { ExchangeState } from '../exchange-state.js';

/** `{"op":"open","row":{…}}\n` for an opened row, without its default-valued columns (exchange-state.ts defaultState). */
export function openLine(row: ExchangeState): string {
  return `${JSON.stringify({ op: 'open', row: withoutDefaults(row) })}\n`;
}

/** The row with each column that holds its default as undefined (so JSON.stringify leaves it out); keys in column order. */
function withoutDefaults(r: ExchangeState): Record<keyof ExchangeState, unknown> {
  return {
    id: r.id, session_id: r.session_id, protocol: r.protocol, connection: r.connection, operation: r.operation,
    started_at: r.started_at, ended_at: unlessNull(r.ended_at), complete: unlessZero(r.complete), subject: unlessNull(r.subject),
    identity_kind: unlessNull(r.identity_kind), auth_method: unlessNull(r.auth_method), credential_id: unlessNull(r.credential_id),
    groups: r.groups === '[]' ? undefined : r.groups, client_address: unlessNull(r.client_address), decision: r.decision,
    rules: r.rules === '[]' ? undefined : r.rules, reason: unlessNull(r.reason), policy_version: unlessNull(r.policy_version),
    status: unlessNull(r.status), error_code: unlessNull(r.error_code), error_detail: unlessNull(r.error_detail),
    model: unlessNull(r.model), stream: unlessZero(r.stream), method: unlessNull(r.method), path: unlessNull(r.path),
    request_headers: unlessNull(r.request_headers), request_body: unlessNull(r.request_body),
    request_truncated: unlessZero(r.request_truncated), prompt_text: unlessNull(r.prompt_text),
    response_headers: unlessNull(r.response_headers), response_body: unlessNull(r.response_body),
    response_truncated: unlessZero(r.response_truncated), response_text: unlessNull(r.response_text), usage: unlessNull(r.usage),
    bytes_in: unlessZero(r.bytes_in), bytes_out: unlessZero(r.bytes_out), ttfb_ms: unlessNull(r.ttfb_ms),
    duration_ms: unlessNull(r.duration_ms), review_id: unlessNull(r.review_id), reexecution_of: unlessNull(r.reexecution_of),
    chunk_timings: unlessNull(r.chunk_timings), raw_request: unlessNull(r.raw_request), raw_response: unlessNull(r.raw_response),
    obligations: unlessNull(r.obligations), masking_counts: unlessNull(r.masking_counts), approval_via: unlessNull(r.approval_via),
  };
}

const unlessNull = <T,>(value: T): T | undefined => (value === null ? undefined : value);
const unlessZero = <T,>(value: T): T | undefined => (value === 0 ? undefined : value);
