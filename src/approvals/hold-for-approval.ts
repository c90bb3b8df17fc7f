// Stage: approve. Runs between authorize and record for a `require_approval` decision.
// Enforces:
// - `Gatehouse-Review: <id>` (or the protocol's equivalent) uses that review, only if
//   it is approved and bound to this identity (and the API key it stands on),
//   connection, operation, policy version and request digest, once (see ApprovalService.consume);
// - otherwise a live grant for this identity, connection, operation and rule lets it pass;
// - otherwise a review is opened (or the one open for the same request reused: pending,
//   or approved and unused) and
//   the request is held up to `holdFor`: approved in time → it continues, consuming
//   the approval (with `deferUse`, when the pipeline calls `use`, after its last
//   refusing stage); else the caller gets approval_required / _denied / _expired with the
//   review id and URL;
// - the caller going away ends the hold (client_closed); the review stays, for a retry;
// - the caller's credential expiring ends the hold (credential_expired): nothing is sent
//   for a credential that is no longer valid, and the review stays.

import { createHash } from 'node:crypto';
import { redactPathCredentials } from '../detect/index.js';
import { GatehouseError } from '../errors/index.js';
import { apiKeyOf } from '../identity/index.js';
import type { Decision, Exchange, ExchangeApproval } from '../exchange/index.js';
import type { DecisionPolicy } from '../policy/index.js';
import type { ApprovalService, Binding } from './approval-service.js';
import type { Review } from './review-types.js';

export interface ApprovalRequest {
  /** SHA-256 of the canonical request body (request-digest.ts). */
  readonly digest: string | undefined;
  readonly justification?: string | undefined;
  readonly reviewId?: string | undefined;
  /** What the review shows of the request, when not its text alone (a statement and its parameters). */
  readonly preview?: string | undefined;
  /** Aborted when the caller disconnects. */
  readonly signal?: AbortSignal | undefined;
  /**
   * Called once a review is open and the request is about to wait for it, for protocols
   * that tell the caller while it waits (PostgreSQL: a NoticeResponse with the URL).
   */
  readonly onHeld?: ((held: { readonly reviewId: string; readonly reviewUrl: string | undefined; readonly holdForMs: number }) => void) | undefined;
  /**
   * Check the approval but leave it unused: the result's `use` uses it. For a protocol
   * with stages after this one that may still refuse (HTTP: limits), so a refusal there
   * does not spend a reviewer's single-use consent on a request that was never sent.
   */
  readonly deferUse?: boolean | undefined;
}

export interface HoldResult {
  readonly approval: ExchangeApproval;
  /** Set when the exchange must not proceed. */
  readonly error?: GatehouseError | undefined;
  /** With `deferUse`: uses the approval (approved → executed, once); throws when it cannot. */
  readonly use?: (() => Promise<void>) | undefined;
  /**
   * Gives the used approval back (the target never acted on the request: a PostgreSQL
   * statement the database skipped after an earlier error in its batch). Set when a
   * review's approval was used (or, with `deferUse`, is to be); not for a grant.
   */
  readonly restore?: (() => Promise<void>) | undefined;
  /** The running policy's decision, when the policy changed while the request was held. */
  readonly decision?: Decision | undefined;
}

export interface ApprovalStage {
  hold(exchange: Exchange, decision: Decision, request: ApprovalRequest): Promise<HoldResult>;
}

export interface ApprovalStageOptions {
  readonly pollInterval: number;
  /** The running policy: a request approved after it changed is decided again (decidedAgain). */
  readonly policy?: DecisionPolicy | undefined;
}

export function createApprovalStage(service: ApprovalService, options: ApprovalStageOptions): ApprovalStage {
  const stage = holdStage(service, options);
  const policy = options.policy;
  return {
    async hold(exchange, decision, request) {
      const held = await stage.hold(exchange, decision, request);
      if (held.error) return { ...held, error: withRule(held.error, decision) };
      if (policy === undefined || policy.version === decision.policyVersion) return held;
      return decidedAgain(service, policy, exchange, decision, held);
    },
  };
}

