// Security regression: a regex in config must never stall the gateway. re2 refuses
// what it cannot run in linear time (backreferences, lookarounds) with an error naming
// the rule and field, and runs the classic catastrophic patterns linearly.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/index.js';
import { compilePolicy } from '../../src/policy/index.js';
import { exchangeOf, rule } from './fixtures.js';

function configWithRegex(regex: string): string {
  return `policy:\n  rules:\n    - name: bad-pattern\n      effect: deny\n      when:\n        - regex: '${regex}'\n`;
}

describe('pathological regexes in config', () => {
  test('a backreference is refused, naming the rule and field', () => {
    assert.throws(() => parseConfig(configWithRegex('(a+)\\1'), 'gatehouse.yaml'), (error: Error) => {
      assert.match(error.message, /policy\.rules\[0\]\.when\[0\]\.regex: rule "bad-pattern": re2 refuses the pattern "\(a\+\)\\\\1": invalid escape sequence: \\1/);
      return true;
    });
  });

  test('a lookahead is refused, naming the rule and field', () => {
    assert.throws(() => parseConfig(configWithRegex('secret(?=key)'), 'gatehouse.yaml'), /policy\.rules\[0\]\.when\[0\]\.regex: rule "bad-pattern": re2 refuses the pattern "secret\(\?=key\)": invalid perl operator: \(\?=/);
  });

  test('(a+)+$ is accepted and a 100 KB adversarial input evaluates in well under a second', () => {
    const config = parseConfig(configWithRegex('(a+)+$'), 'gatehouse.yaml');
    assert.equal(config.policy.rules[0]!.when[0]!.regex, '(a+)+$');
    const policy = compilePolicy({ rules: [...config.policy.rules, rule({ name: 'nested', effect: 'deny', when: [{ regex: '^(a|aa)*(b|c)*$' }, { regex: '(x+x+)+y' }] })] });
    const adversarial = `${'a'.repeat(100_000)}!`;
    const started = performance.now();
    const decision = policy.decide(exchangeOf({ facts: { text: adversarial } }));
    const elapsed = performance.now() - started;
    assert.equal(decision.effect, 'deny');
    assert.deepEqual(decision.rules, ['default-deny'], 'the pattern does not match the trailing "!"');
    assert.ok(elapsed < 500, `took ${elapsed.toFixed(1)} ms`);
    const x = 'x'.repeat(100_000);
    const t2 = performance.now();
    policy.decide(exchangeOf({ facts: { text: x } }));
    assert.ok(performance.now() - t2 < 500);
  });
});
