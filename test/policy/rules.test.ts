// Table-driven tests over the decision function with the full rule model.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Decision, Exchange } from '../../src/exchange/index.js';
import { compilePolicy, PolicyError, type PolicySource } from '../../src/policy/index.js';
import { exchangeOf, rule, who } from './fixtures.js';

const access = [
  { connection: 'openai', groups: ['ml', 'research'] },
  { connection: 'registry', groups: ['ml'] },
  { connection: 'warehouse', groups: ['analysts'] },
];

// names types as the real detectors do (upper-case); rules may spell them in any case
const fakeDetector = (calls: string[]) => (text: string): ReadonlySet<string> => {
  calls.push(text);
  const found = new Set<string>();
  if (/[\w.]+@[\w.]+/.test(text)) found.add('EMAIL');
  if (/\b\d{3}-\d{2}-\d{4}\b/.test(text)) found.add('US_SSN');
  return found;
};

const source: PolicySource = {
  access,
  timezone: 'UTC',
  rules: [
    rule({ name: 'no-drop', effect: 'deny', message: 'Dropping tables is not allowed.', when: [{ keywords: ['drop table'] }] }),
    rule({ name: 'aws-key', effect: 'deny', message: 'No AWS keys in prompts.', when: [{ regex: 'AKIA[0-9A-Z]{16}' }] }),
    rule({ name: 'pii-needs-review', effect: 'require_approval', message: 'Prompts with SSNs need approval.', match: { connections: ['openai'] }, when: [{ entities: ['us_ssn'] }] }),
    rule({ name: 'agents-no-gpt4', effect: 'deny', message: 'Agents may not use gpt-4 models.', match: { kinds: ['agent'], models: ['gpt-4*'] } }),
    rule({ name: 'big-embeddings', effect: 'deny', message: 'At most 100 inputs per embeddings request.', match: { operations: ['embeddings'] }, when: [{ fact: 'inputCount', gt: 100 }] }),
    rule({ name: 'contractors-allowed', effect: 'allow', match: { groups: ['contractor-*'], connections: ['openai'], time: { days: ['mon', 'tue', 'wed', 'thu', 'fri'], hours: '09:00-17:00', timezone: 'Europe/Paris' } } }),
    rule({ name: 'registry-reads', effect: 'allow', match: { connections: ['registry'], groups: ['readers'], methods: ['GET'], paths: ['/models', '/models/*'] } }),
    rule({ name: 'no-weights', effect: 'deny', message: 'No weight downloads.', match: { connections: ['registry'], methods: ['GET'] }, when: [{ fact: 'path', includes: ['*.safetensors', '*.gguf'] }] }),
    rule({ name: 'mask-support', effect: 'allow', match: { subjects: ['key:support-*'], connections: ['openai'] }, obligations: { mask: ['pii'], maxResponseBytes: '64KiB', responseGuards: ['no-keys-out'] } }),
    rule({ name: 'mask-support-strict', effect: 'allow', match: { subjects: ['key:support-bot'] }, obligations: { mask: ['pii', 'secrets'], maxResponseBytes: '16KiB' } }),
    rule({ name: 'no-keys-out', on: 'response', effect: 'deny', message: 'The answer contained a credential.', match: { connections: ['openai'] }, when: [{ regex: 'AKIA[0-9A-Z]{16}' }] }),
    rule({ name: 'sql-drop', effect: 'deny', match: { operations: ['sql.*'] }, when: [{ fact: 'statementClasses', includes: ['drop', 'truncate'] }] }),
    rule({ name: 'pii-tables', effect: 'require_approval', match: { operations: ['sql.select'] }, when: [{ fact: 'tables', includes: ['customers', 'hr.*'] }] }),
  ],
};

const calls: string[] = [];
const policy = compilePolicy(source, { detectEntities: fakeDetector(calls) });