/**
 * The policy changed (a reload) while the request was held: the reviewer's consent went
 * to a request decided under the old policy, which must not outlive it (a reload that
 * denies the request was bypassed). The running policy decides again: a deny refuses;
 * an approval it asks for is one the old review cannot give (a review is bound to its
 * policy version), so the caller sends the request again; an allow goes on.
 */
function decidedAgain(service: ApprovalService, policy: DecisionPolicy, exchange: Exchange, held: Decision, result: HoldResult): HoldResult {
  const decision = policy.decide(exchange);
  if (decision.effect === 'allow') return { ...result, decision };
  const detail = `policy ${held.policyVersion} -> ${decision.policyVersion} during the hold`;
  const reviewId = result.approval.reviewId;
  const error =
    decision.effect === 'deny'
      ? new GatehouseError('access_denied', { message: decision.message, rule: decision.rules[0], detail })
      : new GatehouseError('approval_invalid', {
          rule: decision.rules[0],
          fields: service.errorFields(reviewId),
          message: `The policy changed while this request was held, so review ${reviewId} (given under the previous policy) does not approve it; send the request again for a review under the running policy.`,
          detail,
        });
  return { approval: result.approval, decision, error };
}

/**
 * An approval refusal names the rule that asked for the approval, as a deny names its
 * rule: the caller sees which rule holds the request (`rule` in the envelope).
 */
function withRule(error: GatehouseError, decision: Decision): GatehouseError {
  const rule = decision.rules[0];
  if (error.rule !== undefined || rule === undefined || !error.code.startsWith('approval_')) return error;
  return new GatehouseError(error.code, { message: error.message, detail: error.detail, rule, fields: error.fields, cause: error.cause });
}

function holdStage(service: ApprovalService, options: { readonly pollInterval: number }): ApprovalStage {
  return {
    async hold(exchange, decision, request) {
      const subject = exchange.identity?.subject;
      if (subject === undefined || request.digest === undefined) {
        // Fail closed: an approval cannot be bound without an identity and a digest.
        throw new GatehouseError('access_denied', { message: 'This request requires approval, which needs an identified caller and a request digest.', rule: decision.rules[0] });
      }
      // A review shows, and stores, the operation with any credential in its path as a
      // type label (`http.GET /users/[OPENAI_KEY]`); the digest then covers the real
      // path too, so an approval for one key's path is not one for another's.
      const operation = redactPathCredentials(exchange.operation);
      const digest = operation === exchange.operation ? request.digest : `sha256:${createHash('sha256').update(`${exchange.operation}\n${request.digest}`).digest('hex')}`;
      const apiKey = apiKeyOf(exchange.identity!) ?? null;
      const binding: Binding = { subject, apiKey, connection: exchange.connection, operation, digest, policyVersion: decision.policyVersion };
      // Uses the approval now, or (deferUse) checks it and hands over its use.
      const take = async (id: string, approval: ExchangeApproval): Promise<HoldResult> => {
        if (!request.deferUse) {
          await service.consume(id, binding, exchange.id);
          return { approval, restore: () => service.restore(id, exchange.id) };
        }
        await service.checkUsable(id, binding);
        return { approval, use: async () => void (await service.consume(id, binding, exchange.id)), restore: () => service.restore(id, exchange.id) };
      };

      if (request.reviewId !== undefined) {
        try {
          return await take(request.reviewId, { reviewId: request.reviewId, via: 'retry' });
        } catch (error) {
          // A retry while the review is still pending is held like the first attempt.
          if (!(error instanceof GatehouseError && error.code === 'approval_required')) {
            return { approval: { reviewId: request.reviewId, via: 'retry' }, error: error as GatehouseError };
          }
        }
      }

      const granted = await service.findGrant(subject, apiKey, exchange.connection, operation, decision.rules);
      if (granted !== undefined) return { approval: { reviewId: granted, via: 'grant' } };

      const review = request.reviewId !== undefined ? ((await service.get(request.reviewId)) as Review) : await service.open(exchange, decision, binding, request.justification, request.preview);
      const approval: ExchangeApproval = { reviewId: review.id, via: 'held' };
      const { holdFor } = service.optionsFor(decision.rules);
      // Told only when it will wait: a review found already approved (the same request
      // sent again after its caller left) is used at once, and "waits for a reviewer"
      // would be false.
      if (review.state === 'pending') request.onHeld?.({ reviewId: review.id, reviewUrl: service.reviewUrl(review.id), holdForMs: holdFor });
      // A credential that expires during the hold ends it then (as a PostgreSQL session is
      // ended at its credential's expiry): a consent given later does not send a request
      // for a credential no longer valid. The review stays as it is, for a valid one.
      const expiresAt = exchange.identity?.expiresAt;
      const state = await waitForDecision(service, review.id, holdFor, options.pollInterval, request.signal, expiresAt);
      if (state === 'credential_expired' || (expiresAt !== undefined && expiresAt <= Date.now())) {
        return { approval, error: new GatehouseError('credential_expired', { message: 'The credential expired while this request was held for approval, so it was not sent.', detail: `expired at ${new Date(expiresAt!).toISOString()} during the hold on review ${review.id}` }) };
      }
      if (state === 'aborted') {
        // The gateway ending the exchange (a shutdown) gives its own error as the reason.
        const reason: unknown = request.signal?.reason;
        return { approval, error: reason instanceof GatehouseError ? reason : new GatehouseError('client_closed', { detail: `the caller left while review ${review.id} was pending` }) };
      }
      if (state === 'pending') return { approval, error: new GatehouseError('approval_required', { fields: service.errorFields(review.id), detail: `held ${holdFor} ms` }) };
      try {
        return await take(review.id, approval);
      } catch (error) {
        return { approval, error: error as GatehouseError };
      }
    },
  };
}

