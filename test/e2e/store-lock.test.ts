// One gateway per SQLite store, with the real gatehouse process: a second `gatehouse
// start` on the same store exits 1 naming the directory and the holder (pid, host),
// having chained nothing; the CLI still reads and writes beside the running gateway; a
// SIGKILLed gateway leaves no lock behind. Gateways sharing a PostgreSQL store (and here
// their data directory too) all start.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import SQLite from 'better-sqlite3';
import OpenAI from 'openai';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { createTestPostgresDatabase } from '../helpers/databases.js';
import { demoConnectionYaml, gatehouseBin, runCli, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const upstreamKey = 'sk-upstream-store-lock';
const env = { ...process.env, UPSTREAM_KEY: upstreamKey };

/** Runs `gatehouse start`: resolves with its exit, or with `started` once it serves (then stops it). */
function secondStart(configPath: string): Promise<{ code: number | null; stderr: string; started: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [gatehouseBin, 'start', '--config', configPath], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let started = false;
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (!started && /data plane /.test(stderr)) {
        started = true;
        child.kill('SIGTERM');
      }
    });
    child.once('exit', (code) => resolve({ code, stderr, started }));
  });
}

const chat = (gateway: GatewayProcess, key: string) =>
  new OpenAI({ baseURL: `${gateway.url}/c/demo`, apiKey: key, maxRetries: 0 }).chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'hello' }] });

describe('one gateway per SQLite store', () => {
  let upstream: DemoUpstream;
  let dir: string;
  let first: GatewayProcess | undefined;
  let restarted: GatewayProcess | undefined;

  before(async () => {
    upstream = await startDemoUpstream({ apiKey: upstreamKey });
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-store-lock-'));
  });
  after(async () => {
    await first?.stop('SIGKILL');
    await restarted?.stop();
    await upstream?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a second gateway on the store is refused, naming the directory and the holder; a SIGKILLed holder does not block a restart', { timeout: 120_000 }, async () => {
    first = await startGatewayProcess(demoConnectionYaml(upstream.url), { env, dir });
    const key = await first.createKey('app', ['ml']);
    await chat(first, key);
    const db = join(dir, 'gatehouse.db');

    const second = await secondStart(first.configPath);
    assert.equal(second.started, false, `the second gateway started:\n${second.stderr}`);
    assert.equal(second.code, 1, second.stderr);
    assert.ok(second.stderr.includes(`the SQLite store ${db} in ${dir} is in use by another gateway (pid ${first.child.pid} on host ${hostname()}, started `), second.stderr);

    // The CLI beside the running gateway: reads, and writes (keys create) as before.
    await chat(first, await first.createKey('other', ['ml']));
    const sessions = JSON.parse((await first.cli(['sessions', 'list', '--json'])).stdout) as unknown[];
    assert.equal(sessions.length, 2);
    const verify = await first.cli(['audit', 'verify']);
    assert.match(verify.stdout, /chain verified/);
    const store = new SQLite(db, { readonly: true });
    try {
      const started = store.prepare("select count(*) from audit_events where kind = 'gateway.started'").pluck().get();
      assert.equal(started, 1, 'the refused gateway chained nothing (no gateway.started)');
    } finally {
      store.close();
    }

    // SIGKILL: no stale lock; the next gateway on the store starts and serves.
    await first.stop('SIGKILL');
    first = undefined;
    restarted = await startGatewayProcess(demoConnectionYaml(upstream.url), { env, dir });
    await chat(restarted, key);
    assert.match((await restarted.cli(['audit', 'verify'])).stdout, /chain verified/);
  });
});

const database = await createTestPostgresDatabase();

describe('gateways sharing a PostgreSQL store', { skip: 'skip' in database ? database.skip : undefined }, () => {
  let upstream: DemoUpstream;
  const gateways: GatewayProcess[] = [];
  let dir: string;

  before(async () => {
    upstream = await startDemoUpstream({ apiKey: upstreamKey });
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-store-lock-pg-'));
  });
  after(async () => {
    for (const gateway of gateways) await gateway.stop();
    await upstream?.close();
    rmSync(dir, { recursive: true, force: true });
    if (!('skip' in database)) await database.drop();
  });

  test('all start, even on one data directory (it holds no journal there), and verify one chain', { timeout: 120_000 }, async () => {
    if ('skip' in database) return;
    const store = 'store:\n  postgres: { url: "${STORE_URL}" }\n';
    const pgEnv = { UPSTREAM_KEY: upstreamKey, STORE_URL: database.url };
    gateways.push(await startGatewayProcess(demoConnectionYaml(upstream.url), { env: pgEnv, store, dir }));
    gateways.push(await startGatewayProcess(demoConnectionYaml(upstream.url), { env: pgEnv, store, dir }));
    const key = await gateways[0]!.createKey('app', ['ml']);
    for (const gateway of gateways) await chat(gateway, key);
    const verify = await runCli(['audit', 'verify', '--config', gateways[1]!.configPath], { ...process.env, ...pgEnv });
    assert.equal(verify.code, 0, verify.stderr);
    assert.match(verify.stdout, /2 exchange records/);
  });
});
