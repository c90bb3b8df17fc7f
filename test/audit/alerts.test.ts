// The alert detectors on their own (src/audit/alerts/), on a clock the test moves: their
// windows, what starts a count over, and that their memory stays bounded.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { bulkRequests } from '../../src/audit/alerts/bulk-requests.js';
import { failedAuthThenSuccess } from '../../src/audit/alerts/failed-auth-then-success.js';
import type { Identity } from '../../src/exchange/index.js';

const alice: Identity = { subject: 'key:alice', kind: 'human', groups: ['ml'], method: 'api_key', credentialId: 'k1' };

describe('failed-auth-then-success', () => {
  test('failures older than the window do not count; a success below the threshold starts over', () => {
    const detector = failedAuthThenSuccess({ failures: 3, window: 1_000 });
    detector.failed('a:10.0.0.1', 0);
    detector.failed('a:10.0.0.1', 100);
    detector.failed('a:10.0.0.1', 1_100); // the window of the first ended: a new run of one
    assert.equal(detector.succeeded('a:10.0.0.1', '10.0.0.1', 'data', alice, 1_200), undefined);
    for (const at of [2_000, 2_001]) detector.failed('a:10.0.0.1', at);
    assert.equal(detector.succeeded('a:10.0.0.1', '10.0.0.1', 'data', alice, 2_002), undefined, 'two failures, then a success: below the threshold');
    detector.failed('a:10.0.0.1', 2_003);
    assert.equal(detector.succeeded('a:10.0.0.1', '10.0.0.1', 'data', alice, 2_004), undefined, 'the success before started the count over');
  });

  test('the threshold reached within the window: one alert, then the count starts over; other addresses are apart', () => {
    const detector = failedAuthThenSuccess({ failures: 2, window: 60_000 });
    detector.failed('a:10.0.0.1', 10);
    detector.failed('a:10.0.0.2', 11);
    detector.failed('a:10.0.0.1', 12);
    assert.deepEqual(detector.succeeded('a:10.0.0.1', '10.0.0.1', 'postgres', alice, 20), { alert: 'failed-auth-then-success', client: '10.0.0.1', listener: 'postgres', subject: 'key:alice', failures: 2, firstFailureAt: 10, windowMs: 60_000 });
    assert.equal(detector.succeeded('a:10.0.0.1', '10.0.0.1', 'postgres', alice, 21), undefined);
    assert.equal(detector.succeeded('a:10.0.0.2', '10.0.0.2', 'data', alice, 22), undefined, 'one failure from the other address');
  });

  test('memory is bounded: the oldest address is forgotten first', () => {
    const detector = failedAuthThenSuccess({ failures: 1, window: 60_000 }, 2);
    for (const address of ['a:1', 'a:2', 'a:3']) detector.failed(address, 0);
    assert.equal(detector.succeeded('a:1', '1', 'data', alice, 1), undefined, 'forgotten');
    assert.ok(detector.succeeded('a:3', '3', 'data', alice, 1));
  });
});

describe('bulk-requests', () => {
  test('one alert when the count reaches the threshold, none for the rest of the window, again in the next', () => {
    const detector = bulkRequests({ requests: 3, window: 1_000 });
    const alerts = [0, 1, 2, 3, 4, 999, 1_000, 1_001, 1_002].map((at) => detector.counted('key:scraper', 'db', at));
    assert.deepEqual(
      alerts.map((a) => a && [a.requests, a.since]),
      [undefined, undefined, [3, 0], undefined, undefined, undefined, undefined, undefined, [3, 1_000]],
    );
    assert.equal(detector.counted('key:other', 'db', 1_003), undefined, 'each subject has its own count');
  });

  test('memory is bounded: the oldest subject is forgotten first', () => {
    const detector = bulkRequests({ requests: 2, window: 60_000 }, 2);
    for (const subject of ['s1', 's2', 's3']) detector.counted(subject, 'db', 0);
    assert.equal(detector.counted('s1', 'db', 1), undefined, 's1 was forgotten: this is its first again');
    assert.ok(detector.counted('s3', 'db', 1));
  });
});
