// What a review looks like to the API, the CLI, notifications and the audit hook.

import { redactTextCredentials } from '../detect/path-credentials.js';

export type ReviewState = 'pending' | 'approved' | 'denied' | 'expired' | 'cancelled' | 'executed';
export const reviewStates: readonly ReviewState[] = ['pending', 'approved', 'denied', 'expired', 'cancelled', 'executed'];

export type ReviewEventType = 'review.created' | 'review.voted' | 'review.approved' | 'review.denied' | 'review.expired' | 'review.cancelled' | 'review.executed' | 'review.restored';

export interface ReviewVote {
  readonly voter: string;
  readonly vote: 'approve' | 'deny';
  readonly comment: string | null;
  /** A time-boxed grant this approver asked for, in ms; null for one-time. */
  readonly grantMs: number | null;
  /** Where the vote was cast: `api` or `cli`. */
  readonly via: string;
  readonly createdAt: string;
}

export interface Review {
  readonly id: string;
  readonly state: ReviewState;
  /** The binding: the request is approved only for exactly this. */
  readonly subject: string;
  /** The API key that asked (not its secret); null for an identity with none. Another key of the subject is another requester. */
  readonly apiKey: string | null;
  readonly identityKind: string | null;
  readonly connection: string;
  readonly operation: string;
  readonly digest: string;
  readonly policyVersion: string;
  readonly rules: readonly string[];
  readonly reviewerGroups: readonly string[];
  readonly minApprovals: number;
  readonly approvals: number;
  /** The requester's reason (`Gatehouse-Justification`), shown to reviewers. */
  readonly justification: string | null;
  /** The exchange that first asked. */
  readonly exchangeId: string | null;
  readonly model: string | null;
  /** The first 500 characters of the prompt, so reviewers see what they approve. */
  readonly promptPreview: string | null;
  readonly createdAt: string;
  /** A pending review still pending at this time is expired (a denial). */
  readonly expiresAt: string;
  readonly decidedAt: string | null;
  readonly decidedBy: string | null;
  /** An approved one-time review can be used (held or retried) until then. */
  readonly usableUntil: string | null;
  readonly grant: { readonly durationMs: number; readonly expiresAt: string | null } | null;
  readonly executedAt: string | null;
  readonly executedByExchange: string | null;
  readonly votes: readonly ReviewVote[];
}

export interface ReviewEvent {
  readonly type: ReviewEventType;
  readonly review: Review;
  /** Who caused it: a reviewer subject, the requester, or `gatehouse` (expiry). */
  readonly actor: string;
  readonly at: string;
}

/**
 * The audit event of a review event (kind `review.created`, `review.voted` …): the same
 * from a gateway and from the CLI, so every review and vote is in the chain whoever
 * cast it. It carries what an investigation asks of a review — what exactly was
 * approved (digest, rules, the exchange), why it was asked for (the justification), and
 * each vote with its comment and grant — so that an evidence bundle holds them and an
 * edit of the reviews tables does not rewrite them unseen. Free text is cut at 500
 * characters, credentials in it as their type label.
 */
export function reviewAuditEvent(event: ReviewEvent): { kind: string; actor: string; target: string; details: Record<string, unknown> } {
  const { review } = event;
  const details: Record<string, unknown> = { state: review.state, connection: review.connection, operation: review.operation, subject: review.subject, digest: review.digest, rules: review.rules };
  if (event.type === 'review.created') {
    details['exchange'] = review.exchangeId;
    details['justification'] = freeText(review.justification);
    details['reviewers'] = review.reviewerGroups;
    details['minApprovals'] = review.minApprovals;
    details['expiresAt'] = review.expiresAt;
  }
  if (event.type === 'review.voted' || event.type === 'review.approved' || event.type === 'review.denied') {
    // The vote this event follows: the actor's latest (a vote decides the review in the same act).
    const vote = review.votes.findLast((v) => v.voter === event.actor);
    if (vote) details['vote'] = { vote: vote.vote, comment: freeText(vote.comment), grantMs: vote.grantMs, via: vote.via };
  }
  if (event.type === 'review.approved') details['grant'] = review.grant;
  return { kind: event.type, actor: event.actor, target: `review:${review.id}`, details };
}

function freeText(text: string | null): string | null {
  return text === null ? null : redactTextCredentials(text.length > 500 ? `${text.slice(0, 500)}…` : text);
}
