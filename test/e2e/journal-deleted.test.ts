// A record journal segment deleted before it is applied, with the real gatehouse
// process on SQLite: under a running gateway (it notices, logs, writes on in a new
// segment, and recording.journal_missing is chained), and under a stopped one (the next
// CLI command that opens the store chains it). The records of the deleted segment are
// gone; what a user relies on is that the chain says a segment went missing.

import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import SQLite from 'better-sqlite3';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { demoConnectionYaml, runCli, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const upstreamKey = 'sk-upstream-journal';
const env = { ...process.env, UPSTREAM_KEY: upstreamKey };

async function chat(gateway: GatewayProcess, key: string, text: string): Promise<string> {
  const res = await fetch(`${gateway.url}/c/demo/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: text }] }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  await res.arrayBuffer();
  return res.headers.get('gatehouse-exchange-id')!;
}

function segments(dir: string): string[] {
  return readdirSync(join(dir, 'gatehouse.db.records')).filter((name) => name.endsWith('.jsonl')).sort();
}

/** The recording.journal_missing events, and whether the exchanges are in the store. */
function inStore(dir: string, ids: readonly string[]): { missing: { segment: string; applied: number; written?: number }[]; present: boolean[] } {
  const db = new SQLite(join(dir, 'gatehouse.db'), { readonly: true });
  try {
    const missing = (db.prepare(`select details from audit_events where kind = 'recording.journal_missing' order by seq`).all() as { details: string }[]).map((r) => JSON.parse(r.details) as { segment: string; applied: number; written?: number });
    const present = ids.map((id) => db.prepare('select 1 from exchanges where id = ?').get(id) !== undefined);
    return { missing, present };
  } finally {
    db.close();
  }
}

async function until<T>(what: () => T, done: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = what();
  while (!done(value) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    value = what();
  }
  return value;
}

describe('a record journal segment deleted before it is applied, end to end on SQLite', () => {
  let upstream: DemoUpstream;
  const dirs: string[] = [];
  let gateway: GatewayProcess | undefined;

  before(async () => {
    upstream = await startDemoUpstream({ apiKey: upstreamKey });
  });
  after(async () => {
    await gateway?.stop('SIGKILL');
    await upstream?.close();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  afterEach(async () => {
    await gateway?.stop('SIGKILL');
    gateway = undefined;
  });

  test('security: under a running gateway it is noticed, logged, chained, and later records go to a new segment', { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-journal-deleted-'));
    dirs.push(dir);
    gateway = await startGatewayProcess(demoConnectionYaml(upstream.url), { env, dir });
    const key = await gateway.createKey('ml-bot', ['ml']);
    const before = await chat(gateway, key, 'recorded before');
    // Applied (within 100 ms) before the deletion: it stays.
    assert.deepEqual((await until(() => inStore(dir, [before]), (s) => s.present[0]!)).present, [true]);
    const [segment] = segments(dir);
    assert.ok(segment, 'the gateway writes a segment');
    rmSync(join(dir, 'gatehouse.db.records', segment));
    // Past the writer's check interval (250 ms): the next batch notices.
    await new Promise((resolve) => setTimeout(resolve, 400));
    const afterIds = [await chat(gateway, key, 'recorded after one'), await chat(gateway, key, 'recorded after two')];
    await gateway.waitForLog(/a segment was deleted while this gateway wrote to it/);
    assert.match(gateway.logs(), new RegExp(`"segment":"${segment}"`));
    const seen = await until(() => inStore(dir, afterIds), (s) => s.missing.length > 0 && s.present.every(Boolean));
    assert.equal(seen.missing.length, 1, JSON.stringify(seen.missing));
    assert.equal(seen.missing[0]!.segment, segment);
    assert.ok(typeof seen.missing[0]!.applied === 'number');
    assert.deepEqual(seen.present, [true, true], 'records after the deletion are applied from the new segment');
    // `written` when the writer told of it first; the worker's own check (every second) may find it before.
    assert.ok(seen.missing[0]!.applied > 0 && (seen.missing[0]!.written ?? seen.missing[0]!.applied) >= seen.missing[0]!.applied, JSON.stringify(seen.missing));
    assert.ok(segments(dir).every((name) => name !== segment));
    const verify = await gateway.cli(['audit', 'verify']);
    assert.match(verify.stdout, /^chain verified/);
    await gateway.stop();
    gateway = undefined;
  });

  test('security: under a stopped gateway, the next CLI command that opens the store chains it', { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-journal-deleted-'));
    dirs.push(dir);
    gateway = await startGatewayProcess(demoConnectionYaml(upstream.url), { env, dir });
    const key = await gateway.createKey('ml-bot', ['ml']);
    const id = await chat(gateway, key, 'recorded, then its segment deleted');
    // The writer registers a segment as it begins it (through its worker, within milliseconds).
    await new Promise((resolve) => setTimeout(resolve, 300));
    await gateway.stop('SIGKILL');
    gateway = undefined;
    const [segment] = segments(dir);
    assert.ok(segment, 'the killed gateway left its segment');
    rmSync(join(dir, 'gatehouse.db.records', segment));
    const list = await runCli(['sessions', 'list', '--json', '--config', join(dir, 'gatehouse.yaml')], env);
    assert.equal(list.code, 0, list.stderr);
    const { missing } = inStore(dir, [id]);
    assert.equal(missing.length, 1, JSON.stringify(missing));
    assert.equal(missing[0]!.segment, segment);
    const verify = await runCli(['audit', 'verify', '--config', join(dir, 'gatehouse.yaml')], env);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    const again = await runCli(['sessions', 'list', '--json', '--config', join(dir, 'gatehouse.yaml')], env);
    assert.equal(again.code, 0);
    assert.equal(inStore(dir, [id]).missing.length, 1, 'chained once');
  });

  // What an attacker who can write the data directory does to a stopped gateway's last
  // segment: deletes it, and the row that says it existed, or marks that row applied.
  const attacks = [
    { name: 'deleted with its record_journal row', sql: 'delete from record_journal where segment = ?', said: /was deleted with its row/ },
    { name: 'deleted, its record_journal row marked applied', sql: 'update record_journal set done = 1 where segment = ?', said: /is marked applied in record_journal but the chain does not say it was/ },
  ];
  for (const attack of attacks) {
    test(`security: the last segment ${attack.name} under a stopped gateway: verify names it (the chain says it was begun, not that it was applied)`, { timeout: 60_000 }, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'gatehouse-journal-deleted-'));
      dirs.push(dir);
      gateway = await startGatewayProcess(demoConnectionYaml(upstream.url), { env, dir });
      const key = await gateway.createKey('ml-bot', ['ml']);
      await chat(gateway, key, 'recorded before the kill');
      await new Promise((resolve) => setTimeout(resolve, 300));
      await gateway.stop('SIGKILL');
      gateway = undefined;
      const [segment] = segments(dir);
      assert.ok(segment, 'the killed gateway left its segment');
      rmSync(join(dir, 'gatehouse.db.records', segment));
      const db = new SQLite(join(dir, 'gatehouse.db'));
      try {
        assert.equal(db.prepare(attack.sql).run(segment).changes, 1);
      } finally {
        db.close();
      }
      const verify = await runCli(['audit', 'verify', '--config', join(dir, 'gatehouse.yaml')], env);
      assert.equal(verify.code, 3, verify.stdout + verify.stderr);
      assert.match(verify.stdout, new RegExp(`record journal segment ${segment}, begun at event seq \\d+, `));
      assert.match(verify.stdout, attack.said);
      assert.equal(inStore(dir, []).missing.length, 0, 'nothing else tells of it');
    });
  }
});
