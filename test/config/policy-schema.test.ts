// The `policy:` section of the config: defaults, and errors that name the path.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, parseConfig } from '../../src/config/index.js';

function issues(yaml: string): readonly string[] {
  try {
    parseConfig(yaml, 'gatehouse.yaml', { REDIS_URL: 'redis://127.0.0.1:6379' });
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.issues;
  }
  assert.fail('the config was accepted');
}

describe('policy config section', () => {
  test('defaults: no rules, no files, no packs, UTC, memory limits', () => {
    const config = parseConfig('', 'gatehouse.yaml');
    assert.deepEqual(config.policy, { rules: [], files: [], packs: [], timezone: 'UTC', limits: { store: 'memory', rules: [] } });
  });

  const rows: ReadonlyArray<readonly [string, string, string]> = [
    ['unknown key in a rule', 'policy:\n  rules:\n    - { name: r, effect: deny, efect: allow }\n', 'policy.rules[0]: unknown key "efect"'],
    ['unknown effect', 'policy:\n  rules:\n    - { name: r, effect: block }\n', 'policy.rules[0].effect: Invalid option: expected one of "allow"|"deny"|"require_approval"'],
    ['bad rule name', 'policy:\n  rules:\n    - { name: Bad Name, effect: deny }\n', 'policy.rules[0].name: must be lower-case letters, digits, "-", "_", ".", ":" (at most 100)'],
    ['two kinds in one condition', 'policy:\n  rules:\n    - { name: r, effect: deny, when: [{ regex: a, keywords: [b] }] }\n', 'policy.rules[0].when[0]: a condition needs exactly one of regex, keywords, entities or fact'],
    ['an unknown fact (it would never hold)', 'policy:\n  rules:\n    - { name: r, effect: deny, when: [{ fact: riskyShapes, includes: [delete-without-where] }] }\n', 'policy.rules[0].when[0].fact: must be one of the facts text, model, inputCount, bytes, method, path, tables, statementClasses, risky'],
    ['fact without comparison', 'policy:\n  rules:\n    - { name: r, effect: deny, when: [{ fact: inputCount }] }\n', 'policy.rules[0].when[0]: a fact condition needs gt, gte, lt, lte or includes'],
    ['a response rule that allows', 'policy:\n  rules:\n    - { name: r, on: response, effect: allow }\n', 'policy.rules[0].effect: rule "r": a response rule can only deny'],
    ['unknown entity type', 'policy:\n  rules:\n    - { name: r, effect: deny, when: [{ entities: [email, credit-card] }] }\n', 'policy.rules[0].when[0].entities[1]: unknown entity type "CREDIT-CARD" (built-in: EMAIL, PHONE, US_SSN, CREDIT_CARD, IBAN, IP_ADDRESS, AWS_ACCESS_KEY, AWS_SECRET_KEY, GITHUB_TOKEN, SLACK_TOKEN, OPENAI_KEY, ANTHROPIC_KEY, GATEHOUSE_KEY, JWT, PRIVATE_KEY, SECRET)'],
    ['bad hours', 'policy:\n  rules:\n    - { name: r, effect: allow, match: { time: { hours: "9-17" } } }\n', 'policy.rules[0].match.time.hours: must be "HH:MM-HH:MM", e.g. "09:00-17:30"'],
    ['bad time zone', 'policy:\n  timezone: Mars/Olympus\n', 'policy.timezone: is not an IANA time zone (e.g. UTC, Europe/Paris)'],
    ['unknown pack', 'policy:\n  packs: [everything]\n', 'policy.packs[0]: Invalid option: expected one of "secrets-in-prompts"|"prompt-injection"|"bulk-export"|"model-weights"'],
    ['redis store without redis', 'policy:\n  limits: { store: redis }\n', 'policy.limits.redis: store "redis" needs redis.url'],
    ['redis url must be a secret ref', 'policy:\n  limits: { store: redis, redis: { url: "redis://x" } }\n', 'policy.limits.redis.url: a secret must be a reference (${ENV_VAR} or file:/path), not a literal value'],
    ['a limit with nothing to limit', 'policy:\n  limits:\n    rules: [{ name: l }]\n', 'policy.limits.rules[0]: a limit needs at least one of requests, tokens, embeddingInputs, bytes, concurrent, maxRequestBytes, maxResponseBytes'],
    ['a keyword with no letter or digit (it would match every text)', 'policy:\n  rules:\n    - { name: r, effect: allow, when: [{ keywords: [drop table, "---"] }] }\n', 'policy.rules[0].when[0].keywords[1]: keyword "---" has no letter or digit (keywords match on letters and digits only; use regex for punctuation)'],
    ['an empty time window (it would never hold)', 'policy:\n  rules:\n    - { name: r, effect: deny, match: { time: { hours: "09:00-09:00" } } }\n', 'policy.rules[0].match.time.hours: is an empty window (it starts where it ends); for all day use "00:00-24:00"'],
    ['a misspelt operation (the rule would never match, so a deny would not deny)', 'policy:\n  rules:\n    - { name: r, effect: deny, match: { operations: [embedding] } }\n', 'policy.rules[0].match.operations[0]: no operation is named "embedding": operations are chat.completions, completions, embeddings, responses, http.<METHOD> <path> (e.g. "http.GET /models") and sql.<class> (e.g. "sql.delete"); use * for a pattern'],
    ['an http operation with a lower-case method', 'policy:\n  rules:\n    - { name: r, effect: deny, match: { operations: [chat.completions, "http.get /models"] } }\n', 'policy.rules[0].match.operations[1]: no operation is named "http.get /models": operations are chat.completions, completions, embeddings, responses, http.<METHOD> <path> (e.g. "http.GET /models") and sql.<class> (e.g. "sql.delete"); use * for a pattern'],
    ['a misspelt operation in a limit', 'policy:\n  limits:\n    rules: [{ name: l, requests: 5, match: { operations: [chat.completion] } }]\n', 'policy.limits.rules[0].match.operations[0]: no operation is named "chat.completion": operations are chat.completions, completions, embeddings, responses, http.<METHOD> <path> (e.g. "http.GET /models") and sql.<class> (e.g. "sql.delete"); use * for a pattern'],
    ['a path without its leading / (paths are matched from /)', 'policy:\n  rules:\n    - { name: r, effect: deny, match: { paths: ["/models/*", "models/*"] } }\n', 'policy.rules[0].match.paths[1]: path "models/*" can never match: policy paths start with "/" (the path after /c/<connection>)'],
    ['a path with a trailing /', 'policy:\n  rules:\n    - { name: r, effect: deny, match: { paths: ["/admin/"] } }\n', 'policy.rules[0].match.paths[0]: path "/admin/" can never match: policy paths have no trailing "/" (write "/admin", or "/admin/*" for what is under it)'],
    ['an http operation whose path has a trailing /', 'policy:\n  rules:\n    - { name: r, effect: deny, match: { operations: ["http.DELETE /admin/"] } }\n', 'policy.rules[0].match.operations[0]: "http.DELETE /admin/" can never match: policy paths have no trailing "/" (write "/admin", or "/admin/*" for what is under it)'],
    ['a window ending after 24:00', 'policy:\n  rules:\n    - { name: r, effect: deny, match: { time: { hours: "22:00-24:30" } } }\n', 'policy.rules[0].match.time.hours: must end at 24:00 at the latest'],
    ['two limits of one name (they would share counters)', 'policy:\n  limits:\n    rules: [{ name: l, requests: 5 }, { name: l, requests: 10, per: group }]\n', 'policy.limits.rules[1].name: duplicate limit name "l" (also limits.rules[0]; limits count by name, so they would share counters)'],
    ['a window under a second', 'policy:\n  limits:\n    rules: [{ name: l, requests: 1, window: 10ms }]\n', 'policy.limits.rules[0].window: "10ms" is not a duration of at least 1s (use e.g. 30s, 1m, 1h)'],
  ];
  for (const [name, yaml, expected] of rows) {
    test(name, () => assert.ok(issues(yaml).includes(expected), `got: ${issues(yaml).join(' | ')}`));
  }

  test('entity types in conditions are taken in any case, as the detectors name them (upper-case)', () => {
    const config = parseConfig('policy:\n  rules:\n    - { name: r, effect: deny, when: [{ entities: [email, Us_Ssn, CREDIT_CARD] }] }\n', 'gatehouse.yaml');
    assert.deepEqual(config.policy.rules[0]!.when[0]!.entities, ['EMAIL', 'US_SSN', 'CREDIT_CARD']);
  });

  test('operations: the named ones, http.<METHOD> <path>, sql.<class> and any pattern with * are taken', () => {
    const operations = ['chat.completions', 'completions', 'embeddings', 'responses', 'http.GET /models', 'http.POST /', 'sql.delete', 'sql.*', 'chat.*', 'http.GET *', '*'];
    const config = parseConfig(`policy:\n  rules:\n    - { name: r, effect: deny, match: { operations: ${JSON.stringify(operations)} } }\n`, 'gatehouse.yaml');
    assert.deepEqual(config.policy.rules[0]?.match?.operations, operations);
  });

  test('redis limits with a secret ref', () => {
    const config = parseConfig('policy:\n  limits:\n    store: redis\n    redis: { url: "${REDIS_URL}" }\n    rules: [{ name: l, requests: 5, window: 1h }]\n', 'gatehouse.yaml', { REDIS_URL: 'redis://127.0.0.1:6379' });
    assert.deepEqual(config.policy.limits, { store: 'redis', redis: { url: 'redis://127.0.0.1:6379', keyPrefix: 'gatehouse:' }, rules: [{ name: 'l', per: 'identity', window: 3_600_000, requests: 5 }] });
  });
});
