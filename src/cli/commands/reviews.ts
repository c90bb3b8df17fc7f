// `gatehouse reviews list|show|approve|deny|cancel`: the approvals API from the shell,
// straight on the store (like `keys`). Votes are cast as the identity of the API key
// in $GATEHOUSE_REVIEWER_KEY (never a command-line argument, which `ps` shows), and
// go through the same ApprovalService checks as the admin API: reviewer groups, no
// self-approval, one vote each, and chained in the audit log as the gateway's are.
// They notify the configured webhooks and Slack through the same service a gateway
// runs (openApprovalService); gateways on PostgreSQL hear the change through NOTIFY,
// on SQLite by polling.

import pino from 'pino';
import { maxReviewPageSize, openApprovalService, reviewAuditEvent, reviewStates, type Review, type ReviewState } from '../../approvals/index.js';
import type { AuditTrail } from '../../audit/index.js';
import type { ApprovalsConfig } from '../../config/approvals-schema.js';
import { loadConfig, type GatehouseConfig } from '../../config/index.js';
import { formatDuration } from '../../config/units.js';
import { isGatehouseError } from '../../errors/index.js';
import { createLogger } from '../../observability/index.js';
import { ApiKeyService, apiKeyAuthenticator, identifyCaller, RevocationService } from '../../identity/index.js';
import type { Store } from '../../store/index.js';
import { CliError } from '../cli-error.js';
import { lifetimeFlag } from '../command-flags.js';
import { oneLine } from '../terminal-text.js';
import { configPath } from '../config-path.js';
import { withAuditTrail } from '../with-audit.js';
import { printTable } from './keys.js';
import { hintUnmatchedReviewFilters } from './search-hints.js';

export interface ReviewsOptions {
  readonly config?: string | undefined;
  readonly state?: string | undefined;
  readonly connection?: string | undefined;
  readonly subject?: string | undefined;
  readonly limit?: string | undefined;
  readonly comment?: string | undefined;
  readonly grant?: string | undefined;
  readonly json?: boolean | undefined;
}

export const reviewerKeyEnv = 'GATEHOUSE_REVIEWER_KEY';

/** How long a vote waits for its notifications (webhook retries included) before the command ends. */
const notifyWaitMs = 15_000;

export async function reviewsCommand(action: string | undefined, args: readonly string[], options: ReviewsOptions): Promise<void> {
  // A vote or a cancel notifies reviewers, with the approvals' webhook secrets.
  const secrets = action === 'approve' || action === 'deny' || action === 'cancel' ? 'store-and-approvals' : 'store-only';
  const approvals = loadConfig(configPath(options.config), process.env, { secrets }).approvals;
  if (!approvals) throw new CliError('approvals are not configured (no "approvals:" section in the config)');
  // Votes and cancels are chained like the gateway's (review.voted, review.approved …).
  await withAuditTrail(options.config, (store, audit, config) => reviewsAction(action, args, options, store, audit, config, approvals), secrets);
}

