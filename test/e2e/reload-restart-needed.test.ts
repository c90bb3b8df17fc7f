// End to end: a reload applies the policy only. An edit of anything else in the config
// file (a connection's target or credential, a listener, the limit store) used to be
// read and silently dropped, so the operator believed it had taken effect; now the
// reload names those paths (log line and the admin API's answer) and still applies the
// policy part of the same edit.

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { demoConnectionYaml, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const upstreamKey = 'sk-upstream-restart-needed';

describe('reload: config changes that need a restart', () => {
  let upstream: DemoUpstream;
  let gateway: GatewayProcess;
  let adminKey: string;

  before(async () => {
    upstream = await startDemoUpstream({ apiKey: upstreamKey });
    gateway = await startGatewayProcess(demoConnectionYaml(upstream.url, 'policy:\n  rules: []\n'), { env: { UPSTREAM_KEY: upstreamKey } });
    adminKey = await gateway.createKey('ops', ['admins']);
  });

  after(async () => {
    await gateway?.stop();
    await upstream?.close();
  });

  const reload = async () => {
    const res = await fetch(`${gateway.adminUrl}/api/policy/reload`, { method: 'POST', headers: { authorization: `Bearer ${adminKey}` } });
    assert.equal(res.status, 200);
    return (await res.json()) as { changed: boolean; restartNeeded: string[] };
  };

  test('an unchanged config needs no restart', async () => {
    assert.deepEqual((await reload()).restartNeeded, []);
  });

  test('a changed target and listener are named, never their values, and the policy part still applies', async () => {
    const original = readFileSync(gateway.configPath, 'utf8');
    const edited = original
      .replace(upstream.url, 'http://127.0.0.1:9/v1')
      .replace('admin:\n  listen: { host: 127.0.0.1, port: 0 }', 'admin:\n  listen: { host: 127.0.0.1, port: 0 }\n  maxConnections: 100')
      .replace('  rules: []\n', '  rules:\n    - { name: no-sailing, effect: deny, when: [{ keywords: [sailing] }] }\n');
    assert.notEqual(edited, original);
    writeFileSync(gateway.configPath, edited);
    const body = await reload();
    assert.equal(body.changed, true);
    assert.deepEqual(body.restartNeeded, ['admin', 'connections.demo']);
    const line = () => gateway.logs().split('\n').find((l) => l.includes('config changes not applied'));
    for (let i = 0; i < 100 && line() === undefined; i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(line(), gateway.logs());
    assert.match(line()!, /"level":"warn"/);
    assert.match(line()!, /"restartNeeded":\["admin","connections.demo"\]/);
    assert.ok(!line()!.includes('127.0.0.1:9'), 'the new value is not logged');
    // The running connection still uses the target it started with.
    const key = await gateway.createKey('user', ['ml']);
    const res = await fetch(`${gateway.url}/c/demo/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: 'hello' }] }),
    });
    assert.equal(res.status, 200);
    await res.text();
  });
});
