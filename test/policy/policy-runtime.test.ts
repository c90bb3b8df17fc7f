// The live policy: reloads swap the whole policy, an invalid policy never replaces a
// valid one, and every change is reported with who made it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/observability/index.js';
import { createMemoryLimitStore, createPolicyRuntime, PolicyReloadError, type PolicyChangeEvent } from '../../src/policy/index.js';
import { exchangeOf } from './fixtures.js';

describe('policy runtime', () => {
  test('reload: changes apply, invalid files are refused, the running policy stays', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-policy-runtime-'));
    try {
      const rules = join(dir, 'rules.yaml');
      writeFileSync(rules, 'rules: []\n');
      const config = parseConfig(`connections:\n  - { name: openai, type: openai, target: "http://127.0.0.1:9", access: { groups: [ml] } }\npolicy:\n  files: [rules.yaml]\n`, join(dir, 'gatehouse.yaml'));
      const events: PolicyChangeEvent[] = [];
      const runtime = createPolicyRuntime({ config, store: createMemoryLimitStore(), logger: createLogger('silent'), onPolicyChange: (e) => events.push(e), watch: false });
      const ask = () => runtime.policy.decide(exchangeOf({ facts: { text: 'tell me about sailing' } }));
      assert.equal(ask().effect, 'allow');
      const v1 = runtime.policy.version;

      assert.deepEqual(runtime.reload('admin:key:root'), { version: v1, previousVersion: v1, changed: false, restartNeeded: [] });
      assert.equal(events.length, 0, 'no change, no event');

      writeFileSync(rules, 'rules:\n  - { name: no-sailing, effect: deny, message: No sailing., when: [{ keywords: [sailing] }] }\n');
      const result = runtime.reload('signal:SIGHUP');
      assert.equal(result.changed, true);
      assert.deepEqual([ask().effect, ask().rules, ask().message], ['deny', ['no-sailing'], 'No sailing.']);
      assert.equal(events.length, 1);
      assert.deepEqual({ ...events[0]!, at: 0 }, { at: 0, by: 'signal:SIGHUP', previousVersion: v1, version: result.version, ruleCount: 2 });

      writeFileSync(rules, "rules:\n  - { name: bad, effect: deny, when: [{ regex: 'x(?=y)' }] }\n");
      assert.throws(() => runtime.reload('admin:key:root'), (error: unknown) => {
        assert.ok(error instanceof PolicyReloadError);
        assert.match(error.message, new RegExp(`^policy file ${rules.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:\\n  rules\\[0\\]\\.when\\[0\\]\\.regex: rule "bad": re2 refuses the pattern`));
        return true;
      });
      assert.equal(runtime.policy.version, result.version, 'the running policy stays');
      assert.equal(ask().effect, 'deny');

      writeFileSync(rules, 'rules:\n  - { name: dup, effect: deny }\n  - { name: dup, effect: allow }\n');
      assert.throws(() => runtime.reload('admin:key:root'), /rule "dup": name: the name is used by another rule/);
      assert.equal(runtime.policy.version, result.version);

      // A typo in a connection name would make a deny rule never match: refused on reload.
      writeFileSync(rules, 'rules:\n  - { name: no-openai, effect: deny, match: { connections: [opnai] } }\n');
      assert.throws(() => runtime.reload('admin:key:root'), (error: unknown) => {
        assert.ok(error instanceof PolicyReloadError);
        assert.equal(error.message, `policy file ${rules}: rules[0].match.connections[0]: no connection named "opnai"`);
        return true;
      });
      assert.equal(runtime.policy.version, result.version);
      assert.equal(events.length, 1);
      runtime.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
