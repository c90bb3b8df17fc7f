// The approvals service: opens reviews, takes votes, expires what nobody decided,
// and hands out (single-use) approvals and time-boxed grants. Enforces:
// - a vote comes from a member of the review's reviewer groups (admins only when
//   `approvals.adminsMayReview`), never from the requester (no self-approval), once;
// - one deny denies; `minApprovals` approvals approve;
// - a pending review past `expiresAt` is expired (a denial), checked on every read
//   and by a sweeper;
// - an approval is consumed at most once (approved → executed, a conditional update),
//   within `approvalValidFor`; given back (executed → approved) only when the target
//   never acted on the request that used it;
// - a grant is only given when every approver asked for one; it lasts the shortest
//   duration asked, never more than `maxGrant`, and covers the same identity,
//   connection, operation and deciding rules (any body);
// - both are for the API key that asked (Binding.apiKey), not any key of its subject.
// Every state change is published on the ReviewBus and reported to `audit`.

import type { Kysely } from 'kysely';
import type { ApprovalsConfig } from '../config/approvals-schema.js';
import { formatDuration } from '../config/units.js';
import { GatehouseError } from '../errors/index.js';
import { newId, type Decision, type Exchange, type Identity } from '../exchange/index.js';
import type { Database, ReviewRow } from '../store/index.js';
import { storableText } from '../store/storable-text.js';
import type { ReviewBus } from './review-bus.js';
import { loadReview, queryReviews, type ReviewFilter } from './review-store.js';
import type { Review, ReviewEvent, ReviewEventType, ReviewState } from './review-types.js';

export interface RuleOptions {
  readonly reviewers: readonly string[];
  readonly minApprovals: number;
  readonly holdFor: number;
  readonly expiresAfter: number;
  readonly approvalValidFor: number;
  readonly maxGrant: number;
}

export interface ApprovalServiceOptions {
  readonly config: ApprovalsConfig;
  readonly adminGroups: readonly string[];
  readonly bus: ReviewBus;
  /** The admin API base URL reviewers reach (`approvals.apiUrl`, else the admin listener). */
  readonly apiUrl: () => string;
  /** Called with every review and vote event; the audit log connects here. Must not throw. */
  readonly audit?: ((event: ReviewEvent) => void) | undefined;
  /** Outbound notifications (webhooks, Slack). Must not throw. */
  readonly notify?: ((event: ReviewEvent) => void) | undefined;
  /**
   * Applied to what a review keeps of the request (its preview): the gateway replaces
   * credentials with their type label. A reviewer needs to see that a key is there, not
   * its value; the preview goes to webhooks and Slack and stays in the store after a
   * denial, when the request's own record redacts it (a refused request).
   */
  readonly redactPreview?: ((text: string) => string) | undefined;
  readonly now?: () => number;
}

export interface Binding {
  readonly subject: string;
  /** The API key that asked (apiKeyOf); null for an identity with none. */
  readonly apiKey: string | null;
  readonly connection: string;
  readonly operation: string;
  readonly digest: string;
  readonly policyVersion: string;
}

export interface VoteInput {
  readonly comment?: string | undefined;
  /** Approve as a time-boxed grant for this many ms instead of one request. */
  readonly grantMs?: number | undefined;
  /** `api` or `cli`. */
  readonly via: string;
}

const maxComment = 2000;
/** What a review keeps of the request it holds (the prompt, or the statement and its parameters). */
export const maxPreview = 500;

/** What a policy reload changes: who reviews which rule, and for how long. */
export type ReviewRules = Pick<ApprovalsConfig, 'defaults' | 'rules' | 'adminsMayReview'>;

export class ApprovalService {
  readonly #db: Kysely<Database>;
  readonly #options: ApprovalServiceOptions;
  readonly #now: () => number;
  #reviewRules: ReviewRules;

  constructor(db: Kysely<Database>, options: ApprovalServiceOptions) {
    this.#db = db;
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#reviewRules = options.config;
  }

  /**
   * Swaps the per-rule options with the policy on a reload: a rule added by the reload
   * gets its own reviewers, and a change of reviewers takes effect, instead of the
   * options read at start. Reviews already open keep the reviewers and quorum they
   * were opened with.
   */
  setReviewRules(next: ReviewRules): void {
    this.#reviewRules = { defaults: next.defaults, rules: next.rules, adminsMayReview: next.adminsMayReview };
  }