/**
 * Waits until the review leaves `pending`, `holdFor` passes, the caller's credential
 * expires ('credential_expired'), or the caller leaves.
 * Wakes on the bus (this process, or LISTEN/NOTIFY) and polls the store as well, so a
 * decision taken elsewhere is seen even without a shared bus. The subscription lasts the
 * whole wait: an event that arrives while the review is being read makes it read again.
 * (Subscribed only between reads, the approval's event, which follows the vote's by
 * milliseconds, arrived during the read the vote's event started and was lost; the
 * request then waited for the next poll, up to 5 s.)
 */
async function waitForDecision(service: ApprovalService, id: string, holdFor: number, pollInterval: number, signal: AbortSignal | undefined, expiresAt: number | undefined): Promise<string> {
  const holdEnds = Date.now() + holdFor;
  const deadline = expiresAt === undefined ? holdEnds : Math.min(holdEnds, expiresAt);
  const poll = service.bus.shared ? Math.max(pollInterval, 5000) : pollInterval;
  let woken = false;
  let wake: (() => void) | undefined;
  const nudge = () => {
    woken = true;
    wake?.();
  };
  const unsubscribe = service.bus.subscribe((_type, reviewId) => {
    if (reviewId === id) nudge();
  });
  const unsubscribeResync = service.bus.onResync(nudge);
  signal?.addEventListener('abort', nudge, { once: true });
  try {
    for (;;) {
      if (signal?.aborted) return 'aborted';
      woken = false;
      const review = await service.get(id);
      if (!review) return 'expired';
      if (review.state !== 'pending') return review.state;
      const left = deadline - Date.now();
      if (left <= 0) return expiresAt !== undefined && Date.now() >= expiresAt ? 'credential_expired' : 'pending';
      if (woken) continue; // something happened while it was read: read again
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          wake = undefined;
          resolve();
        }, Math.min(left, poll));
        wake = () => {
          clearTimeout(timer);
          wake = undefined;
          resolve();
        };
      });
    }
  } finally {
    unsubscribe();
    unsubscribeResync();
    signal?.removeEventListener('abort', nudge);
  }
}
