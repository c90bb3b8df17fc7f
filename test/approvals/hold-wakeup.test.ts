// A held request waits on the review bus; the vote's event and the approval's follow
// each other by milliseconds. The approval's event used to be lost when it arrived while
// the hold was reading the review the vote's event woke it for: the request then waited
// for the next poll (5 s with a shared bus). This plays that order exactly.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createApprovalStage, localReviewBus, type ApprovalService, type HoldResult, type Review } from '../../src/approvals/index.js';
import type { Decision, Exchange } from '../../src/exchange/index.js';

test('an approval whose event arrives while the hold reads the review after the vote releases the request at once', async () => {
  const bus = localReviewBus();
  let state: Review['state'] = 'pending';
  let reading: Promise<void> | undefined;
  let readStarted: () => void = () => undefined;
  const service = {
    bus,
    findGrant: async () => undefined,
    open: async () => ({ id: 'rv_1', state }) as Review,
    optionsFor: () => ({ holdFor: 20_000 }),
    reviewUrl: (id: string) => `http://admin/reviews/${id}`,
    errorFields: () => ({}),
    consume: async () => undefined,
    // A read sees the state as it was when it began, and takes a while (a store round trip).
    get: async (id: string) => {
      const seen = state;
      readStarted();
      await (reading = new Promise((resolve) => setTimeout(resolve, 50)));
      return { id, state: seen } as Review;
    },
  } as unknown as ApprovalService;
  const stage = createApprovalStage(service, { pollInterval: 10_000 });
  const exchange = { id: 'ex_1', connection: 'demo', operation: 'chat.completions', identity: { subject: 'key:bot' } } as unknown as Exchange;
  const decision = { effect: 'require_approval', rules: ['risky'], reason: 'rule-require-approval', policyVersion: 'v1' } as Decision;

  const started = Date.now();
  const held = stage.hold(exchange, decision, { digest: 'sha256:x' });
  await new Promise((resolve) => setTimeout(resolve, 200)); // the first read is done; the hold waits
  const read = new Promise<void>((resolve) => (readStarted = resolve));
  await bus.publish('review.voted', 'rv_1');
  await read; // the hold is reading the review again, and sees it pending
  state = 'approved';
  await bus.publish('review.approved', 'rv_1');
  await reading;
  const outcome = await Promise.race([held, new Promise<'still held'>((resolve) => setTimeout(() => resolve('still held'), 3000).unref())]);
  assert.notEqual(outcome, 'still held', 'the approval was missed: the request waits for the next poll');
  assert.deepEqual((outcome as HoldResult).approval, { reviewId: 'rv_1', via: 'held' });
  assert.equal((outcome as HoldResult).error, undefined);
  assert.ok(Date.now() - started < 2000);
});
