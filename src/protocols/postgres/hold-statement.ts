// A statement that policy says `require_approval` for, held until a reviewer decides
// (the approve stage, src/approvals/hold-for-approval.ts). Enforces:
// - the approval is bound to the identity, connection, operation, policy version and
//   the SHA-256 of the statement text and its parameters' exact values;
// - the review shows the statement's text and, at Execute, its parameter values (both
//   as recorded: masked by request profiles), so a reviewer knows which rows it touches;
// - the client is told at once, with a NoticeResponse carrying the review id and URL, in
//   its message and, for programs, in its hint (`gatehouse review: <id> <url>`, as the
//   ErrorResponse that refuses it: errors.ts reviewHint);
// - approved in time: the statement goes on, its record carrying the review;
//   denied: 42501; not approved within `holdFor`, expired, or cancelled by the client
//   (CancelRequest): 57014, the statement not run; the client leaving ends the hold;
// - the same statement run again in the same session waits on the review it timed out
//   on (as HTTP's `Gatehouse-Review` retry), so an approval given late is used;
// - an approval used by a statement the database then skipped (an earlier error in its
//   batch or Query) is given back (HoldOutcome.giveBack, Run.giveBack).

import { GatehouseError } from '../../errors/index.js';
import { maxPreview } from '../../approvals/approval-service.js';
import { requestDigest } from '../../approvals/request-digest.js';
import type { ApprovalStage } from '../../approvals/index.js';
import type { Decision, Exchange } from '../../exchange/index.js';
import { noticeResponse } from './codec.js';
import { reviewHint } from './errors.js';

/** SHA-256 of the statement as run: its text, and its parameters when bound (Execute). */
export function statementDigest(text: string, params?: readonly (string | null)[]): string {
  return requestDigest(Buffer.from(JSON.stringify(params === undefined ? { sql: text } : { sql: text, params }), 'utf8'));
}

/** Most of the review's preview the parameters may take; each value is cut at maxValue. */
const maxParams = 300;
const maxValue = 100;

/**
 * What a review shows of a statement: its text, then its parameters as SQL literals
 * (`-- parameters: $1 = '5', $2 = NULL`), the text cut first so the values stay in view.
 */
