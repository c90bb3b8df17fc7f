// A search that finds nothing because a filter names a value no exchange has (a typo at
// 3 a.m.: `--operation chat.completion`) says so, with the nearest recorded or
// configured names: on stderr for the CLI (stdout, --json included, stays as it was),
// as `unmatched` beside an empty page for GET /api/sessions. The names known are the
// recorded ones, the configured connections and the policy's rules: a rule or connection
// that exists but no record has yet is said to be one (not hinted as a typo). A value
// that exists, or an operation of a real shape nothing did yet, gets no hint; an unknown
// decision is refused with the valid ones.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { demoConnectionYaml, runCli, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const upstreamKey = 'sk-upstream-search-hints';
const env = { ...process.env, UPSTREAM_KEY: upstreamKey };

describe('hints for a search that names what no exchange has', () => {
  let upstream: DemoUpstream;
  let gateway: GatewayProcess;
  let adminKey: string;
  let out: string;

  before(async () => {
    upstream = await startDemoUpstream({ apiKey: upstreamKey });
    // `quiet` and `no-launch-codes` exist, but no exchange is on the one or decided by the other.
    const quiet = `  - { name: quiet, type: http, target: "${upstream.url}", access: { groups: [ml] } }\npolicy:\n  rules:\n    - { name: no-launch-codes, effect: deny, when: [{ keywords: [launch codes] }] }\n`;
    gateway = await startGatewayProcess(demoConnectionYaml(upstream.url, quiet), { env });
    out = mkdtempSync(join(tmpdir(), 'gatehouse-hints-'));
    adminKey = await gateway.createKey('admin', ['admins']);
    const key = await gateway.createKey('ci-bot', ['ml']);
    const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
    const chat = await fetch(`${gateway.url}/c/demo/chat/completions`, { method: 'POST', headers, body: JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: 'hello' }] }) });
    assert.equal(chat.status, 200, await chat.text());
    const models = await fetch(`${gateway.url}/c/demo/models`, { headers });
    assert.equal(models.status, 200, await models.text());
    await gateway.cli(['sessions', 'list']); // both recorded before the searches below
  });
  after(async () => {
    await gateway?.stop();
    await upstream?.close();
    rmSync(out, { recursive: true, force: true });
  });

  const sessions = (...args: string[]) => runCli(['sessions', 'list', ...args, '--config', gateway.configPath], env);

  test('sessions list: a misspelt operation, connection, subject, group or rule gets the nearest names on stderr; stdout unchanged', { timeout: 60_000 }, async () => {
    const json = await sessions('--operation', 'chat.completion', '--json');
    assert.equal(json.code, 0);
    assert.equal(json.stdout, '[]\n');
    assert.equal(
      json.stderr,
      'gatehouse: no exchange has --operation "chat.completion", which is not an operation\'s name (chat.completions, completions, embeddings, responses, http.<METHOD> <path>, sql.<class>); recorded operations, closest first: chat.completions, http.GET /models\n',
    );
    const table = await sessions('--operation', 'http.get /models');
    assert.equal(table.code, 0);
    assert.equal(table.stdout.trimEnd().split('\n').length, 1, 'the table is its header alone');
    assert.match(table.stderr, /no exchange has --operation "http\.get \/models".*closest first: http\.GET \/models, /);

    const several = await sessions('--connection', 'dmeo', '--subject', 'ci-bot', '--json');
    assert.equal(several.stdout, '[]\n');
    assert.deepEqual(several.stderr.trimEnd().split('\n'), [
      'gatehouse: no exchange has --connection "dmeo", and no configured connection has that name; connections configured or recorded, closest first: demo, quiet',
      'gatehouse: no exchange has --subject "ci-bot"; recorded subjects, closest first: key:ci-bot',
    ]);
    assert.match((await sessions('--group', 'mll')).stderr, /no exchange has --group "mll"; recorded groups, closest first: ml\n/);
    assert.match((await sessions('--rule', 'connection-acess:demo')).stderr, /no exchange has --rule "connection-acess:demo", and the policy has no rule of that name; rules in the policy or recorded, closest first: connection-access:demo, /);
  });

  test('a rule of the policy or a configured connection that no exchange has yet is said to be one; a typo of it gets it as the nearest name', { timeout: 60_000 }, async () => {
    const rule = await sessions('--rule', 'no-launch-codes', '--json');
    assert.deepEqual([rule.code, rule.stdout, rule.stderr], [0, '[]\n', 'gatehouse: no exchange has --rule "no-launch-codes" yet: the policy has a rule of that name, but no recorded decision names it\n']);
    const typo = await sessions('--rule', 'no-lunch-codes', '--json');
    assert.match(typo.stderr, /^gatehouse: no exchange has --rule "no-lunch-codes", and the policy has no rule of that name; rules in the policy or recorded, closest first: no-launch-codes, /);
    const connection = await sessions('--connection', 'quiet', '--json');
    assert.deepEqual([connection.code, connection.stdout, connection.stderr], [0, '[]\n', 'gatehouse: no exchange has --connection "quiet" yet: it is a configured connection, but no exchange on it is recorded\n']);
    const res = await fetch(`${gateway.adminUrl}/api/sessions?rule=no-launch-codes`, { headers: { authorization: `Bearer ${adminKey}` } });
    assert.deepEqual(await res.json(), { sessions: [], next: null, unmatched: [{ filter: 'rule', value: 'no-launch-codes', nearest: [], configured: true }] });
    const near = await fetch(`${gateway.adminUrl}/api/sessions?rule=no-lunch-codes`, { headers: { authorization: `Bearer ${adminKey}` } });
    assert.equal(((await near.json()) as { unmatched: { nearest: string[] }[] }).unmatched[0]!.nearest[0], 'no-launch-codes');
  });

  test('no hint when the values exist, or an operation of a real shape has not happened yet', { timeout: 60_000 }, async () => {
    const combined = await sessions('--operation', 'chat.completions', '--decision', 'deny', '--json');
    assert.deepEqual([combined.code, combined.stdout, combined.stderr], [0, '[]\n', '']);
    const notYet = await sessions('--operation', 'sql.drop', '--json');
    assert.deepEqual([notYet.code, notYet.stdout, notYet.stderr], [0, '[]\n', '']);
    const found = await sessions('--operation', 'chat.completions', '--json');
    assert.equal((JSON.parse(found.stdout) as unknown[]).length, 1);
    assert.equal(found.stderr, '');
  });

  test('an unknown decision is refused with the valid ones', async () => {
    const refused = await sessions('--decision', 'allowed');
    assert.equal(refused.code, 2);
    assert.equal(refused.stderr, 'gatehouse: --decision must be one of allow, deny, require_approval\n');
  });

  test('audit export of nothing says why on stderr', { timeout: 60_000 }, async () => {
    const csv = join(out, 'none.csv');
    const exported = await runCli(['audit', 'export', '--out', csv, '--operation', 'chat.completion', '--config', gateway.configPath], env);
    assert.equal(exported.code, 0, exported.stderr);
    assert.equal(exported.stdout, `exported 0 exchanges to ${csv}\n`);
    assert.match(exported.stderr, /no exchange has --operation "chat\.completion".*closest first: chat\.completions/);
  });

  test('GET /api/sessions: an empty page names the unmatched filters; a page otherwise has no such field', async () => {
    const get = async (query: string) => {
      const res = await fetch(`${gateway.adminUrl}/api/sessions?${query}`, { headers: { authorization: `Bearer ${adminKey}` } });
      assert.equal(res.status, 200);
      return (await res.json()) as Record<string, unknown>;
    };
    assert.deepEqual(await get('operation=chat.completion&connection=dmeo'), {
      sessions: [],
      next: null,
      unmatched: [
        { filter: 'operation', value: 'chat.completion', nearest: ['chat.completions', 'http.GET /models'] },
        { filter: 'connection', value: 'dmeo', nearest: ['demo', 'quiet'] },
      ],
    });
    assert.deepEqual(await get('operation=chat.completions&decision=deny'), { sessions: [], next: null });
    const decision = await fetch(`${gateway.adminUrl}/api/sessions?decision=allowed`, { headers: { authorization: `Bearer ${adminKey}` } });
    assert.equal(decision.status, 400);
  });
});
