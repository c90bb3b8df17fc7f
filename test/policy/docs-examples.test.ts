// The YAML examples of docs/policy.md load as written and do what the text around them
// says: a reader copies them first.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../../src/config/index.js';
import { ruleFileSchema } from '../../src/config/policy-schema.js';
import { entityTypes } from '../../src/detect/index.js';
import { buildPolicy, compilePolicy } from '../../src/policy/index.js';
import { exchangeOf, who } from './fixtures.js';

const doc = readFileSync(new URL('../../docs/policy.md', import.meta.url), 'utf8');
const yamlBlocks = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);

describe('docs/policy.md examples', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-policy-docs-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  function load(yaml: string) {
    const file = join(dir, 'gatehouse.yaml');
    // The connections the examples name (a name no connection has is a config error).
    writeFileSync(file, `connections:\n  - { name: openai, type: openai, target: "http://127.0.0.1:9/v1", access: { groups: [ml] } }\n  - { name: vllm, type: openai, target: "http://127.0.0.1:9/v1", access: { groups: [ml] } }\n${yaml}`);
    return loadConfig(file, { REDIS_URL: 'redis://127.0.0.1:6379' });
  }

  test('the first example loads, and its agents rule denies gpt-4 models but not the gpt-4o-mini its message recommends', () => {
    const example = yamlBlocks.find((b) => b.includes('agents-no-gpt4'));
    assert.ok(example);
    mkdirSync(join(dir, 'policies'), { recursive: true });
    writeFileSync(join(dir, 'policies', 'data-team.yaml'), 'rules: []\n');
    const policy = buildPolicy(load(example), { detectEntities: entityTypes });
    const agent = who('key:bot', ['ml'], 'agent');
    for (const model of ['gpt-4', 'gpt-4-turbo', 'gpt-4o']) {
      assert.deepEqual(policy.decide(exchangeOf({ identity: agent, facts: { model, text: 'hi' } })).rules, ['agents-no-gpt4'], model);
    }
    const mini = policy.decide(exchangeOf({ identity: agent, facts: { model: 'gpt-4o-mini', text: 'hi' } }));
    assert.equal(mini.effect, 'allow');
  });

  test('the rule snippets load as rules', () => {
    const snippets = yamlBlocks.filter((b) => b.startsWith('    - name:'));
    assert.ok(snippets.length > 0);
    for (const snippet of snippets) {
      const rules = ruleFileSchema.parse(parseYaml(`rules:\n${snippet}`)).rules;
      compilePolicy({ rules });
    }
  });

  test('the limits example loads', () => {
    const example = yamlBlocks.find((b) => b.includes('limits:') && b.startsWith('policy:'));
    assert.ok(example);
    assert.equal(load(example).policy.limits.rules.length, 3);
  });
});
