// `gatehouse config check` and `gatehouse start` list every independent problem of a
// config in one run: a schema error used to hide a bad certificate, every policy file,
// a connection typo beside a bad regex, duplicate rule names; a broken policy file hid
// the typo in the rule beside the broken one. No secret's value is printed.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli } from '../helpers/gateway-process.js';

describe('config check: every problem in one run', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-all-problems-'));
    writeFileSync(join(dir, 'not-a-cert.pem'), 'SECRET-LOOKING-VALUE-0123456789\n');
    writeFileSync(join(dir, 'rules.yaml'), 'rules:\n  - { name: file-typo, effect: deny, match: { connections: [nope-conn] } }\n  - name: file-bad-regex\n    effect: deny\n    when: [{ regex: "(a)\\\\1" }]\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const broken = `gateway:
  listen: { port: 0 }
  bogus: 1
  tls: { cert: file:not-a-cert.pem, key: file:not-a-cert.pem }
admin: { listen: { port: 0 } }
store: { sqlite: { path: all.db } }
connections:
  - name: llm
    type: openai
    target: https://api.openai.com/v1
    credential: { secret: "\${ALL_PROBLEMS_UNSET_KEY}" }
    access: { groups: [eng] }
  - name: other
    type: http
    target: not-a-url
    access: { groups: [eng] }
masking:
  profiles:
    p:
      customEntities: [{ name: X, pattern: "(?<=a)b" }]
policy:
  files: [rules.yaml]
  rules:
    - name: r1
      effect: deny
      match: { connections: [typo-conn] }
      when: [{ regex: "(a)\\\\1" }]
`;

  test('a schema error no longer hides a bad certificate, a policy file, or a connection typo beside a bad regex', async () => {
    const file = join(dir, 'broken.yaml');
    writeFileSync(file, broken);
    const rules = join(dir, 'rules.yaml');
    const expected = [
      `gatehouse: invalid config ${file}:`,
      '  gateway: unknown key "bogus"',
      '  connections[0].credential.secret: environment variable ALL_PROBLEMS_UNSET_KEY is not set',
      '  connections[1].target: must be an http:// or https:// URL',
      '  masking.profiles.p.customEntities[0].pattern: is not a valid re2 pattern (invalid perl operator: (?<=; re2 has no backreferences or lookaround)',
      '  policy.rules[0].when[0].regex: rule "r1": re2 refuses the pattern "(a)\\\\1": invalid escape sequence: \\1 (re2 runs in linear time and has no backreferences or lookarounds)',
      '  policy.rules[0].match.connections[0]: no connection named "typo-conn"',
      '  gateway.tls: cert and key are not a usable PEM certificate chain and its private key: (OpenSSL\'s reason)',
      `  policy file ${rules}: rules[1].when[0].regex: rule "file-bad-regex": re2 refuses the pattern "(a)\\\\1": invalid escape sequence: \\1 (re2 runs in linear time and has no backreferences or lookarounds)`,
      `  policy file ${rules}: rules[0].match.connections[0]: no connection named "nope-conn"`,
      '',
    ].join('\n');
    // OpenSSL's own reason (its wording varies between versions) stands in for itself.
    const opensslReason = (stderr: string) => stderr.replace(/(gateway\.tls: cert and key are not a usable PEM certificate chain and its private key: ).*/, "$1(OpenSSL's reason)");
    const checked = await runCli(['config', 'check', file]);
    assert.deepEqual([checked.code, checked.stdout, opensslReason(checked.stderr)], [1, '', expected]);
    assert.doesNotMatch(checked.stderr, /SECRET-LOOKING-VALUE/);
    const started = await runCli(['start', '--config', file]);
    assert.deepEqual([started.code, opensslReason(started.stderr)], [1, expected]);
  });

  test('with the config itself valid, every problem across rules is listed, each with where the rule is written', async () => {
    writeFileSync(join(dir, 'good-rules.yaml'), 'rules:\n  - { name: twice, effect: allow }\n');
    const file = join(dir, 'rules-only.yaml');
    writeFileSync(
      file,
      'store: { sqlite: { path: rules-only.db } }\nconnections:\n  - { name: llm, type: openai, target: "http://127.0.0.1:9/v1", access: { groups: [eng] } }\n' +
        'policy:\n  files: [good-rules.yaml]\n  rules:\n    - { name: twice, effect: deny }\n    - { name: guarded, effect: allow, obligations: { responseGuards: [nothere] } }\n' +
        'approvals:\n  rules:\n    typo-rule: { reviewers: [sec] }\n',
    );
    const checked = await runCli(['config', 'check', file]);
    assert.deepEqual([checked.code, checked.stderr], [
      1,
      [
        `gatehouse: invalid config ${file}:`,
        '  approvals.rules.typo-rule: no policy rule with effect require_approval is named "typo-rule" (in the config, its policy files or packs), so these options would never apply',
        '  policy.rules[1]: rule "guarded": obligations.responseGuards: no response rule (on: response) is named "nothere"',
        `  policy file ${join(dir, 'good-rules.yaml')}: rules[0]: rule "twice": name: the name is used by another rule (rule names must be unique across config, files and packs)`,
        '',
      ].join('\n'),
    ]);
  });
});