async function reviewsAction(action: string | undefined, args: readonly string[], options: ReviewsOptions, store: Store, audit: AuditTrail, config: GatehouseConfig, approvals: ApprovalsConfig): Promise<void> {
  const chained: Promise<void>[] = [];
  const { service, close } = await openApprovalService({
    db: store.db,
    store: config.store,
    config: approvals,
    adminGroups: config.admin.groups,
    // Warnings only (a notification that failed), on stderr: stdout is the command's answer.
    logger: createLogger('warn', pino.destination({ dest: 2, sync: true })),
    apiUrl: () => approvals.apiUrl ?? '',
    audit: (event) => void chained.push(audit.log.event(reviewAuditEvent(event))),
  });
  try {
    switch (action) {
      case 'list': {
        if (options.state !== undefined && !reviewStates.includes(options.state as ReviewState)) throw new CliError(`--state must be one of ${reviewStates.join(', ')}`);
        // As for sessions list: a positive integer (not NaN into the query, 0 was "no limit"),
        // paged through beyond the largest page, newest first.
        const limit = options.limit === undefined ? 50 : Number(options.limit);
        if (!Number.isInteger(limit) || limit < 1) throw new CliError('--limit must be a positive integer');
        const items: Review[] = [];
        let before: number | undefined;
        do {
          const page = await service.list({ state: options.state as ReviewState | undefined, connection: options.connection, subject: options.subject, limit: Math.min(limit - items.length, maxReviewPageSize), before });
          items.push(...page.items);
          before = page.next;
        } while (before !== undefined && items.length < limit);
        if (items.length === 0) await hintUnmatchedReviewFilters(store.db, options, config);
        if (options.json) return void process.stdout.write(`${JSON.stringify(items)}\n`);
        printTable(['ID', 'STATE', 'SUBJECT', 'CONNECTION', 'OPERATION', 'RULES', 'APPROVALS', 'CREATED'], items.map((r) => [r.id, r.state, r.subject, r.connection, r.operation, r.rules.join(','), `${r.approvals}/${r.minApprovals}`, r.createdAt]));
        return;
      }
      case 'show': {
        const review = await service.get(required(args[0], 'show ID'));
        if (!review) throw new CliError(`no review with id "${args[0]}"`, 1);
        return print(review, options.json);
      }
      case 'approve':
      case 'deny':
      case 'cancel': {
        const id = required(args[0], `${action} ID`);
        const token = process.env[reviewerKeyEnv];
        if (!token) throw new CliError(`set ${reviewerKeyEnv} to the reviewer's API key: votes are cast as that key's identity`);
        // Revocations of the subject (`revoke user key:alice`) count here as on the admin API.
        const revocations = new RevocationService(store.db);
        await revocations.refresh();
        const identity = await identifyCaller([apiKeyAuthenticator(new ApiKeyService(store.db))], { checkRevoked: (who) => revocations.check(who) })(token);
        let grantMs: number | undefined;
        if (options.grant !== undefined) {
          grantMs = lifetimeFlag('grant', options.grant, '30m, 2h');
          if (grantMs === 0) throw new CliError(`--grant "${options.grant}" is not a duration (e.g. 30m, 2h)`);
        }
        const review = action === 'cancel' ? await service.cancel(id, identity) : await service.vote(id, identity, action, { comment: options.comment, grantMs, via: 'cli' });
        // The vote is reported done once its events are in the chain.
        await Promise.all(chained);
        return print(review, options.json);
      }
      default:
        throw new CliError('usage: gatehouse reviews list|show|approve|deny|cancel');
    }
  } catch (error) {
    if (isGatehouseError(error)) throw new CliError(`${error.code}: ${error.message}`, 1);
    throw error;
  } finally {
    await Promise.allSettled(chained);
    await close(notifyWaitMs);
  }
}

function required(value: string | undefined, usage: string): string {
  if (!value) throw new CliError(`usage: gatehouse reviews ${usage}`);
  return value;
}

function print(review: Review, json: boolean | undefined): void {
  if (json) return void process.stdout.write(`${JSON.stringify(review)}\n`);
  const lines = [
    `review ${review.id}: ${review.state}`,
    `  requester     ${review.subject}${review.identityKind ? ` (${review.identityKind})` : ''}`,
    `  request       ${review.connection} ${review.operation}${review.model ? ` model ${review.model}` : ''}`,
    `  rules         ${review.rules.join(', ')}  (policy ${review.policyVersion})`,
    `  digest        ${review.digest}`,
    `  reason        ${review.justification ?? '-'}`,
    `  reviewers     ${review.reviewerGroups.join(', ')}; ${review.approvals}/${review.minApprovals} approvals`,
    `  created       ${review.createdAt}; expires ${review.expiresAt}`,
    ...(review.decidedAt ? [`  decided       ${review.decidedAt} by ${review.decidedBy}`] : []),
    ...(review.grant ? [`  grant         ${formatDuration(review.grant.durationMs)}, until ${review.grant.expiresAt ?? '-'}`] : []),
    ...(review.executedAt ? [`  used          ${review.executedAt} by exchange ${review.executedByExchange}`] : []),
    ...(review.promptPreview ? [`  prompt        ${review.promptPreview}`] : []),
    ...review.votes.map((v) => `  vote          ${v.vote} by ${v.voter} (${v.via}) ${v.createdAt}${v.comment ? `: ${v.comment}` : ''}`),
  ];
  process.stdout.write(`${lines.map(oneLine).join('\n')}\n`);
}