type Expected = Pick<Decision, 'effect' | 'rules'> & Partial<Pick<Decision, 'message' | 'reason' | 'obligations'>>;
const alice = who('key:alice', ['ml']);
const agent = who('key:agent-1', ['ml'], 'agent');
const contractor = who('key:bob', ['contractor-acme']);
const reader = who('key:reader', ['readers']);
const support = who('key:support-bot', ['support']);
const analyst = who('key:ann', ['analysts']);

const rows: ReadonlyArray<{ name: string; exchange: Exchange; expected: Expected }> = [
  { name: 'group access allows', exchange: exchangeOf({ identity: alice, facts: { text: 'hello' } }), expected: { effect: 'allow', rules: ['connection-access:openai'], reason: 'rule-allow' } },
  { name: 'keyword deny beats group allow, with the rule message', exchange: exchangeOf({ identity: alice, facts: { text: 'please DROP TABLE users' } }), expected: { effect: 'deny', rules: ['no-drop'], reason: 'rule-deny', message: 'Dropping tables is not allowed.' } },
  { name: 'keyword evasion with spacing and look-alikes still denies', exchange: exchangeOf({ identity: alice, facts: { text: 'd r o p  t-а-b-l-е users' } }), expected: { effect: 'deny', rules: ['no-drop'], message: 'Dropping tables is not allowed.' } },
  { name: 'regex deny', exchange: exchangeOf({ identity: alice, facts: { text: 'my key is AKIAABCDEFGHIJKLMNOP ok' } }), expected: { effect: 'deny', rules: ['aws-key'], message: 'No AWS keys in prompts.' } },
  { name: 'two deny rules: both named, first message', exchange: exchangeOf({ identity: alice, facts: { text: 'drop table AKIAABCDEFGHIJKLMNOP' } }), expected: { effect: 'deny', rules: ['no-drop', 'aws-key'], message: 'Dropping tables is not allowed.' } },
  { name: 'entity condition requires approval', exchange: exchangeOf({ identity: alice, facts: { text: 'ssn 123-45-6789' } }), expected: { effect: 'require_approval', rules: ['pii-needs-review'], reason: 'rule-require-approval', message: 'Prompts with SSNs need approval.' } },
  { name: 'deny beats approval', exchange: exchangeOf({ identity: alice, facts: { text: 'ssn 123-45-6789 drop table' } }), expected: { effect: 'deny', rules: ['no-drop'] } },
  { name: 'entity of another type does not match', exchange: exchangeOf({ identity: alice, facts: { text: 'mail me at a@b.example' } }), expected: { effect: 'allow', rules: ['connection-access:openai'] } },
  { name: 'kind and model glob deny an agent', exchange: exchangeOf({ identity: agent, facts: { model: 'gpt-4o' } }), expected: { effect: 'deny', rules: ['agents-no-gpt4'] } },
  { name: 'the same model is fine for a service', exchange: exchangeOf({ identity: alice, facts: { model: 'gpt-4o' } }), expected: { effect: 'allow', rules: ['connection-access:openai'] } },
  { name: 'the agent may use another model', exchange: exchangeOf({ identity: agent, facts: { model: 'gpt-3.5-turbo' } }), expected: { effect: 'allow', rules: ['connection-access:openai'] } },
  { name: 'volume: 101 embedding inputs denied', exchange: exchangeOf({ identity: alice, operation: 'embeddings', facts: { inputCount: 101 } }), expected: { effect: 'deny', rules: ['big-embeddings'] } },
  { name: 'volume: 100 embedding inputs allowed (boundary)', exchange: exchangeOf({ identity: alice, operation: 'embeddings', facts: { inputCount: 100 } }), expected: { effect: 'allow', rules: ['connection-access:openai'] } },
  { name: 'time window: contractor at 10:00 Paris on a Wednesday', exchange: exchangeOf({ identity: contractor, startedAt: Date.UTC(2026, 0, 7, 9, 0) }), expected: { effect: 'allow', rules: ['contractors-allowed'] } },
  { name: 'time window: contractor at 17:00 Paris is outside (end exclusive)', exchange: exchangeOf({ identity: contractor, startedAt: Date.UTC(2026, 0, 7, 16, 0) }), expected: { effect: 'deny', rules: ['default-deny'], reason: 'no-rule-allows' } },
  { name: 'time window: contractor on a Saturday', exchange: exchangeOf({ identity: contractor, startedAt: Date.UTC(2026, 0, 10, 10, 0) }), expected: { effect: 'deny', rules: ['default-deny'] } },
  { name: 'time window in summer (DST): 08:30 UTC is 10:30 in Paris', exchange: exchangeOf({ identity: contractor, startedAt: Date.UTC(2026, 6, 8, 8, 30) }), expected: { effect: 'allow', rules: ['contractors-allowed'] } },
  { name: 'method and path glob allow', exchange: exchangeOf({ identity: reader, connection: 'registry', operation: 'http.GET /models/llama', facts: { method: 'GET', path: '/models/llama' } }), expected: { effect: 'allow', rules: ['registry-reads'] } },
  { name: 'method mismatch denies', exchange: exchangeOf({ identity: reader, connection: 'registry', operation: 'http.DELETE /models/llama', facts: { method: 'DELETE', path: '/models/llama' } }), expected: { effect: 'deny', rules: ['default-deny'] } },
  { name: 'weight download denied', exchange: exchangeOf({ identity: reader, connection: 'registry', facts: { method: 'GET', path: '/models/llama/model.safetensors' } }), expected: { effect: 'deny', rules: ['no-weights'], message: 'No weight downloads.' } },
  { name: 'obligations merge: masks united, smallest cap, guards united', exchange: exchangeOf({ identity: support, facts: { text: 'hi' } }), expected: { effect: 'allow', rules: ['mask-support', 'mask-support-strict'], obligations: { mask: ['pii', 'secrets'], maxResponseBytes: 16 * 1024, responseGuards: ['no-keys-out'] } } },
  { name: 'response rule matched by connection adds its guard', exchange: exchangeOf({ identity: alice, facts: { text: 'hi' } }), expected: { effect: 'allow', rules: ['connection-access:openai'] } },
  { name: 'SQL facts: statement class denied', exchange: exchangeOf({ identity: analyst, connection: 'warehouse', operation: 'sql.drop', facts: { sql: { classes: ['drop'], tables: ['t'], text: 'drop table t', risky: [] } } }), expected: { effect: 'deny', rules: ['sql-drop'] } },
  { name: 'SQL facts: table glob needs approval', exchange: exchangeOf({ identity: analyst, connection: 'warehouse', operation: 'sql.select', facts: { sql: { classes: ['select'], tables: ['orders', 'hr.salaries'], text: 'select …', risky: [] } } }), expected: { effect: 'require_approval', rules: ['pii-tables'] } },
  { name: 'SQL facts: other tables allowed', exchange: exchangeOf({ identity: analyst, connection: 'warehouse', operation: 'sql.select', facts: { sql: { classes: ['select'], tables: ['orders'], text: 'select …', risky: [] } } }), expected: { effect: 'allow', rules: ['connection-access:warehouse'] } },
  { name: 'no identity: default deny', exchange: exchangeOf({ identity: undefined }), expected: { effect: 'deny', rules: ['default-deny'], message: 'Access denied: no rule allows anonymous caller on connection "openai".' } },
  { name: 'unknown connection: default deny', exchange: exchangeOf({ identity: alice, connection: 'other' }), expected: { effect: 'deny', rules: ['default-deny'] } },
];

