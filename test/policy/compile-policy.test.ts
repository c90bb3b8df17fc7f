import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { GatehouseError } from '../../src/errors/index.js';
import type { Decision, Effect, Exchange, Identity } from '../../src/exchange/index.js';
import { combineEffects, compilePolicy, enforceDecision, type AccessRuleSource } from '../../src/policy/index.js';

function identity(subject: string, groups: readonly string[]): Identity {
  return { subject, kind: 'service', groups, method: 'api_key', credentialId: `cred-${subject}` };
}

function exchange(connection: string, who: Identity | undefined): Exchange {
  return {
    id: 'ex_1',
    sessionId: 'ex_1',
    protocol: 'http',
    connection,
    operation: 'chat.completions',
    startedAt: 0,
    client: { address: '127.0.0.1' },
    facts: { stream: false },
    identity: who,
  };
}

const access: readonly AccessRuleSource[] = [
  { connection: 'openai', groups: ['ml-engineers', 'researchers'] },
  { connection: 'internal', groups: ['platform'] },
];
const policy = compilePolicy(access);

const alice = identity('key:alice', ['ml-engineers']);
const bob = identity('key:bob', ['platform']);
const carol = identity('key:carol', ['researchers', 'platform']);
const nobody = identity('key:nobody', []);

describe('compilePolicy: decide', () => {
  type Row = { name: string; connection: string; who: Identity | undefined; expected: Omit<Decision, 'policyVersion'> };
  const rows: readonly Row[] = [
    {
      name: 'allow by group',
      connection: 'openai',
      who: alice,
      expected: { effect: 'allow', rules: ['connection-access:openai'], reason: 'rule-allow' },
    },
    {
      name: 'allow by any one of several groups',
      connection: 'internal',
      who: carol,
      expected: { effect: 'allow', rules: ['connection-access:internal'], reason: 'rule-allow' },
    },
    {
      name: "identity in another connection's group is denied",
      connection: 'openai',
      who: bob,
      expected: { effect: 'deny', rules: ['default-deny'], reason: 'no-rule-allows', message: 'Access denied: no rule allows key:bob on connection "openai".' },
    },
    {
      name: 'identity without groups is denied',
      connection: 'internal',
      who: nobody,
      expected: { effect: 'deny', rules: ['default-deny'], reason: 'no-rule-allows', message: 'Access denied: no rule allows key:nobody on connection "internal".' },
    },
    {
      name: 'no identity is denied',
      connection: 'openai',
      who: undefined,
      expected: { effect: 'deny', rules: ['default-deny'], reason: 'no-rule-allows', message: 'Access denied: no rule allows anonymous caller on connection "openai".' },
    },
    {
      name: 'default deny on a connection no rule mentions',
      connection: 'unlisted',
      who: alice,
      expected: { effect: 'deny', rules: ['default-deny'], reason: 'no-rule-allows', message: 'Access denied: no rule allows key:alice on connection "unlisted".' },
    },
    {
      name: 'group names match exactly (case-sensitive, no prefix match)',
      connection: 'openai',
      who: identity('key:eve', ['ML-Engineers', 'ml-engineers-x', 'ml']),
      expected: { effect: 'deny', rules: ['default-deny'], reason: 'no-rule-allows', message: 'Access denied: no rule allows key:eve on connection "openai".' },
    },
  ];

  for (const row of rows) {
    test(row.name, () => {
      const decision = policy.decide(exchange(row.connection, row.who));
      assert.deepEqual(decision, { ...row.expected, policyVersion: policy.version });
    });
  }

  test('an empty policy denies everything', () => {
    const empty = compilePolicy([]);
    const decision = empty.decide(exchange('openai', alice));
    assert.equal(decision.effect, 'deny');
    assert.deepEqual(decision.rules, ['default-deny']);
    assert.equal(decision.policyVersion, empty.version);
  });
});

