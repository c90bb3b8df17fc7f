export { ApprovalService, type ApprovalServiceOptions, type Binding, type RuleOptions, type VoteInput } from './approval-service.js';
export { createApprovalStage, type ApprovalRequest, type ApprovalStage, type HoldResult } from './hold-for-approval.js';
export { requestDigest, canonicalJson } from './request-digest.js';
export { localReviewBus, postgresReviewBus, reviewChannel, type ReviewBus } from './review-bus.js';
export type { Review, ReviewEvent, ReviewEventType, ReviewState, ReviewVote } from './review-types.js';
export { reviewAuditEvent, reviewStates } from './review-types.js';
export { openApprovalService, startApprovals, type OpenApprovalService, type RunningApprovals, type StartApprovalsOptions } from './start-approvals.js';
export { signWebhook, slackMessage, webhookPayload } from './notify-reviewers.js';
export { maxReviewPageSize } from './review-store.js';
