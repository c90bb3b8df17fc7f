// Every command refuses an option it does not take (exit 2, naming the ones it takes),
// instead of accepting it and doing nothing: `keys list --limit 1` listed every key.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli } from '../helpers/gateway-process.js';

describe('cli: options per command', () => {
  let dir: string;
  let config: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-cli-flags-'));
    config = join(dir, 'gatehouse.yaml');
    writeFileSync(config, `connections:\n  - { name: demo, type: openai, target: "http://127.0.0.1:9/v1", access: { groups: [ml] } }\nstore:\n  sqlite: { path: ${join(dir, 'g.db')} }\n`);
    for (const name of ['first', 'second', 'third']) assert.equal((await runCli(['keys', 'create', '--name', name, '--groups', 'ml', '--config', config])).code, 0);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('keys list --limit N lists the N newest keys', async () => {
    const { code, stdout } = await runCli(['keys', 'list', '--limit', '2', '--json', '--config', config]);
    assert.equal(code, 0);
    assert.deepEqual((JSON.parse(stdout) as { name: string }[]).map((k) => k.name), ['third', 'second']);
    const refused = await runCli(['keys', 'list', '--limit', '0', '--config', config]);
    assert.deepEqual([refused.code, refused.stderr], [2, 'gatehouse: --limit must be a positive integer\n']);
  });

  test('an option another command takes is a usage error (exit 2), not ignored', async () => {
    const cases: [string[], string][] = [
      [['keys', 'revoke', 'first', '--limit', '2'], 'gatehouse: keys revoke does not take --limit: it takes --config\n'],
      [['start', '--name', 'x'], 'gatehouse: start does not take --name: it takes --config\n'],
      [['quickstart', '--json'], 'gatehouse: quickstart does not take --json: it takes --port\n'],
      [['sessions', 'show', 'ex_1', '--text', 'x'], 'gatehouse: sessions show does not take --text: it takes --config, --json\n'],
      [['reviews', 'deny', 'rv_1', '--grant', '30m'], 'gatehouse: reviews deny does not take --grant: it takes --config, --comment, --json\n'],
    ];
    for (const [args, stderr] of cases) {
      const result = await runCli([...args, '--config', config]);
      assert.deepEqual([result.code, result.stderr, result.stdout], [2, stderr, ''], args.join(' '));
    }
    const { stdout } = await runCli(['keys', 'list', '--json', '--config', config]);
    assert.equal((JSON.parse(stdout) as unknown[]).length, 3, 'the refused revoke revoked nothing');
  });

  test('an option given twice is a usage error (exit 2), not its last value taken silently: --text a --text b looked like an AND', async () => {
    const cases: [string[], string][] = [
      [['sessions', 'list', '--text', 'zebras', '--text', 'lions'], 'gatehouse: --text is given 2 times: give each option once\n'],
      [['audit', 'prune', '--before', '2026-01-01T00:00:00Z', '--before', '2027-01-01T00:00:00Z'], 'gatehouse: --before is given 2 times: give each option once\n'],
    ];
    for (const [args, stderr] of cases) {
      const result = await runCli([...args, '--config', config]);
      assert.deepEqual([result.code, result.stderr, result.stdout], [2, stderr, ''], args.join(' '));
    }
  });

  test('an option no command takes is a usage error too: one line naming it, then the usage line of the command (not the whole help)', async () => {
    const cases: [string[], string][] = [
      [['keys', 'list', '--bogus'], 'gatehouse: unknown option --bogus\nusage: gatehouse keys list [--limit N]\n'],
      [['config', 'check', config, '-x'], 'gatehouse: unknown option -x\nusage: gatehouse config check FILE\n'],
      [['sessions', 'list', '--bogus'], 'gatehouse: unknown option --bogus\nusage: gatehouse sessions list [--connection C] [--subject S] [--group G] [--decision allow|deny|require_approval] [--operation OP] [--rule R] [--review ID] [--text "words"] [--since TIME] [--until TIME] [--limit N]\n'],
      // A kid is base64url: one that starts with "-" must follow "--", and the error says so.
      [['revoke', 'signing-key', '-Xk2b', '--reason', 'leaked'], 'gatehouse: unknown option -X\na value that starts with "-" goes after "--": gatehouse revoke signing-key --reason leaked -- -Xk2b\nusage: gatehouse revoke token JTI | subject S | user S | key ID|NAME | signing-key KID [--reason TEXT]\n'],
      [['frobnicate', '--bogus'], 'gatehouse: unknown option --bogus\nusage: gatehouse <command> [options] (gatehouse --help lists the commands)\n'],
      [['keys', 'list', '--config'], "gatehouse: Option '-c, --config <value>' argument missing\nusage: gatehouse keys list [--limit N]\n"],
    ];
    for (const [args, stderr] of cases) {
      const result = await runCli(args);
      assert.deepEqual([result.code, result.stderr, result.stdout], [2, stderr, ''], args.join(' '));
    }
  });

  test('a key lifetime without a unit is a usage error: --expires 30 made a key that expired 30 ms later, --overlap 24 cut the old key off at once', async () => {
    const cases: [string[], string][] = [
      [['keys', 'create', '--name', 'short', '--groups', 'ml', '--expires', '30'], 'gatehouse: --expires "30" has no unit: give one (30d, 12h, 90m), or never\n'],
      [['keys', 'rotate', 'first', '--overlap', '24'], 'gatehouse: --overlap "24" has no unit: give one (24h, 30m), or 0\n'],
      [['keys', 'rotate', 'first', '--overlap', '1h', '--expires', '90'], 'gatehouse: --expires "90" has no unit: give one (30d, 12h, 90m), or never\n'],
    ];
    for (const [args, stderr] of cases) {
      const result = await runCli([...args, '--config', config]);
      assert.deepEqual([result.code, result.stderr, result.stdout], [2, stderr, ''], args.join(' '));
    }
    const listed = JSON.parse((await runCli(['keys', 'list', '--json', '--config', config])).stdout) as { name: string; expiresAt: number | null }[];
    assert.ok(!listed.some((k) => k.name === 'short'), 'no key was created');
    assert.equal(listed.find((k) => k.name === 'first')!.expiresAt, null, 'the key was not rotated');
    // With a unit, or 0 for an overlap that ends at once, as before.
    assert.equal((await runCli(['keys', 'create', '--name', 'week', '--groups', 'ml', '--expires', '7d', '--config', config])).code, 0);
    assert.equal((await runCli(['keys', 'rotate', 'second', '--overlap', '0', '--config', config])).code, 0);
  });
});
