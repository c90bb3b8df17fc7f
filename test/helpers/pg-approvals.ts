// What the in-process PostgreSQL approval tests share: a policy that holds some
// statements for approval, an approvals config whose reviewers are the group
// `reviewers`, and a reviewer of that group.

import type { ApprovalsConfig } from '../../src/config/approvals-schema.js';
import type { Exchange, Identity } from '../../src/exchange/index.js';
import type { DecisionPolicy } from '../../src/policy/index.js';

/** A policy that holds an allowed exchange `heldBy` names a rule for, and decides everything else as `base` does. */
export function holdWhere(heldBy: (exchange: Exchange) => string | undefined): (base: DecisionPolicy) => DecisionPolicy {
  return (base) => ({
    version: `${base.version}+approvals`,
    decide(exchange) {
      const decision = base.decide(exchange);
      const rule = heldBy(exchange);
      if (decision.effect !== 'allow' || rule === undefined) return decision;
      return { effect: 'require_approval', rules: [rule], reason: 'rule-require-approval', policyVersion: decision.policyVersion };
    },
  });
}

/** DELETE needs approval (rule approve-deletes). */
export const approveDeletes = holdWhere((exchange) => (exchange.operation === 'sql.delete' ? 'approve-deletes' : undefined));

const writeRules: Readonly<Record<string, string>> = { 'sql.delete': 'approve-deletes', 'sql.truncate': 'approve-truncate' };
/** DELETE (rule approve-deletes) and TRUNCATE (rule approve-truncate) need approval. */
export const approveWrites = holdWhere((exchange) => writeRules[exchange.operation]);

/** Reviews by the group `reviewers`, one approval, polled every 50 ms; `holdFor` 20 s unless given. */
export function testApprovals(options: { readonly holdFor?: number; readonly rules?: ApprovalsConfig['rules'] } = {}): ApprovalsConfig {
  return {
    adminsMayReview: false,
    defaults: { reviewers: ['reviewers'], minApprovals: 1, holdFor: options.holdFor ?? 20_000, expiresAfter: 3_600_000, approvalValidFor: 3_600_000, maxGrant: 3_600_000 },
    rules: options.rules ?? {},
    pollInterval: 50,
    notify: { webhooks: [] },
  };
}

/** A reviewer: group `reviewers`. */
export const reviewerAlice: Identity = { subject: 'key:alice', groups: ['reviewers'], kind: 'human', method: 'api_key', credentialId: 'alice' };