describe('policy rules: decide', () => {
  for (const row of rows) {
    test(row.name, () => {
      const decision = policy.decide(row.exchange);
      assert.equal(decision.effect, row.expected.effect);
      assert.deepEqual(decision.rules, row.expected.rules);
      assert.equal(decision.policyVersion, policy.version);
      if (row.expected.reason) assert.equal(decision.reason, row.expected.reason);
      if ('message' in row.expected) assert.equal(decision.message, row.expected.message);
      if ('obligations' in row.expected) assert.deepEqual(decision.obligations, row.expected.obligations);
    });
  }

  test('a response rule that matches the exchange becomes a response guard on the allow', () => {
    const decision = policy.decide(exchangeOf({ identity: who('key:r', ['research']), facts: { text: 'hello' } }));
    assert.equal(decision.effect, 'allow');
    assert.deepEqual(decision.obligations, { responseGuards: ['no-keys-out'] });
  });

  test('a time window that wraps midnight: the part after midnight belongs to the previous day', () => {
    const night = compilePolicy({ rules: [rule({ name: 'night-shift', effect: 'allow', match: { time: { days: ['fri'], hours: '22:00-06:00' } } })] });
    const at = (d: number, h: number, m = 0) => night.decide(exchangeOf({ startedAt: Date.UTC(2026, 0, d, h, m) })).effect;
    // 2026-01-09 is a Friday.
    assert.equal(at(9, 21, 59), 'deny');
    assert.equal(at(9, 22, 0), 'allow');
    assert.equal(at(10, 5, 59), 'allow', 'Saturday 05:59 is still Friday night');
    assert.equal(at(10, 6, 0), 'deny');
    assert.equal(at(10, 23, 0), 'deny', 'Saturday night is not Friday night');
    assert.equal(at(9, 3, 0), 'deny', 'Friday 03:00 belongs to Thursday night');
  });

  test('a deny carries no obligations', () => {
    const decision = policy.decide(exchangeOf({ identity: support, facts: { text: 'drop table x' } }));
    assert.equal(decision.effect, 'deny');
    assert.equal(decision.obligations, undefined);
  });

  test('the entity detector runs only when a rule with an entity condition is reached, once per exchange', () => {
    calls.length = 0;
    policy.decide(exchangeOf({ identity: alice, facts: { text: 'some text' } }));
    assert.deepEqual(calls, ['some text']);
    calls.length = 0;
    policy.decide(exchangeOf({ identity: reader, connection: 'registry', facts: { method: 'GET', path: '/models', text: 'x' } }));
    assert.deepEqual(calls, [], 'no entity rule applies to the registry connection');
  });
});

