// Reading reviews back from the store, as the API shape (review-types.ts).

import type { Kysely } from 'kysely';
import type { Database, ReviewRow, ReviewVoteRow } from '../store/index.js';
import type { Review, ReviewState } from './review-types.js';

export interface ReviewFilter {
  readonly state?: ReviewState | undefined;
  readonly connection?: string | undefined;
  readonly subject?: string | undefined;
  readonly limit?: number | undefined;
  /** Reviews created strictly before this time (epoch ms): the `next` of the previous page. */
  readonly before?: number | undefined;
}

export async function loadReview(db: Kysely<Database>, id: string): Promise<Review | undefined> {
  const row = await db.selectFrom('reviews').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) return undefined;
  const [votes, grant] = await Promise.all([
    db.selectFrom('review_votes').selectAll().where('review_id', '=', id).orderBy('created_at').execute(),
    db.selectFrom('review_grants').select('expires_at').where('review_id', '=', id).executeTakeFirst(),
  ]);
  return toReview(row, votes, grant?.expires_at);
}

/** The most reviews one page lists. */
export const maxReviewPageSize = 500;

export async function queryReviews(db: Kysely<Database>, filter: ReviewFilter): Promise<{ items: Review[]; next: number | undefined }> {
  const limit = Math.min(Math.max(filter.limit ?? 50, 1), maxReviewPageSize);
  let query = db.selectFrom('reviews').selectAll();
  if (filter.state) query = query.where('state', '=', filter.state);
  if (filter.connection) query = query.where('connection', '=', filter.connection);
  if (filter.subject) query = query.where('subject', '=', filter.subject);
  if (filter.before !== undefined) query = query.where('created_at', '<', filter.before);
  const rows = await query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit + 1).execute();
  const page = rows.slice(0, limit);
  const ids = page.map((r) => r.id);
  const [votes, grants] = ids.length === 0
    ? [[], []]
    : await Promise.all([
      db.selectFrom('review_votes').selectAll().where('review_id', 'in', ids).orderBy('created_at').execute(),
      db.selectFrom('review_grants').select(['review_id', 'expires_at']).where('review_id', 'in', ids).execute(),
    ]);
  const items = page.map((row) => toReview(row, votes.filter((v) => v.review_id === row.id), grants.find((g) => g.review_id === row.id)?.expires_at));
  return { items, next: rows.length > limit ? page[page.length - 1]!.created_at : undefined };
}

const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());

function toReview(row: ReviewRow, votes: readonly ReviewVoteRow[], grantExpiresAt: number | undefined): Review {
  return {
    id: row.id,
    state: row.state as ReviewState,
    subject: row.subject,
    apiKey: row.api_key ?? null,
    identityKind: row.identity_kind,
    connection: row.connection,
    operation: row.operation,
    digest: row.digest,
    policyVersion: row.policy_version,
    rules: JSON.parse(row.rules) as string[],
    reviewerGroups: JSON.parse(row.reviewer_groups) as string[],
    minApprovals: row.min_approvals,
    approvals: votes.filter((v) => v.vote === 'approve').length,
    justification: row.justification,
    exchangeId: row.exchange_id,
    model: row.model,
    promptPreview: row.prompt_preview,
    createdAt: iso(row.created_at)!,
    expiresAt: iso(row.expires_at)!,
    decidedAt: iso(row.decided_at),
    decidedBy: row.decided_by,
    usableUntil: iso(row.usable_until),
    grant: row.grant_ms === null ? null : { durationMs: row.grant_ms, expiresAt: iso(grantExpiresAt) },
    executedAt: iso(row.executed_at),
    executedByExchange: row.executed_by_exchange,
    votes: votes.map((v) => ({ voter: v.voter, vote: v.vote as 'approve' | 'deny', comment: v.comment, grantMs: v.grant_ms, via: v.via, createdAt: iso(v.created_at)! })),
  };
}