export function statementPreview(text: string, params: readonly (string | null)[] | undefined): string {
  if (!params || params.length === 0) return text;
  let values = params.map((p, i) => `$${i + 1} = ${p === null ? 'NULL' : `'${cut(p, maxValue).replaceAll("'", "''")}'`}`).join(', ');
  values = `-- parameters: ${cut(values, maxParams)}`;
  return `${cut(text, maxPreview - values.length - 1)}\n${values}`;
}

function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(0, max - 1))}…`;
}

export interface HoldIO {
  /** Writes a message to the client now (the NoticeResponse), ahead of the statement's answer. */
  readonly notify: (message: Buffer) => void;
  /** Aborted with reason 'cancel' (CancelRequest) or 'closed' (the client left). */
  readonly signal: AbortSignal;
  /** The review's preview when it is not the statement's text alone (statementPreview). */
  readonly preview?: string | undefined;
  /**
   * The statement is in an explicit transaction block, which its refusal fails: the
   * message then says to ROLLBACK and run the transaction again, since running the
   * statement again in that block cannot run it (25P02).
   */
  readonly inTransactionBlock?: boolean | undefined;
}

export interface HoldOutcome {
  /** The exchange with `approval` set when a review was involved. */
  readonly exchange: Exchange;
  readonly error?: GatehouseError | undefined;
  /** Approved: gives the review's approval back, for a statement the database then did not run (Run.giveBack). */
  readonly giveBack?: (() => Promise<void>) | undefined;
}

const maxRemembered = 32;

/** One per session: remembers the reviews its statements timed out on, by digest. */
export class StatementHolds {
  readonly #stage: ApprovalStage;
  readonly #pendingReviews = new Map<string, string>();

  constructor(stage: ApprovalStage) {
    this.#stage = stage;
  }

  async hold(exchange: Exchange, decision: Decision, digest: string, io: HoldIO): Promise<HoldOutcome> {
    const reviewId = this.#pendingReviews.get(digest);
    const outcome = await this.#hold(exchange, decision, digest, reviewId, io);
    // A remembered review that no longer fits (used, cancelled, another policy version): ask afresh.
    if (reviewId !== undefined && outcome.error?.code === 'approval_invalid') {
      this.#pendingReviews.delete(digest);
      return this.#hold(exchange, decision, digest, undefined, io);
    }
    return outcome;
  }

  async #hold(exchange: Exchange, decision: Decision, digest: string, reviewId: string | undefined, io: HoldIO): Promise<HoldOutcome> {
    let held;
    try {
      held = await this.#stage.hold(exchange, decision, {
        digest,
        reviewId,
        signal: io.signal,
        preview: io.preview,
        onHeld: ({ reviewId: id, reviewUrl, holdForMs }) => {
          io.notify(
            noticeResponse({
              severity: 'NOTICE',
              code: '00000',
              message: `This statement needs approval (rule: ${decision.rules[0] ?? 'unnamed'}): review ${id}${reviewUrl ? `, ${reviewUrl}` : ''}`,
              detail: `The statement waits up to ${seconds(holdForMs)} for a reviewer; it has not been run.`,
              hint: reviewHint(id, reviewUrl),
            }),
          );
        },
      });
    } catch (error) {
      return { exchange, error: error instanceof GatehouseError ? error : new GatehouseError('internal_error', { detail: `approval hold failed: ${String(error)}` }) };
    }
    const approved = { ...exchange, approval: held.approval };
    const id = held.approval.reviewId;
    if (!held.error) {
      this.#pendingReviews.delete(digest);
      return { exchange: approved, giveBack: held.restore };
    }
    const url = held.error.fields?.review_url;
    const where = url ? `review ${id}, ${url}` : `review ${id}`;
    const again = io.inTransactionBlock ? 'Its transaction block has failed with it: ROLLBACK, then run the transaction again' : 'Run it again';
    if (io.signal.aborted && io.signal.reason === 'cancel') {
      this.#remember(digest, id);
      return { exchange: approved, error: new GatehouseError('approval_required', { message: `The statement was cancelled while it waited for approval (${where}); it was not run.`, fields: held.error.fields, detail: 'cancelled by the client' }) };
    }
    switch (held.error.code) {
      case 'approval_required': {
        this.#remember(digest, id);
        return {
          exchange: approved,
          error: new GatehouseError('approval_required', {
            message: `The statement was not approved in time (${where} is still pending); it was not run. ${again} to wait on the same review.`,
            fields: held.error.fields,
            detail: held.error.detail,
          }),
        };
      }
      case 'approval_denied':
        this.#pendingReviews.delete(digest);
        return { exchange: approved, error: new GatehouseError('approval_denied', { message: `${held.error.message.replace(/\.$/, '')}: the statement was not run (${where}).`, fields: held.error.fields, rule: decision.rules[0] }) };
      case 'approval_expired':
        this.#pendingReviews.delete(digest);
        return { exchange: approved, error: new GatehouseError('approval_expired', { message: `The review expired before anyone approved it (${where}); the statement was not run. ${again} to ask again.`, fields: held.error.fields }) };
      case 'approval_invalid':
        // Cancelled (by the requester or an admin) or otherwise unusable: the client is told the statement did not run.
        this.#pendingReviews.delete(digest);
        return { exchange: approved, error: new GatehouseError('approval_invalid', { message: `${held.error.message.replace(/\.$/, '')}: the statement was not run (${where}). ${again} to ask again.`, fields: held.error.fields, detail: held.error.detail, rule: decision.rules[0] }) };
      default:
        this.#pendingReviews.delete(digest);
        return { exchange: approved, error: held.error };
    }
  }

  #remember(digest: string, reviewId: string): void {
    this.#pendingReviews.delete(digest);
    this.#pendingReviews.set(digest, reviewId);
    if (this.#pendingReviews.size > maxRemembered) this.#pendingReviews.delete(this.#pendingReviews.keys().next().value!);
  }
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}