describe('policy rules: responseCheck', () => {
  test('names the rule and its message when the answer matches', () => {
    const check = policy.responseCheck(['no-keys-out']);
    assert.deepEqual(check('here: AKIAABCDEFGHIJKLMNOP'), { rule: 'no-keys-out', message: 'The answer contained a credential.' });
    assert.equal(check('nothing to see'), undefined);
  });
  test('no guards: never refuses', () => {
    assert.equal(policy.responseCheck([])('AKIAABCDEFGHIJKLMNOP'), undefined);
  });
});

describe('policy rules: explain', () => {
  test('lists every rule with each criterion and whether it held', () => {
    const { decision, rules } = policy.explain(exchangeOf({ identity: agent, facts: { model: 'gpt-4o', text: 'hi' } }));
    assert.equal(decision.effect, 'deny');
    const agentRule = rules.find((r) => r.rule === 'agents-no-gpt4')!;
    assert.equal(agentRule.matched, true);
    assert.deepEqual(agentRule.checks, [
      { criterion: 'kind in [agent]', ok: true },
      { criterion: 'model in [gpt-4*]', ok: true },
    ]);
    const drop = rules.find((r) => r.rule === 'no-drop')!;
    assert.equal(drop.matched, false);
    assert.deepEqual(drop.checks, [{ criterion: 'when[0] keywords [drop table] in text', ok: false }]);
    assert.equal(rules.length, policy.ruleCount);
  });
});

