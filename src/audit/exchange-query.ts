// Reads recorded exchanges back for the admin API and the CLI: a filtered, newest-
// first list with a cursor, and one exchange in full.

import { PostgresAdapter, sql, type Kysely, type SelectQueryBuilder } from 'kysely';
import type { Database, ExchangeRow } from '../store/index.js';

export interface ExchangeFilter {
  readonly connection?: string | undefined;
  readonly subject?: string | undefined;
  readonly decision?: string | undefined;
  readonly operation?: string | undefined;
  /** A group the caller was in. */
  readonly group?: string | undefined;
  /** A rule that produced the decision. */
  readonly rule?: string | undefined;
  readonly review?: string | undefined;
  /** Full text over prompts and answers (FTS5 on SQLite, tsvector on PostgreSQL). */
  readonly text?: string | undefined;
  /** Epoch ms, inclusive. */
  readonly since?: number | undefined;
  readonly until?: number | undefined;
  readonly limit?: number | undefined;
  /** Cursor from a previous page: only exchanges older than it. */
  readonly before?: number | undefined;
}

export interface ExchangeSummary {
  readonly id: string;
  readonly sessionId: string;
  readonly startedAt: string;
  readonly connection: string;
  readonly operation: string;
  readonly subject: string | null;
  readonly identityKind: string | null;
  readonly decision: string;
  readonly rules: string[];
  readonly status: number | null;
  readonly errorCode: string | null;
  readonly model: string | null;
  readonly stream: boolean;
  readonly complete: boolean;
  readonly durationMs: number | null;
  readonly reviewId: string | null;
  readonly reexecutionOf: string | null;
}

export interface ExchangeDetail extends ExchangeSummary {
  readonly endedAt: string | null;
  readonly authMethod: string | null;
  readonly credentialId: string | null;
  readonly groups: string[];
  readonly clientAddress: string | null;
  readonly reason: string | null;
  readonly policyVersion: string | null;
  readonly obligations: unknown;
  readonly errorDetail: string | null;
  readonly request: { method: string | null; path: string | null; headers: Record<string, string> | null; body: string | null; truncated: boolean; promptText: string | null };
  readonly response: { headers: Record<string, string> | null; body: string | null; truncated: boolean; text: string | null; usage: unknown };
  /** Entities masked in this exchange, by type (null when nothing was masked). */
  readonly maskCounts: Record<string, number> | null;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly ttfbMs: number | null;
  /** The review that let it pass (or refused it), and how: held | retry | grant. */
  readonly approval: { reviewId: string; via: string | null } | null;
  /** [ms since start, bytes] for each relayed piece of the answer (bounded). */
  readonly chunkTimings: [number, number][] | null;
  /** Whether sealed raw content exists (reveal it with POST /api/sessions/:id/reveal). */
  readonly rawRecorded: boolean;
}

export const maxPageSize = 500;

export async function listExchanges(db: Kysely<Database>, filter: ExchangeFilter): Promise<{ items: ExchangeSummary[]; next: number | undefined }> {
  const limit = Math.min(Math.max(filter.limit ?? 50, 1), maxPageSize);
  const query = applyFilter(db, db.selectFrom('exchanges').selectAll(), filter).orderBy('seq', 'desc').limit(limit + 1);
  const rows = (await query.execute()) as ExchangeRow[];
  const page = rows.slice(0, limit);
  return { items: page.map(toSummary), next: rows.length > limit ? page[page.length - 1]!.seq : undefined };
}