  #redact(preview: string): string {
    return this.#options.redactPreview ? this.#options.redactPreview(preview) : preview;
  }

  get bus(): ReviewBus {
    return this.#options.bus;
  }

  /** The options of the first deciding rule configured under `approvals.rules`, else the defaults. */
  optionsFor(rules: readonly string[]): RuleOptions {
    const { defaults, rules: byRule } = this.#reviewRules;
    const own = rules.map((r) => byRule[r]).find((o) => o !== undefined) ?? {};
    return {
      reviewers: own.reviewers ?? defaults.reviewers ?? [],
      minApprovals: own.minApprovals ?? defaults.minApprovals,
      holdFor: own.holdFor ?? defaults.holdFor,
      expiresAfter: own.expiresAfter ?? defaults.expiresAfter,
      approvalValidFor: own.approvalValidFor ?? defaults.approvalValidFor,
      maxGrant: own.maxGrant ?? defaults.maxGrant,
    };
  }

  /** Every group that reviews some rule (plus admins, when they may review): who may read reviews. */
  mayRead(identity: Identity): boolean {
    const { defaults, rules } = this.#reviewRules;
    const groups = new Set([...this.#options.adminGroups, ...(defaults.reviewers ?? []), ...Object.values(rules).flatMap((r) => r.reviewers ?? [])]);
    return identity.groups.some((g) => groups.has(g));
  }

  async get(id: string): Promise<Review | undefined> {
    await this.#expireIfDue(id);
    return loadReview(this.#db, id);
  }

  async list(filter: ReviewFilter): Promise<{ items: Review[]; next: number | undefined }> {
    await this.expireDue();
    return queryReviews(this.#db, filter);
  }

  /** A live grant for this subject and API key, connection, operation and deciding rules: the id of the review that gave it. */
  async findGrant(subject: string, apiKey: string | null, connection: string, operation: string, rules: readonly string[]): Promise<string | undefined> {
    const row = await this.#db
      .selectFrom('review_grants')
      .select('review_id')
      .where('subject', '=', subject)
      .where('api_key', apiKey === null ? 'is' : '=', apiKey)
      .where('connection', '=', connection)
      .where('operation', '=', operation)
      .where('rules', '=', JSON.stringify(rules))
      .where('expires_at', '>', this.#now())
      .orderBy('expires_at', 'desc')
      .executeTakeFirst();
    return row?.review_id;
  }

  /**
   * Opens a review for a held exchange, or returns the one already open for the same
   * binding: pending, or approved and not yet used. The approved one serves a caller
   * that never learnt the review's id (it hung up while held, or its SDK retried a 429
   * without the header): the very request that was reviewed, from the same identity,
   * uses it once instead of opening a second review for it.
   */
  async open(exchange: Exchange, decision: Decision, binding: Binding, justification: string | undefined, preview: string | undefined = exchange.facts.text): Promise<Review> {
    const now = this.#now();
    const twin = await this.#db
      .selectFrom('reviews')
      .select('id')
      .where('subject', '=', binding.subject)
      .where('api_key', binding.apiKey === null ? 'is' : '=', binding.apiKey)
      .where('connection', '=', binding.connection)
      .where('operation', '=', binding.operation)
      .where('digest', '=', binding.digest)
      .where('policy_version', '=', binding.policyVersion)
      .where((eb) =>
        eb.or([
          eb.and([eb('state', '=', 'pending'), eb('expires_at', '>', now)]),
          eb.and([eb('state', '=', 'approved'), eb.or([eb('usable_until', 'is', null), eb('usable_until', '>', now)])]),
        ]),
      )
      .orderBy('created_at', 'desc')
      .executeTakeFirst();
    if (twin) return (await loadReview(this.#db, twin.id))!;

    const options = this.optionsFor(decision.rules);
    const id = newId('rv', now);
    const row: ReviewRow = {
      id,
      state: 'pending',
      subject: binding.subject,
      identity_kind: exchange.identity?.kind ?? null,
      connection: binding.connection,
      operation: binding.operation,
      digest: binding.digest,
      policy_version: binding.policyVersion,
      rules: JSON.stringify(decision.rules),
      reviewer_groups: JSON.stringify(options.reviewers),
      min_approvals: options.minApprovals,
      justification: justification === undefined ? null : storableText(justification.slice(0, maxComment)),
      exchange_id: exchange.id,
      model: exchange.facts.model === undefined ? null : storableText(exchange.facts.model),
      prompt_preview: preview === undefined ? null : storableText(this.#redact(preview).slice(0, maxPreview)),
      created_at: now,
      expires_at: now + options.expiresAfter,
      decided_at: null,
      decided_by: null,
      usable_until: null,
      grant_ms: null,
      executed_at: null,
      executed_by_exchange: null,
      api_key: binding.apiKey,
    };
    await this.#db.insertInto('reviews').values(row).execute();
    return this.#emit('review.created', id, binding.subject);
  }

  async vote(id: string, voter: Identity, vote: 'approve' | 'deny', input: VoteInput): Promise<Review> {
    if (input.comment !== undefined && input.comment.length > maxComment) throw new GatehouseError('invalid_vote', { message: `The comment is longer than ${maxComment} characters.` });
    await this.#expireIfDue(id);
    const row = await this.#db.selectFrom('reviews').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw new GatehouseError('review_not_found', { message: `No review with id "${id}".` });
    if (row.state !== 'pending') throw new GatehouseError('review_not_pending', { message: `Review ${id} is ${row.state}; votes are taken only while it is pending.` });
    if (voter.subject === row.subject) {
      throw new GatehouseError('review_vote_refused', { message: `${voter.subject} requested this review and may not review it (no self-approval).`, rule: 'no-self-approval' });
    }
    const groups = JSON.parse(row.reviewer_groups) as string[];
    const allowed = new Set(this.#reviewRules.adminsMayReview ? [...groups, ...this.#options.adminGroups] : groups);
    if (!voter.groups.some((g) => allowed.has(g))) {
      throw new GatehouseError('review_vote_refused', {
        message: `${voter.subject} is not in a reviewer group for review ${id} (${groups.length > 0 ? groups.join(', ') : 'none configured'}).`,
        rule: 'reviewer-groups',
      });
    }
    let grantMs: number | null = null;
    if (input.grantMs !== undefined) {
      if (vote !== 'approve') throw new GatehouseError('invalid_vote', { message: 'A grant duration only goes with an approval.' });
      const { maxGrant } = this.optionsFor(JSON.parse(row.rules) as string[]);
      if (!(input.grantMs > 0) || input.grantMs > maxGrant) throw new GatehouseError('invalid_vote', { message: `grantFor must be more than 0 and at most ${formatDuration(maxGrant)} (maxGrant).` });
      grantMs = input.grantMs;
    }
    const now = this.#now();
    try {
      await this.#db
        .insertInto('review_votes')
        .values({ review_id: id, voter: voter.subject, voter_groups: JSON.stringify(voter.groups), vote, comment: input.comment === undefined ? null : storableText(input.comment), grant_ms: grantMs, via: input.via, created_at: now })
        .execute();
    } catch (error) {
      if (isUniqueViolation(error)) throw new GatehouseError('review_vote_refused', { message: `${voter.subject} has already voted on review ${id}.`, rule: 'one-vote' });
      throw error;
    }
    const decided = vote === 'deny' ? await this.#transition(id, 'pending', 'denied', { decided_at: now, decided_by: voter.subject }) : await this.#approveIfQuorum(id, voter.subject);
    if (!decided) {
      // Another vote decided the review between this one's check and its count: a deny
      // that lost to an approval (or the reverse) is refused and not kept, rather than
      // answered 200 and left on a review it did not decide.
      const state = (await this.#db.selectFrom('reviews').select('state').where('id', '=', id).executeTakeFirstOrThrow()).state;
      if (state !== 'pending') {
        await this.#db.deleteFrom('review_votes').where('review_id', '=', id).where('voter', '=', voter.subject).execute();
        throw new GatehouseError('review_not_pending', { message: `Review ${id} was ${state} by another vote meanwhile; this vote was not counted.` });
      }
    }
    await this.#emit('review.voted', id, voter.subject);
    if (decided) return this.#emit(vote === 'deny' ? 'review.denied' : 'review.approved', id, voter.subject);
    return (await loadReview(this.#db, id))!;
  }

  /** The requester (or an admin) withdraws a pending review. */
  async cancel(id: string, actor: Identity): Promise<Review> {
    await this.#expireIfDue(id);
    const row = await this.#db.selectFrom('reviews').select(['state', 'subject']).where('id', '=', id).executeTakeFirst();
    if (!row) throw new GatehouseError('review_not_found', { message: `No review with id "${id}".` });
    const isAdmin = actor.groups.some((g) => this.#options.adminGroups.includes(g));
    if (actor.subject !== row.subject && !isAdmin) throw new GatehouseError('review_vote_refused', { message: `Only the requester or an admin may cancel review ${id}.`, rule: 'cancel' });
    if (!(await this.#transition(id, 'pending', 'cancelled', { decided_at: this.#now(), decided_by: actor.subject }))) {
      throw new GatehouseError('review_not_pending', { message: `Review ${id} is ${row.state}; only a pending review can be cancelled.` });
    }
    return this.#emit('review.cancelled', id, actor.subject);
  }

  /**
   * Checks that an approved review may be used for this binding, without using it:
   * throws the error the caller should see otherwise.
   */
  async checkUsable(id: string, binding: Binding): Promise<Review> {
    const review = await this.get(id);
    // No review_id / review_url for an id that names no review: they would hand back,
    // as a link, whatever the caller put in its Gatehouse-Review header.
    if (!review) throw new GatehouseError('approval_invalid', { message: `No review with id "${id.length > 64 ? `${id.slice(0, 63)}…` : id}".` });
    const fields = this.errorFields(id);
    checkBinding(review, binding, fields);
    switch (review.state) {
      case 'pending':
        throw new GatehouseError('approval_required', { fields });
      case 'denied':
        throw new GatehouseError('approval_denied', { fields, message: `Review ${id} was denied${review.decidedBy ? ` by ${review.decidedBy}` : ''}.` });
      case 'expired':
        throw new GatehouseError('approval_expired', { fields });
      case 'cancelled':
        throw new GatehouseError('approval_invalid', { fields, message: `Review ${id} was cancelled.` });
      case 'executed':
        throw new GatehouseError('approval_invalid', { fields, message: `Review ${id} has already been used; an approval is good for one request.` });
      case 'approved':
        break;
    }
    if (review.usableUntil !== null && Date.parse(review.usableUntil) <= this.#now()) {
      throw new GatehouseError('approval_expired', { fields, message: `The approval in review ${id} was not used in time.` });
    }
    return review;
  }

  /**
   * Uses an approved review for one exchange: checks the binding, then approved →
   * executed, once. Throws the error the caller should see otherwise.
   */
  async consume(id: string, binding: Binding, exchangeId: string): Promise<Review> {
    await this.checkUsable(id, binding);
    const fields = this.errorFields(id);
    const now = this.#now();
    const used = await this.#db
      .updateTable('reviews')
      .set({ state: 'executed', executed_at: now, executed_by_exchange: exchangeId })
      .where('id', '=', id)
      .where('state', '=', 'approved')
      .executeTakeFirst();
    if (Number(used.numUpdatedRows) !== 1) throw new GatehouseError('approval_invalid', { fields, message: `Review ${id} has already been used; an approval is good for one request.` });
    return this.#emit('review.executed', id, binding.subject);
  }

  /**
   * Gives back an approval that `exchangeId` used without the target acting on the
   * request (it could not be reached, or answered 429): executed → approved, for that
   * exchange only, and still within `approvalValidFor`. The OpenAI SDKs retry both on
   * their own; without this the retry found the consent spent and was held on a new review.
   */
  async restore(id: string, exchangeId: string): Promise<void> {
    const restored = await this.#db
      .updateTable('reviews')
      .set({ state: 'approved', executed_at: null, executed_by_exchange: null })
      .where('id', '=', id)
      .where('state', '=', 'executed')
      .where('executed_by_exchange', '=', exchangeId)
      .executeTakeFirst();
    if (Number(restored.numUpdatedRows) === 1) await this.#emit('review.restored', id, 'gatehouse');
  }

  /** Expires every pending review past its time; returns how many. */
  async expireDue(): Promise<number> {
    const due = await this.#db.selectFrom('reviews').select('id').where('state', '=', 'pending').where('expires_at', '<=', this.#now()).limit(100).execute();
    let count = 0;
    for (const { id } of due) if (await this.#expireIfDue(id)) count++;
    return count;
  }

  /** `review_id` and `review_url` (when there is one) for a caller's error envelope. */
  errorFields(id: string): Record<string, string> {
    const url = this.reviewUrl(id);
    return url === undefined ? { review_id: id } : { review_id: id, review_url: url };
  }

  /**
   * Undefined when there is no base to make it absolute: no `consoleUrl`, no
   * `approvals.apiUrl`, and no admin listener (`admin.enabled: false`). A relative
   * `/api/reviews/…` would name no server the caller or a reviewer could reach.
   */
  reviewUrl(id: string): string | undefined {
    const { consoleUrl } = this.#options.config;
    if (consoleUrl) return `${consoleUrl.replace(/\/$/, '')}/reviews/${encodeURIComponent(id)}`;
    const api = this.#options.apiUrl();
    return api ? `${api.replace(/\/$/, '')}/api/reviews/${encodeURIComponent(id)}` : undefined;
  }

  actionUrl(id: string, action: 'approve' | 'deny'): string | undefined {
    const { consoleUrl } = this.#options.config;
    if (consoleUrl) return `${consoleUrl.replace(/\/$/, '')}/reviews/${encodeURIComponent(id)}?action=${action}`;
    const api = this.#options.apiUrl();
    return api ? `${api.replace(/\/$/, '')}/api/reviews/${encodeURIComponent(id)}/${action}` : undefined;
  }

  async #expireIfDue(id: string): Promise<boolean> {
    const now = this.#now();
    const expired = await this.#db
      .updateTable('reviews')
      .set({ state: 'expired', decided_at: now, decided_by: 'gatehouse' })
      .where('id', '=', id)
      .where('state', '=', 'pending')
      .where('expires_at', '<=', now)
      .executeTakeFirst();
    if (Number(expired.numUpdatedRows) !== 1) return false;
    await this.#emit('review.expired', id, 'gatehouse');
    return true;
  }

  /** Approves the review once it has its quorum of approvals; whether this call did. */
  async #approveIfQuorum(id: string, actor: string): Promise<boolean> {
    const row = await this.#db.selectFrom('reviews').select(['min_approvals', 'rules']).where('id', '=', id).executeTakeFirstOrThrow();
    const approvals = await this.#db.selectFrom('review_votes').select(['grant_ms']).where('review_id', '=', id).where('vote', '=', 'approve').execute();
    if (approvals.length < row.min_approvals) return false;
    // The shortest grant, when every approval asked for one; a loop, not Math.min(...list),
    // which passes each element as an argument (the list is at most minApprovals ≤ 20
    // long plus racing votes today, but nothing here should depend on that).
    let grantMs: number | null = Infinity;
    for (const { grant_ms: g } of approvals) grantMs = g === null || grantMs === null ? null : Math.min(grantMs, g);
    const now = this.#now();
    const { approvalValidFor } = this.optionsFor(JSON.parse(row.rules) as string[]);
    const approved = await this.#transition(id, 'pending', 'approved', { decided_at: now, decided_by: actor, usable_until: now + approvalValidFor, grant_ms: grantMs });
    if (!approved) return false;
    if (grantMs !== null) {
      const review = await this.#db.selectFrom('reviews').select(['subject', 'api_key', 'connection', 'operation', 'rules']).where('id', '=', id).executeTakeFirstOrThrow();
      await this.#db.insertInto('review_grants').values({ review_id: id, ...review, created_at: now, expires_at: now + grantMs }).execute();
    }
    return true;
  }

  async #transition(id: string, from: ReviewState, to: ReviewState, set: Partial<ReviewRow>): Promise<boolean> {
    const result = await this.#db.updateTable('reviews').set({ ...set, state: to }).where('id', '=', id).where('state', '=', from).executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async #emit(type: ReviewEventType, id: string, actor: string): Promise<Review> {
    const review = (await loadReview(this.#db, id))!;
    const event: ReviewEvent = { type, review, actor, at: new Date(this.#now()).toISOString() };
    this.#options.audit?.(event);
    this.#options.notify?.(event);
    await this.#options.bus.publish(type, id).catch(() => undefined);
    return review;
  }
}

/** The approval is for exactly one identity (and its API key), connection, operation, policy version and body. */
function checkBinding(review: Review, binding: Binding, fields: Record<string, string>): void {
  const mismatch =
    review.subject !== binding.subject ? `was requested by another identity`
    : review.apiKey !== binding.apiKey ? `was requested with another credential${review.apiKey === null ? '' : ` (API key ${review.apiKey})`}`
    : review.connection !== binding.connection ? `is for connection "${review.connection}"`
    : review.operation !== binding.operation ? `is for operation "${review.operation}"`
    : review.policyVersion !== binding.policyVersion ? 'was made under another policy version'
    : review.digest !== binding.digest ? 'is for a different request body or query'
    : undefined;
  if (mismatch) throw new GatehouseError('approval_invalid', { fields, message: `Review ${review.id} ${mismatch}; it does not approve this request.` });
}

function isUniqueViolation(error: unknown): boolean {
  const e = error as { code?: string } | undefined;
  return e?.code === '23505' || e?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || e?.code === 'SQLITE_CONSTRAINT_UNIQUE';
}