describe('policy rules: compile errors name the rule and field', () => {
  test('duplicate rule names', () => {
    assert.throws(() => compilePolicy({ rules: [rule({ name: 'a', effect: 'allow' }), rule({ name: 'a', effect: 'deny' })] }), new PolicyError('rule "a": name: the name is used by another rule (rule names must be unique across config, files and packs)'));
  });
  test('entity condition without a detector fails closed', () => {
    assert.throws(() => compilePolicy({ rules: [rule({ name: 'pii', effect: 'deny', when: [{ entities: ['email'] }] })] }), new PolicyError('rule "pii": when[0].entities: entity detection is not available in this gateway'));
  });
  test('a response guard naming no response rule', () => {
    assert.throws(() => compilePolicy({ rules: [rule({ name: 'x', effect: 'allow', obligations: { responseGuards: ['nope'] } })] }), new PolicyError('rule "x": obligations.responseGuards: no response rule (on: response) is named "nope"'));
  });
  test('the name default-deny is reserved', () => {
    assert.throws(() => compilePolicy({ rules: [rule({ name: 'default-deny', effect: 'allow' })] }), /reserved/);
  });
});

describe('policy version', () => {
  test('changes with any rule and is stable otherwise', () => {
    const a = compilePolicy({ access, rules: [rule({ name: 'r', effect: 'deny', when: [{ keywords: ['x'] }] })] });
    const b = compilePolicy({ access, rules: [rule({ name: 'r', effect: 'deny', when: [{ keywords: ['y'] }] })] });
    const a2 = compilePolicy({ access, rules: [rule({ name: 'r', effect: 'deny', when: [{ keywords: ['x'] }] })] });
    assert.match(a.version, /^[0-9a-f]{16}$/);
    assert.notEqual(a.version, b.version);
    assert.equal(a.version, a2.version);
  });
});

describe('security: table conditions on a statement whose tables are unknown fail closed', () => {
  const p = compilePolicy({
    access: [],
    timezone: 'UTC',
    rules: [
      rule({ name: 'orders-only', effect: 'allow', when: [{ fact: 'tables', includes: ['orders'] }] }),
      rule({ name: 'all-but-hr', effect: 'allow', match: { subjects: ['key:bob'] }, when: [{ fact: 'tables', includes: ['hr.*'], not: true }] }),
      rule({ name: 'deny-payroll', effect: 'deny', when: [{ fact: 'tables', includes: ['payroll'] }] }),
      rule({ name: 'review-non-orders', effect: 'require_approval', match: { subjects: ['key:carol'] }, when: [{ regex: '^orders$', field: 'tables', not: true }] }),
    ],
  });
  const sql = (tables: string[], risky: string[], subject = 'key:ann') =>
    exchangeOf({ connection: 'warehouse', operation: 'sql.select', identity: who(subject, ['analysts']), facts: { text: 'x', sql: { classes: ['select'], tables, risky, text: 'x' } } });
  test('known tables decide as before', () => {
    assert.equal(p.decide(sql(['orders'], [])).effect, 'allow');
    assert.deepEqual(p.decide(sql(['orders', 'payroll'], [])).rules, ['deny-payroll']);
  });
  test('unknown tables: a deny rule on a table holds, allow rules on tables do not, with or without not', () => {
    const d = p.decide(sql(['orders'], ['user-function', 'unknown-tables']));
    assert.equal(d.effect, 'deny');
    assert.deepEqual(d.rules, ['deny-payroll']);
    const noDeny = compilePolicy({ access: [], timezone: 'UTC', rules: [rule({ name: 'orders-only', effect: 'allow', when: [{ fact: 'tables', includes: ['orders'] }] }), rule({ name: 'all-but-hr', effect: 'allow', when: [{ fact: 'tables', includes: ['hr.*'], not: true }] })] });
    assert.deepEqual(noDeny.decide(sql(['orders'], ['unknown-tables'])).rules, ['default-deny']);
    assert.deepEqual(noDeny.decide(sql([], ['unknown-tables'])).rules, ['default-deny']);
    assert.deepEqual(noDeny.decide(sql(['orders'], [])).rules, ['orders-only', 'all-but-hr']);
  });
  test('unknown tables: a require_approval rule reading tables (regex field, not) holds', () => {
    const noDeny = compilePolicy({ access: [{ connection: 'warehouse', groups: ['analysts'] }], timezone: 'UTC', rules: [rule({ name: 'review-non-orders', effect: 'require_approval', when: [{ regex: '^orders$', field: 'tables', not: true }] })] });
    assert.equal(noDeny.decide(sql(['orders'], [])).effect, 'allow');
    assert.deepEqual(noDeny.decide(sql(['orders'], ['unknown-tables'])).rules, ['review-non-orders']);
  });
});

