// Wiring for approvals: the bus (LISTEN/NOTIFY on PostgreSQL), the notifier and the
// service (openApprovalService, shared by a gateway and `gatehouse reviews`), and in a
// gateway the pipeline stage and the expiry sweeper, and their orderly shutdown.
// Nothing here runs when config has no `approvals:` section.

import type { Kysely } from 'kysely';
import type { ApprovalsConfig } from '../config/approvals-schema.js';
import type { Logger } from '../observability/index.js';
import type { Database, StoreConfig } from '../store/index.js';
import { ApprovalService } from './approval-service.js';
import { createApprovalStage, type ApprovalStage } from './hold-for-approval.js';
import type { DecisionPolicy } from '../policy/index.js';
import { createNotifier } from './notify-reviewers.js';
import { localReviewBus, postgresReviewBus } from './review-bus.js';
import type { ReviewEvent } from './review-types.js';

export interface RunningApprovals {
  readonly service: ApprovalService;
  readonly stage: ApprovalStage;
  /** The admin listener's URL, the default base of review links. */
  setAdminUrl(url: string | undefined): void;
  close(): Promise<void>;
}

export interface StartApprovalsOptions {
  readonly db: Kysely<Database>;
  readonly store: StoreConfig;
  readonly config: ApprovalsConfig;
  readonly adminGroups: readonly string[];
  readonly logger: Logger;
  /** Where review and vote events go for the audit log (the lead connects AuditLog here). */
  readonly audit?: ((event: ReviewEvent) => void) | undefined;
  /** Applied to a review's preview of the request before it is stored or sent (ApprovalServiceOptions.redactPreview). */
  readonly redactPreview?: ((text: string) => string) | undefined;
  /** The running policy: a request approved after the policy changed is decided again. */
  readonly policy?: DecisionPolicy | undefined;
}

export interface OpenApprovalServiceOptions extends StartApprovalsOptions {
  /** The admin API base URL reviewers reach, for the links of notifications. */
  readonly apiUrl: () => string;
}

export interface OpenApprovalService {
  readonly service: ApprovalService;
  /** Waits for notifications in flight, up to `notifyWaitMs`, then closes the bus. */
  close(notifyWaitMs?: number): Promise<void>;
}

/**
 * The service with its bus, audit hook and notifier: what a gateway runs and what
 * `gatehouse reviews` votes through, so a vote is announced the same way wherever it is cast.
 */
export async function openApprovalService(options: OpenApprovalServiceOptions): Promise<OpenApprovalService> {
  const { db, config, logger } = options;
  const bus = 'postgres' in options.store
    ? await postgresReviewBus(db, options.store.postgres.url, (error) => logger.warn({ err: error.message }, 'review LISTEN connection failed; reconnecting'))
    : localReviewBus();
  let service: ApprovalService | undefined;
  const notifier = createNotifier(config.notify, { review: (id) => service!.reviewUrl(id), action: (id, a) => service!.actionUrl(id, a) }, logger);
  service = new ApprovalService(db, {
    config,
    adminGroups: options.adminGroups,
    bus,
    apiUrl: options.apiUrl,
    audit: (event) => {
      logger.info({ review: event.review.id, event: event.type, actor: event.actor, state: event.review.state }, 'review event');
      options.audit?.(event);
    },
    notify: (event) => notifier.notify(event),
    redactPreview: options.redactPreview,
  });
  return {
    service,
    async close(notifyWaitMs) {
      await notifier.close(notifyWaitMs);
      await bus.close();
    },
  };
}

export async function startApprovals(options: StartApprovalsOptions): Promise<RunningApprovals> {
  const { config } = options;
  let adminUrl = config.apiUrl ?? '';
  const { service, close } = await openApprovalService({ ...options, apiUrl: () => adminUrl });
  const sweeper = setInterval(() => void service.expireDue().catch(() => undefined), Math.max(config.pollInterval, 1000));
  sweeper.unref();
  return {
    service,
    stage: createApprovalStage(service, { pollInterval: config.pollInterval, policy: options.policy }),
    setAdminUrl(url) {
      if (config.apiUrl === undefined && url !== undefined) adminUrl = url;
    },
    async close() {
      clearInterval(sweeper);
      await close();
    },
  };
}