describe('compilePolicy: version', () => {
  test('is a 16-hex-digit hash', () => {
    assert.match(policy.version, /^[0-9a-f]{16}$/);
  });

  test('is stable for the same input', () => {
    assert.equal(compilePolicy(structuredClone(access) as AccessRuleSource[]).version, policy.version);
    assert.equal(compilePolicy([]).version, compilePolicy([]).version);
  });

  test('differs for different input', () => {
    const variants: readonly (readonly AccessRuleSource[])[] = [
      [],
      [{ connection: 'openai', groups: ['ml-engineers', 'researchers'] }],
      [{ connection: 'openai', groups: ['ml-engineers'] }, { connection: 'internal', groups: ['platform'] }],
      [{ connection: 'openai', groups: ['ml-engineers', 'researchers'] }, { connection: 'internal', groups: ['platform', 'sre'] }],
      [{ connection: 'openai2', groups: ['ml-engineers', 'researchers'] }, { connection: 'internal', groups: ['platform'] }],
    ];
    const versions = new Set([policy.version, ...variants.map((v) => compilePolicy(v).version)]);
    assert.equal(versions.size, variants.length + 1);
  });
});

describe('combineEffects', () => {
  const rows: ReadonlyArray<readonly [readonly Effect[], Effect]> = [
    [['allow'], 'allow'],
    [['allow', 'allow'], 'allow'],
    [['require_approval'], 'require_approval'],
    [['allow', 'require_approval'], 'require_approval'],
    [['require_approval', 'allow'], 'require_approval'],
    [['deny'], 'deny'],
    [['allow', 'deny'], 'deny'],
    [['deny', 'allow'], 'deny'],
    [['require_approval', 'deny'], 'deny'],
    [['deny', 'require_approval', 'allow'], 'deny'],
    [['allow', 'require_approval', 'deny', 'allow'], 'deny'],
  ];
  for (const [effects, expected] of rows) {
    test(`[${effects.join(', ')}] → ${expected}`, () => {
      assert.equal(combineEffects(effects), expected);
    });
  }

  test('no effects at all does not allow', () => {
    assert.notEqual(combineEffects([]), 'allow');
  });
});

describe('enforceDecision', () => {
  test('allow passes', () => {
    assert.doesNotThrow(() => enforceDecision(policy.decide(exchange('openai', alice))));
  });

  test('deny throws access_denied (403) carrying the rule, message and reason', () => {
    const decision = policy.decide(exchange('openai', bob));
    assert.throws(
      () => enforceDecision(decision),
      (error: unknown) => {
        assert.ok(error instanceof GatehouseError);
        assert.equal(error.code, 'access_denied');
        assert.equal(error.status, 403);
        assert.equal(error.type, 'permission_error');
        assert.equal(error.rule, 'default-deny');
        assert.equal(error.message, 'Access denied: no rule allows key:bob on connection "openai".');
        assert.equal(error.detail, 'no-rule-allows');
        return true;
      },
    );
  });

  test('a deny without a message falls back to the registry message', () => {
    assert.throws(
      () => enforceDecision({ effect: 'deny', rules: ['block-embeddings'], reason: 'rule-deny', policyVersion: 'v' }),
      (error: unknown) => error instanceof GatehouseError && error.code === 'access_denied' && error.rule === 'block-embeddings' && error.message === 'Access denied by policy.',
    );
  });

  test('require_approval fails closed as access_denied until approvals exist', () => {
    assert.throws(
      () => enforceDecision({ effect: 'require_approval', rules: ['needs-review', 'other'], reason: 'rule-require-approval', policyVersion: 'v' }),
      (error: unknown) => {
        assert.ok(error instanceof GatehouseError);
        assert.equal(error.code, 'access_denied');
        assert.equal(error.rule, 'needs-review');
        assert.equal(error.message, 'This request requires approval, and approvals are not enabled on this gateway.');
        assert.equal(error.detail, 'rule-require-approval');
        return true;
      },
    );
  });
});