describe('security: table conditions read the names a table may stand for only where that is stricter', () => {
  // tablesMayBe: `orders_eu` is a partition of public.orders; a bare `salaries` may be hr.salaries.
  const sql = (tables: string[], tablesMayBe: string[] | undefined, subject = 'key:ann') =>
    exchangeOf({ connection: 'warehouse', operation: 'sql.select', identity: who(subject, ['analysts']), facts: { text: 'x', sql: { classes: ['select'], tables, tablesMayBe, risky: [], text: 'x' } } });
  test('deny and require_approval rules hold on them (also through a regex on the tables field)', () => {
    const p = compilePolicy({ access: [{ connection: 'warehouse', groups: ['analysts'] }], timezone: 'UTC', rules: [
      rule({ name: 'deny-orders', effect: 'deny', when: [{ fact: 'tables', includes: ['orders'] }] }),
      rule({ name: 'review-hr', effect: 'require_approval', when: [{ regex: '^hr\\.', field: 'tables' }] }),
    ] });
    assert.deepEqual(p.decide(sql(['orders_eu'], ['public.orders', 'orders', 'public.orders_eu'])).rules, ['deny-orders']);
    assert.deepEqual(p.decide(sql(['salaries'], ['hr.salaries'])).rules, ['review-hr']);
    assert.equal(p.decide(sql(['accounts'], ['public.accounts'])).effect, 'allow');
  });
  test('an allow rule is not widened by them; with `not` it fails on them', () => {
    const p = compilePolicy({ access: [], timezone: 'UTC', rules: [
      rule({ name: 'public-orders', effect: 'allow', when: [{ fact: 'tables', includes: ['public.orders'] }] }),
      rule({ name: 'all-but-hr', effect: 'allow', match: { subjects: ['key:bob'] }, when: [{ fact: 'tables', includes: ['hr.*'], not: true }] }),
    ] });
    // `orders` under search_path = hr is hr.orders: the rule on public.orders does not allow it.
    assert.deepEqual(p.decide(sql(['orders'], ['public.orders', 'hr.orders'])).rules, ['default-deny']);
    assert.deepEqual(p.decide(sql(['public.orders'], ['orders'])).rules, ['public-orders']);
    assert.deepEqual(p.decide(sql(['salaries'], ['hr.salaries'], 'key:bob')).rules, ['default-deny']);
    assert.deepEqual(p.decide(sql(['accounts'], ['public.accounts'], 'key:bob')).rules, ['all-but-hr']);
  });
  test("an allow rule's obligations apply on them, without its allow", () => {
    const mask = rule({ name: 'mask-notes', effect: 'allow', when: [{ fact: 'tables', includes: ['notes'] }], obligations: { mask: ['pii'] } });
    const p = compilePolicy({ access: [{ connection: 'warehouse', groups: ['analysts'] }], timezone: 'UTC', rules: [mask] });
    assert.deepEqual(p.decide(sql(['notes_archive'], ['public.notes', 'notes'])).obligations?.mask, ['pii']);
    assert.equal(p.decide(sql(['accounts'], undefined)).obligations, undefined);
    const alone = compilePolicy({ access: [], timezone: 'UTC', rules: [mask] });
    assert.deepEqual(alone.decide(sql(['notes_archive'], ['public.notes', 'notes'])).rules, ['default-deny']);
    assert.deepEqual(alone.decide(sql(['notes'], undefined)).rules, ['mask-notes']);
  });
});