/** Applies every search filter; shared by list, export and CSV so they agree. */
export function applyFilter<O>(db: Kysely<Database>, query: SelectQueryBuilder<Database, 'exchanges', O>, filter: ExchangeFilter): SelectQueryBuilder<Database, 'exchanges', O> {
  if (filter.connection) query = query.where('connection', '=', filter.connection);
  if (filter.subject) query = query.where('subject', '=', filter.subject);
  if (filter.decision) query = query.where('decision', '=', filter.decision);
  if (filter.operation) query = query.where('operation', '=', filter.operation);
  if (filter.review) query = query.where('review_id', '=', filter.review);
  // groups and rules are JSON arrays of strings: match the quoted element.
  if (filter.group) query = query.where(sql<boolean>`groups like ${`%${likeEscape(JSON.stringify(filter.group))}%`} escape '\\'`);
  if (filter.rule) query = query.where(sql<boolean>`rules like ${`%${likeEscape(JSON.stringify(filter.rule))}%`} escape '\\'`);
  if (filter.since !== undefined) query = query.where('started_at', '>=', filter.since);
  if (filter.until !== undefined) query = query.where('started_at', '<=', filter.until);
  if (filter.before !== undefined) query = query.where('seq', '<', filter.before);
  if (filter.text) {
    // The same words on both stores: runs of letters and digits, every one required, in
    // any order; nothing in the text is query syntax (no phrase, OR, negation or prefix).
    // Text with no word in it (`*`, `"`, `%`) matches nothing; it used to drop the filter
    // and list (or export) every exchange as if it matched.
    const words = searchWords(filter.text);
    if (words.length === 0) return query.where(sql<boolean>`1 = 0`);
    // The search column holds the text with everything but letters and digits made a
    // space (migration 0016): the query goes through the same regexp and parser.
    if (isPostgres(db)) query = query.where(sql<boolean>`search @@ plainto_tsquery('simple', regexp_replace(${words.join(' ')}, '[^[:alnum:]]+', ' ', 'g'))`);
    // Quoted as FTS5 strings, so user input is never FTS5 query syntax (sqlite.org/fts5.html §3.1).
    // Rows still queued for the index (search-indexer.ts) are matched word by word directly.
    else {
      const queued = sql.join(
        words.map((word) => sql`(coalesce(prompt_text, '') || ' ' || coalesce(response_text, '')) like ${`%${likeEscape(word)}%`} escape '\\'`),
        sql` and `,
      );
      query = query.where(
        sql<boolean>`(seq in (select rowid from exchanges_fts where exchanges_fts match ${ftsPhrase(words)}) or (seq in (select seq from exchanges_fts_pending) and ${queued}))`,
      );
    }
  }
  return query;
}

function isPostgres(db: Kysely<Database>): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter;
}

function likeEscape(value: string): string {
  return value.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/** The words FTS5's default tokenizer (unicode61) would see: runs of letters and digits. */
function searchWords(text: string): string[] {
  return text.match(/[\p{L}\p{N}]+/gu) ?? [];
}

function ftsPhrase(words: readonly string[]): string {
  return words.map((word) => `"${word.replace(/"/g, '""')}"`).join(' ');
}

export async function getExchange(db: Kysely<Database>, id: string): Promise<ExchangeDetail | undefined> {
  const row = (await db.selectFrom('exchanges').selectAll().where('id', '=', id).executeTakeFirst()) as ExchangeRow | undefined;
  return row ? toDetail(row) : undefined;
}

function toSummary(row: ExchangeRow): ExchangeSummary {
  return {
    id: row.id,
    sessionId: row.session_id,
    startedAt: new Date(row.started_at).toISOString(),
    connection: row.connection,
    operation: row.operation,
    subject: row.subject,
    identityKind: row.identity_kind,
    decision: row.decision,
    rules: JSON.parse(row.rules) as string[],
    status: row.status,
    errorCode: row.error_code,
    model: row.model,
    stream: row.stream === 1,
    complete: row.complete === 1,
    durationMs: row.duration_ms,
    reviewId: row.review_id,
    reexecutionOf: row.reexecution_of,
  };
}

function toDetail(row: ExchangeRow): ExchangeDetail {
  return {
    ...toSummary(row),
    endedAt: row.ended_at === null ? null : new Date(row.ended_at).toISOString(),
    authMethod: row.auth_method,
    credentialId: row.credential_id,
    groups: JSON.parse(row.groups) as string[],
    clientAddress: row.client_address,
    reason: row.reason,
    policyVersion: row.policy_version,
    obligations: row.obligations === null ? null : (JSON.parse(row.obligations) as unknown),
    errorDetail: row.error_detail,
    request: {
      method: row.method,
      path: row.path,
      headers: row.request_headers === null ? null : (JSON.parse(row.request_headers) as Record<string, string>),
      body: row.request_body,
      truncated: row.request_truncated === 1,
      promptText: row.prompt_text,
    },
    response: {
      headers: row.response_headers === null ? null : (JSON.parse(row.response_headers) as Record<string, string>),
      body: row.response_body,
      truncated: row.response_truncated === 1,
      text: row.response_text,
      usage: row.usage === null ? null : JSON.parse(row.usage),
    },
    bytesIn: row.bytes_in,
    bytesOut: row.bytes_out,
    ttfbMs: row.ttfb_ms,
    approval: row.review_id === null || row.review_id === undefined ? null : { reviewId: row.review_id, via: row.approval_via ?? null },
    maskCounts: row.masking_counts ? (JSON.parse(row.masking_counts) as Record<string, number>) : null,
    chunkTimings: row.chunk_timings === null ? null : (JSON.parse(row.chunk_timings) as [number, number][]),
    rawRecorded: row.raw_request !== null || row.raw_response !== null,
  };
}
