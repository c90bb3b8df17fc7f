// Alerts a responder is promised: an address that failed to authenticate several times
// and then got in, and one identity making requests in bulk. Each is a warn line
// (`alert`), an `alert.raised` event in the chain (so in every sink: a SIEM gets it),
// and a row of `gatehouse audit alerts`. Before, nothing was raised at all: the failures
// and the success were separate records, and a responder had to find the pattern.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { demoConnectionYaml, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

interface Alert {
  seq: number;
  target: string;
  actor: string | null;
  details: Record<string, unknown>;
}

describe('alerts: failed-auth-then-success and bulk-requests', () => {
  let upstream: DemoUpstream;
  let gateway: GatewayProcess;
  before(async () => {
    upstream = await startDemoUpstream({ apiKey: 'sk-up' });
    const audit = `audit:
  alerts:
    failedAuthThenSuccess: { failures: 3, window: 10m }
    bulkRequests: { requests: 6, window: 1m }
  sinks:
    - { type: file, path: siem.jsonl }
`;
    gateway = await startGatewayProcess(demoConnectionYaml(upstream.url, audit), { env: { UPSTREAM_KEY: 'sk-up' } });
  });
  after(async () => {
    await gateway?.stop();
    await upstream?.close();
  });

  const chat = (key: string) => new OpenAI({ baseURL: `${gateway.url}/c/demo`, apiKey: key, maxRetries: 0 }).chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] });
  const alerts = async () => JSON.parse((await gateway.cli(['audit', 'alerts', '--json'])).stdout) as Alert[];

  test('three refused keys from one address, then a key that works: one alert naming the address and who got in', async () => {
    const key = await gateway.createKey('billing-agent', ['ml'], ['--kind', 'agent']);
    const keyId = key.split('_')[1]!;
    // Two failures are below the threshold: the success after them raises nothing.
    for (const wrong of [`ghk_${keyId}_${'W'.repeat(43)}`, 'sk-guess-1']) await assert.rejects(chat(wrong), { status: 401 });
    await chat(key);
    assert.deepEqual(await alerts(), []);
    // The success ended that run; three more failures, then the leaked key.
    for (const wrong of [`ghk_${keyId}_${'X'.repeat(43)}`, 'sk-guess-2', `ghk_${'f'.repeat(16)}_${'Y'.repeat(43)}`]) await assert.rejects(chat(wrong), { status: 401 });
    await chat(key);
    const raised = await alerts();
    assert.equal(raised.length, 1);
    const [alert] = raised;
    assert.equal(alert!.target, 'address:127.0.0.1');
    assert.equal(alert!.actor, 'key:billing-agent');
    assert.deepEqual({ ...alert!.details, firstFailureAt: 0 }, { alert: 'failed-auth-then-success', client: '127.0.0.1', listener: 'data', subject: 'key:billing-agent', failures: 3, firstFailureAt: 0, windowMs: 600_000 });
    // The log says so, at warn, and the sink (the SIEM) has the same event.
    assert.match(await gateway.waitForLog(/"msg":"alert"/), /"level":"warn".*"alert":"failed-auth-then-success".*"subject":"key:billing-agent".*"msg":"alert"/);
    await waitFor(() => sinkLines().some((e) => e.kind === 'alert.raised' && e.seq === alert!.seq));
  });

  test('one identity reaching the bulk threshold within the window: one alert, not one per request after it', async () => {
    const key = await gateway.createKey('scraper', ['ml'], ['--kind', 'agent']);
    for (let i = 0; i < 9; i++) await chat(key);
    const bulk = (await alerts()).filter((a) => a.details['alert'] === 'bulk-requests');
    assert.equal(bulk.length, 1);
    assert.equal(bulk[0]!.target, 'key:scraper');
    assert.deepEqual({ ...bulk[0]!.details, since: 0 }, { alert: 'bulk-requests', subject: 'key:scraper', requests: 6, since: 0, windowMs: 60_000, connection: 'demo' });
    const { stdout } = await gateway.cli(['audit', 'alerts']);
    assert.match(stdout, /^SEQ +AT +ALERT +TARGET +DETAILS\n/);
    assert.match(stdout, /bulk-requests +key:scraper +connection=demo requests=6 since=\d+ subject=key:scraper windowMs=60000\n/);
    assert.match(stdout, /failed-auth-then-success +address:127\.0\.0\.1 +client=127\.0\.0\.1 failures=3 firstFailureAt=\d+ listener=data subject=key:billing-agent windowMs=600000\n/);
    // The admin API answers the same list (a dashboard, a SOAR playbook).
    const admin = await gateway.createKey('responder', ['admins'], ['--kind', 'human']);
    const api = await fetch(`${gateway.adminUrl}/api/alerts?limit=10`, { headers: { authorization: `Bearer ${admin}` } });
    assert.equal(api.status, 200);
    const listed = ((await api.json()) as { alerts: Alert[] }).alerts;
    assert.deepEqual(listed.map((a) => a.details['alert']), ['bulk-requests', 'failed-auth-then-success']);
    const misspelt = await fetch(`${gateway.adminUrl}/api/alerts?snce=2026-01-01T00:00:00Z`, { headers: { authorization: `Bearer ${admin}` } });
    assert.equal(misspelt.status, 400);
    assert.equal(((await misspelt.json()) as { error: { code: string } }).error.code, 'invalid_query');
    const { stdout: verified } = await gateway.cli(['audit', 'verify']);
    assert.match(verified, /^chain verified/);
  });

  function sinkLines(): Array<{ seq: number; kind: string }> {
    try {
      return readFileSync(join(gateway.dir, 'siem.jsonl'), 'utf8').trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as { seq: number; kind: string });
    } catch {
      return [];
    }
  }
});

async function waitFor(check: () => boolean, ms = 5_000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
