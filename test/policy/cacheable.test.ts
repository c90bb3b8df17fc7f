// Policy.cacheableOn: whether a decision on a connection may be reused for exchanges alike
// in connection, identity, operation, model, method and path.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicy } from '../../src/policy/index.js';
import { exchangeOf, rule, who } from './fixtures.js';

const access = [
  { connection: 'db', groups: ['analysts'] },
  { connection: 'other', groups: ['analysts'] },
];

describe('Policy.cacheableOn', () => {
  test('connection access and rules matching on names only: cacheable', () => {
    const policy = compilePolicy({
      access,
      rules: [
        rule({ name: 'no-drop', effect: 'deny', match: { connections: ['db'], operations: ['sql.drop'], groups: ['analysts'], kinds: ['service'], subjects: ['key:*'] } }),
        rule({ name: 'guard', on: 'response', effect: 'deny', match: { connections: ['db'] }, when: [{ regex: 'AKIA' }] }),
      ],
    });
    assert.equal(policy.cacheableOn('db'), true);
    assert.equal(policy.cacheableOn('nowhere'), true);
  });

  test('a condition on facts (the SQL text, tables …) on the connection: not cacheable', () => {
    const policy = compilePolicy({ access, rules: [rule({ name: 'no-sleep', effect: 'deny', match: { connections: ['db'] }, when: [{ keywords: ['pg_sleep'] }] })] });
    assert.equal(policy.cacheableOn('db'), false);
    // The rule names another connection only: `other` is unaffected.
    assert.equal(policy.cacheableOn('other'), true);
  });

  test('a rule for every connection with a condition: not cacheable anywhere', () => {
    const policy = compilePolicy({ access, rules: [rule({ name: 'no-drop', effect: 'deny', when: [{ fact: 'tables', includes: ['hr.*'] }] })] });
    assert.equal(policy.cacheableOn('db'), false);
    assert.equal(policy.cacheableOn('other'), false);
  });

  test('a time window: not cacheable', () => {
    const policy = compilePolicy({ access, rules: [rule({ name: 'office-hours', effect: 'allow', match: { connections: ['db'], time: { hours: '08:00-18:00' } } })] });
    assert.equal(policy.cacheableOn('db'), false);
  });

  test('cacheable decisions are the same for exchanges alike in the names', () => {
    const policy = compilePolicy({ access, rules: [rule({ name: 'no-drop', effect: 'deny', message: 'No.', match: { operations: ['sql.drop'] } })] });
    const alice = who('key:alice', ['analysts']);
    const a = policy.decide(exchangeOf({ connection: 'db', operation: 'sql.select', identity: alice, facts: { text: 'select 1' } }));
    const b = policy.decide(exchangeOf({ connection: 'db', operation: 'sql.select', identity: alice, facts: { text: 'select 2' }, startedAt: 0 }));
    assert.deepEqual(a, b);
    assert.equal(policy.decide(exchangeOf({ connection: 'db', operation: 'sql.drop', identity: alice })).effect, 'deny');
  });
});
