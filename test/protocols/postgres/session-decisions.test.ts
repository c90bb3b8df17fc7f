// SessionDecisions: a PostgreSQL session reuses its decision per operation only while the
// policy version stays and the policy says its rules read names only.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Decision, Exchange } from '../../../src/exchange/index.js';
import type { DecisionPolicy } from '../../../src/policy/index.js';
import { SessionDecisions } from '../../../src/protocols/postgres/decide-statement.js';

const exchange = (operation: string) => ({ connection: 'db', operation }) as Exchange;

function countingPolicy(cacheable: boolean | undefined): DecisionPolicy & { calls: number; version: string } {
  const policy = {
    calls: 0,
    version: 'v1',
    decide(e: Exchange): Decision {
      policy.calls++;
      return { effect: e.operation === 'sql.drop' ? 'deny' : 'allow', rules: ['r'], reason: 'rule-allow', policyVersion: policy.version };
    },
    ...(cacheable === undefined ? {} : { cacheableOn: () => cacheable }),
  };
  return policy;
}

describe('SessionDecisions', () => {
  test('decides once per operation and policy version when the policy allows it', () => {
    const policy = countingPolicy(true);
    const decisions = new SessionDecisions();
    const first = decisions.decide(policy, 'db', exchange('sql.select'));
    assert.equal(decisions.decide(policy, 'db', exchange('sql.select')), first);
    assert.equal(policy.calls, 1);
    assert.equal(decisions.decide(policy, 'db', exchange('sql.drop')).effect, 'deny');
    assert.equal(policy.calls, 2);
    // A reload: decided again, under the new version.
    policy.version = 'v2';
    assert.equal(decisions.decide(policy, 'db', exchange('sql.select')).policyVersion, 'v2');
    assert.equal(policy.calls, 3);
  });

  test('decides every time when the policy reads more than names, or does not say', () => {
    for (const cacheable of [false, undefined]) {
      const policy = countingPolicy(cacheable);
      const decisions = new SessionDecisions();
      decisions.decide(policy, 'db', exchange('sql.select'));
      decisions.decide(policy, 'db', exchange('sql.select'));
      assert.equal(policy.calls, 2);
    }
  });
});
