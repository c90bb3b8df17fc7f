// A reload that edits only a limit (`policy.limits.rules`) is a policy change, through
// the real gateway process: it gets a new policy version (recorded by the decisions made
// under it), a `policy changed` log line and a `policy.changed` event. Before, the
// version hashed the rules alone: raising or removing a limit was applied with nothing
// in the chain, and the exchanges before and after named the same version.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import SQLite from 'better-sqlite3';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { demoConnectionYaml, runCli, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const upstreamKey = 'sk-upstream-reload-limits';
const env = { ...process.env, UPSTREAM_KEY: upstreamKey };
let upstream: DemoUpstream;
let gateway: GatewayProcess;
let dir: string;
let adminKey: string;
let userKey: string;

const config = (requests: number) => `${demoConnectionYaml(upstream.url)}policy:
  limits:
    rules:
      - name: per-caller
        match: { connections: [demo] }
        per: identity
        window: 1h
        requests: ${requests}
store:
  sqlite: { path: ${join(dir, 'gatehouse.db')} }
`;

before(async () => {
  upstream = await startDemoUpstream({ apiKey: upstreamKey });
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-reload-limits-'));
  gateway = await startGatewayProcess(config(1), { env, dir, store: '' });
  adminKey = await gateway.createKey('admin', ['admins']);
  userKey = await gateway.createKey('user', ['ml']);
});
after(async () => {
  await gateway?.stop();
  await upstream?.close();
  rmSync(dir, { recursive: true, force: true });
});

const admin = (path: string, init: RequestInit = {}) => fetch(`${gateway.adminUrl}${path}`, { ...init, headers: { authorization: `Bearer ${adminKey}` } });
const models = () => fetch(`${gateway.url}/c/demo/models`, { headers: { authorization: `Bearer ${userKey}` } });

function policyChangedEvents(): Array<{ actor: string; target: string; details: string }> {
  const db = new SQLite(join(dir, 'gatehouse.db'), { readonly: true });
  try {
    return db.prepare("select actor, target, details from audit_events where kind = 'policy.changed' order by seq").all() as Array<{ actor: string; target: string; details: string }>;
  } finally {
    db.close();
  }
}

test('raising a limit by a reload gives a new policy version and a policy.changed event', async () => {
  const before = (await (await admin('/api/policy')).json()) as { version: string };
  assert.equal((await models()).status, 200);
  assert.equal((await models()).status, 429, 'the limit of 1 request refuses the second');

  writeFileSync(gateway.configPath, config(5));
  const reload = (await (await admin('/api/policy/reload', { method: 'POST' })).json()) as { version: string; previousVersion: string; changed: boolean };
  // The file watcher may have reloaded first; either way the running version moved.
  assert.notEqual(reload.version, before.version, 'a limit edit changes the policy version');
  const running = (await (await admin('/api/policy')).json()) as { version: string };
  assert.equal(running.version, reload.version);
  assert.equal((await models()).status, 200, 'the raised limit applies');

  // An admin API read waits for what is pending, then the chain holds the change.
  await admin('/api/sessions?limit=1');
  const changed = policyChangedEvents();
  assert.equal(changed.length, 1, 'one policy.changed event for the limit edit');
  assert.equal(changed[0]!.target, `policy:${reload.version}`);
  assert.equal((JSON.parse(changed[0]!.details) as { previousVersion: string }).previousVersion, before.version);
  assert.match(await gateway.waitForLog(/"msg":"policy changed"/), /"msg":"policy changed"/);

  const list = (await (await admin('/api/sessions?connection=demo&limit=10')).json()) as { sessions: Array<{ id: string }> };
  const shown = await Promise.all(list.sessions.map(async (s) => ((await (await admin(`/api/sessions/${s.id}`)).json()) as { policyVersion: string }).policyVersion));
  assert.deepEqual(new Set(shown), new Set([before.version, reload.version]), 'the decisions name the version they were made under');
  const verify = await runCli(['audit', 'verify', '--config', gateway.configPath], env);
  assert.equal(verify.code, 0, verify.stdout);
});
