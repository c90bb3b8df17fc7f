// Reloads are administrative acts in the audit chain, through the real gateway process:
// a reload that changes who reviews a rule (approvals.rules, applied in place, the policy
// version unchanged) is an `approvals.changed` event, and a refused reload (an invalid
// config, by a file edit, SIGHUP or the admin API) a `policy.reload_refused` one. Both
// used to leave nothing in the chain.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import SQLite from 'better-sqlite3';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { demoConnectionYaml, runCli, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const upstreamKey = 'sk-upstream-reload';
const env = { ...process.env, UPSTREAM_KEY: upstreamKey };
let upstream: DemoUpstream;
let gateway: GatewayProcess;
let dir: string;
let adminKey: string;

const config = (reviewers: string, effect = 'require_approval') => `${demoConnectionYaml(upstream.url)}policy:
  rules:
    - name: prod-prompts
      effect: ${effect}
      when:
        - keywords: [production database]
approvals:
  defaults: { reviewers: [security] }
  rules:
    prod-prompts: { reviewers: [${reviewers}] }
store:
  sqlite: { path: ${join(dir, 'gatehouse.db')} }
`;

before(async () => {
  upstream = await startDemoUpstream({ apiKey: upstreamKey });
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-reload-audit-'));
  gateway = await startGatewayProcess(config('dba'), { env, dir, store: '' });
  adminKey = await gateway.createKey('admin', ['admins']);
});
after(async () => {
  await gateway?.stop();
  await upstream?.close();
  rmSync(dir, { recursive: true, force: true });
});

type Event = { kind: string; actor: string | null; target: string | null; details: string };
async function eventsOf(kind: string, count: number): Promise<Event[]> {
  let events: Event[] = [];
  for (let i = 0; i < 100; i++) {
    // An admin API read waits for what is pending.
    await fetch(`${gateway.adminUrl}/api/sessions?limit=1`, { headers: { authorization: `Bearer ${adminKey}` } });
    const db = new SQLite(join(dir, 'gatehouse.db'), { readonly: true });
    try {
      events = db.prepare('select kind, actor, target, details from audit_events where kind = ? order by seq').all(kind) as Event[];
    } finally {
      db.close();
    }
    if (events.length >= count) return events;
    await new Promise((r) => setTimeout(r, 100));
  }
  return events;
}

test("a reload that changes a rule's reviewers is an approvals.changed event", async () => {
  writeFileSync(gateway.configPath, config('dba, interns'));
  const [changed] = await eventsOf('approvals.changed', 1);
  assert.ok(changed, 'approvals.changed chained');
  assert.equal(changed.actor, `file:${gateway.configPath}`);
  assert.equal(changed.target, 'approvals');
  assert.deepEqual(JSON.parse(changed.details), { changed: ['rules.prod-prompts'] });
  assert.equal((await eventsOf('policy.changed', 0)).length, 0, 'the policy itself did not change');
  const verify = await runCli(['audit', 'verify', '--config', gateway.configPath], env);
  assert.equal(verify.code, 0, verify.stdout);
});

test('a refused reload, by a file edit, SIGHUP or the admin API, is a policy.reload_refused event', async () => {
  writeFileSync(gateway.configPath, config('dba, interns', 'perhaps'));
  await eventsOf('policy.reload_refused', 1);
  gateway.child.kill('SIGHUP');
  await eventsOf('policy.reload_refused', 2);
  const res = await fetch(`${gateway.adminUrl}/api/policy/reload`, { method: 'POST', headers: { authorization: `Bearer ${adminKey}` } });
  assert.equal(res.status, 400);
  const refused = await eventsOf('policy.reload_refused', 3);
  assert.deepEqual(refused.map((e) => e.actor), [`file:${gateway.configPath}`, 'signal:SIGHUP', 'admin:key:admin']);
  for (const e of refused) assert.match((JSON.parse(e.details) as { error: string }).error, /policy\.rules\[0\]\.effect/);
  // The running policy still holds.
  const check = await fetch(`${gateway.adminUrl}/api/policy`, { headers: { authorization: `Bearer ${adminKey}` } });
  assert.equal(check.status, 200);
});
