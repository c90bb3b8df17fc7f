// Outbound notifications for review events:
// - generic webhooks: the event as JSON, signed with HMAC-SHA256 over
//   `<timestamp>.<body>` (headers `gatehouse-timestamp`, unix seconds, and
//   `gatehouse-signature: sha256=<hex>`), retried on network errors, 429 and 5xx with
//   exponential backoff, at most `maxAttempts` times;
// - Slack incoming webhook: a Block Kit message for a new review, with the
//   requester's reason and links to approve or deny; a one-line message on decisions.
// Delivery never blocks or fails an exchange: errors are logged and dropped.

import { createHmac } from 'node:crypto';
import type { ApprovalsConfig } from '../config/approvals-schema.js';
import type { Logger } from '../observability/index.js';
import type { ReviewEvent } from './review-types.js';

/** A link is undefined when there is no base URL to make it from (no console, admin API, or apiUrl): left out. */
export interface Links {
  review(id: string): string | undefined;
  action(id: string, action: 'approve' | 'deny'): string | undefined;
}

export function signWebhook(secret: string, timestamp: number, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

export function webhookPayload(event: ReviewEvent, links: Links) {
  return {
    type: event.type,
    at: event.at,
    actor: event.actor,
    review: event.review,
    links: { review: links.review(event.review.id), approve: links.action(event.review.id, 'approve'), deny: links.action(event.review.id, 'deny') },
  };
}

export function slackMessage(event: ReviewEvent, links: Links) {
  const r = event.review;
  if (event.type !== 'review.created') {
    return { text: `Review ${r.id} (${r.subject} → ${r.connection} ${r.operation}): ${event.type.replace('review.', '')} by ${event.actor}.` };
  }
  const buttons = [
    { type: 'button', style: 'primary', text: { type: 'plain_text', text: 'Approve' }, url: links.action(r.id, 'approve'), action_id: 'approve' },
    { type: 'button', style: 'danger', text: { type: 'plain_text', text: 'Deny' }, url: links.action(r.id, 'deny'), action_id: 'deny' },
    { type: 'button', text: { type: 'plain_text', text: 'Open review' }, url: links.review(r.id), action_id: 'open' },
  ].filter((button) => button.url !== undefined);
  const fields = [
    { type: 'mrkdwn', text: `*Requester*\n${r.subject}` },
    { type: 'mrkdwn', text: `*Connection*\n${r.connection}` },
    { type: 'mrkdwn', text: `*Operation*\n${r.operation}` },
    { type: 'mrkdwn', text: `*Rule*\n${r.rules.join(', ')}` },
  ];
  return {
    text: `Approval needed: ${r.subject} → ${r.connection} ${r.operation} (review ${r.id})`,
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: 'Approval needed' } },
      { type: 'section', fields },
      { type: 'section', text: { type: 'mrkdwn', text: `*Reason given*\n${r.justification ?? '_none_'}` } },
      ...(r.promptPreview ? [{ type: 'section', text: { type: 'mrkdwn', text: `*Request*\n\`\`\`${r.promptPreview.replaceAll('```', "'''")}\`\`\`` } }] : []),
      { type: 'context', elements: [{ type: 'mrkdwn', text: `Review ${r.id} · needs ${r.minApprovals} approval(s) from ${r.reviewerGroups.join(', ')} · expires ${r.expiresAt}` }] },
      ...(buttons.length > 0 ? [{ type: 'actions', elements: buttons }] : []),
    ],
  };
}

export interface Notifier {
  notify(event: ReviewEvent): void;
  /** Waits for deliveries in flight, up to `ms`, then abandons them. */
  close(ms?: number): Promise<void>;
}

export function createNotifier(config: ApprovalsConfig['notify'], links: Links, logger: Logger): Notifier {
  const inFlight = new Set<Promise<void>>();
  const stop = new AbortController();
  const track = (p: Promise<void>) => {
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  };
  return {
    notify(event) {
      if (event.type === 'review.voted') return;
      for (const hook of config.webhooks) {
        const body = JSON.stringify(webhookPayload(event, links));
        track(deliver(hook.url, body, hook.maxAttempts, hook.initialBackoff, stop.signal, (timestamp) => ({ 'gatehouse-timestamp': String(timestamp), 'gatehouse-signature': signWebhook(hook.secret, timestamp, body), 'gatehouse-event': event.type }), logger));
      }
      if (config.slack && (event.type === 'review.created' || event.type === 'review.approved' || event.type === 'review.denied' || event.type === 'review.expired')) {
        track(deliver(config.slack.webhookUrl, JSON.stringify(slackMessage(event, links)), 3, 500, stop.signal, () => ({}), logger));
      }
    },
    async close(ms = 2000) {
      const timer = setTimeout(() => stop.abort(), ms);
      await Promise.allSettled([...inFlight]);
      clearTimeout(timer);
    },
  };
}

async function deliver(url: string, body: string, maxAttempts: number, initialBackoff: number, signal: AbortSignal, headers: (timestamp: number) => Record<string, string>, logger: Logger): Promise<void> {
  const target = new URL(url).origin; // never log a path: Slack's carries its secret
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    let status: number | undefined;
    try {
      const timestamp = Math.floor(Date.now() / 1000);
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers(timestamp) }, body, signal: AbortSignal.any([signal, AbortSignal.timeout(10_000)]) });
      await res.arrayBuffer().catch(() => undefined);
      status = res.status;
      if (res.ok) return;
      if (status < 500 && status !== 429) break;
    } catch (error) {
      if (signal.aborted) return;
      logger.warn({ target, attempt, err: (error as Error).message }, 'review notification failed');
    }
    if (attempt < maxAttempts) {
      await new Promise((resolve) => setTimeout(resolve, initialBackoff * 2 ** (attempt - 1)));
      if (signal.aborted) return;
    }
  }
  logger.warn({ target }, 'review notification abandoned');
}
