// Config section `approvals:` — who reviews requests that policy marks
// `require_approval`, how long a request is held, and where reviewers are told.
// Options are keyed by the deciding rule's name (Decision.rules[0]), falling back to
// `defaults`, so the policy engine feeds approvals without knowing about them.

import { z } from 'zod';
import { timerDuration } from './fields.js';

interface Helpers {
  readonly duration: z.ZodType<number, string | number>;
  readonly secret: z.ZodType<string, string>;
  readonly text: z.ZodType<string, string>;
}

export function buildApprovalsSchema({ duration, secret, text }: Helpers) {
  const groups = z.array(z.string().min(1)).min(1);
  const minApprovals = z.number().int().min(1).max(20);
  const ruleOptions = z.strictObject({
    reviewers: groups.optional(),
    minApprovals: minApprovals.optional(),
    holdFor: duration.optional(),
    expiresAfter: duration.optional(),
    approvalValidFor: duration.optional(),
    maxGrant: duration.optional(),
  });
  const url = text.pipe(z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }));
  return z.strictObject({
    /** Admin API base URL as reviewers reach it; default: the admin listener's URL. */
    apiUrl: url.optional(),
    /** A console's base URL; review links become `<consoleUrl>/reviews/<id>`. */
    consoleUrl: url.optional(),
    /** When true, members of `admin.groups` may review any rule. */
    adminsMayReview: z.boolean().default(false),
    defaults: z
      .strictObject({
        reviewers: groups.optional(),
        minApprovals: minApprovals.default(1),
        holdFor: duration.default(30_000),
        expiresAfter: duration.default(3_600_000),
        approvalValidFor: duration.default(3_600_000),
        maxGrant: duration.default(8 * 3_600_000),
      })
      .prefault({}),
    rules: z.record(z.string().min(1), ruleOptions).default({}),
    /** SQLite has no LISTEN/NOTIFY: held requests poll the store this often. */
    pollInterval: timerDuration(10, 'a held request re-reads its review from the store this often (0 would query it without pause)').default(500),
    notify: z
      .strictObject({
        webhooks: z
          .array(z.strictObject({ url, secret, maxAttempts: z.number().int().min(1).max(10).default(5), initialBackoff: timerDuration(0, 'retries may follow at once').default(500) }))
          .default([]),
        slack: z.strictObject({ webhookUrl: secret }).optional(),
      })
      .prefault({}),
  });
}

export type ApprovalsConfig = z.output<ReturnType<typeof buildApprovalsSchema>>;
