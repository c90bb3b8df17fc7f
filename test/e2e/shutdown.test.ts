// Graceful stop of the real gateway process: on SIGTERM a short exchange in flight
// finishes; a stream still running when the 10 s grace period ends is cut and recorded
// as gateway_shutdown (not as if the client had gone); the process exits 0.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { createTestPostgresDatabase } from '../helpers/databases.js';
import { demoConnectionYaml, gatehouseBin, runCli, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const upstreamKey = 'sk-upstream-shutdown';

describe('graceful stop', () => {
  let upstream: DemoUpstream;
  let gateway: GatewayProcess;
  let dir: string;

  before(async () => {
    // One frame a second: a 20-word answer streams for about 20 s.
    upstream = await startDemoUpstream({ apiKey: upstreamKey, streamDelayMs: 1_000 });
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-shutdown-'));
    gateway = await startGatewayProcess(demoConnectionYaml(upstream.url), { env: { UPSTREAM_KEY: upstreamKey }, dir });
  });
  after(async () => {
    await gateway?.stop('SIGKILL');
    await upstream?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a stream still running after the grace period is cut and recorded as gateway_shutdown; the process exits 0', { timeout: 40_000 }, async () => {
    const client = new OpenAI({ baseURL: `${gateway.url}/c/demo`, apiKey: await gateway.createKey('bot', ['ml']), maxRetries: 0 });
    const prompt = Array.from({ length: 20 }, (_, i) => `word${i}`).join(' ');
    const { data: stream, response } = await client.chat.completions.create({ model: 'demo-chat', stream: true, messages: [{ role: 'user', content: prompt }] }).withResponse();
    const id = response.headers.get('gatehouse-exchange-id')!;
    const read = (async () => {
      let text = '';
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
      return text;
    })().then(
      (text) => ({ text, error: undefined }),
      (error: unknown) => ({ text: '', error }),
    );

    const stopped = Date.now();
    const exitCode = gateway.stop('SIGTERM');
    const { error } = await read;
    const cutAfter = Date.now() - stopped;
    assert.ok(error, 'the stream did not complete');
    assert.ok(cutAfter >= 9_000 && cutAfter < 15_000, `cut after ${cutAfter} ms`);
    assert.equal(await exitCode, 0);

    const shown = await runCli(['sessions', 'show', id, '--json', '--config', gateway.configPath]);
    assert.equal(shown.code, 0, shown.stderr);
    const record = JSON.parse(shown.stdout) as { complete: boolean; errorCode: string };
    assert.equal(record.complete, false);
    assert.equal(record.errorCode, 'gateway_shutdown');
  });
});

describe('graceful stop with a request held for approval', () => {
  let upstream: DemoUpstream;
  let gateway: GatewayProcess;
  let dir: string;

  before(async () => {
    upstream = await startDemoUpstream({ apiKey: upstreamKey });
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-shutdown-held-'));
    const extra = `approvals:\n  defaults: { reviewers: [reviewers], holdFor: 60s }\npolicy:\n  rules:\n    - { name: hold-all, effect: require_approval, match: { connections: [demo] } }\n`;
    gateway = await startGatewayProcess(demoConnectionYaml(upstream.url, extra), { env: { UPSTREAM_KEY: upstreamKey }, dir });
  });
  after(async () => {
    await gateway?.stop('SIGKILL');
    await upstream?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a request still held when the grace period ends is recorded as gateway_shutdown, not as the client leaving', { timeout: 40_000 }, async () => {
    // It was recorded client_closed (499, "the caller left while review … was pending").
    const key = await gateway.createKey('held-bot', ['ml']);
    const answer = fetch(`${gateway.url}/c/demo/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: 'hold me' }] }),
    }).then(
      () => undefined,
      () => undefined,
    );
    // Wait until the review is open (the request is held).
    for (let i = 0; i < 100; i++) {
      const listed = await runCli(['reviews', 'list', '--json', '--config', gateway.configPath]);
      if ((JSON.parse(listed.stdout || '[]') as unknown[]).length > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.equal(await gateway.stop('SIGTERM'), 0);
    await answer;
    const listed = await runCli(['sessions', 'list', '--json', '--config', gateway.configPath]);
    const records = JSON.parse(listed.stdout) as Array<{ errorCode: string | null; status: number; decision: string }>;
    assert.deepEqual(records.map((r) => [r.decision, r.errorCode, r.status]), [['require_approval', 'gateway_shutdown', 503]]);
  });
});

describe('signals while stopping', () => {
  let upstream: DemoUpstream;
  let gateway: GatewayProcess;
  let dir: string;

  before(async () => {
    upstream = await startDemoUpstream({ apiKey: upstreamKey, streamDelayMs: 1_000 });
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-shutdown-signals-'));
    gateway = await startGatewayProcess(demoConnectionYaml(upstream.url), { env: { UPSTREAM_KEY: upstreamKey }, dir });
  });
  after(async () => {
    await gateway?.stop('SIGKILL');
    await upstream?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a SIGHUP during the grace period is ignored and a second SIGTERM cuts at once; the stream is recorded and the process exits 0', { timeout: 40_000 }, async () => {
    // SIGHUP then killed the process (status 129) mid-stop, leaving its line unlogged and
    // the stop unrecorded; a second Ctrl-C did the same (130).
    const client = new OpenAI({ baseURL: `${gateway.url}/c/demo`, apiKey: await gateway.createKey('bot', ['ml']), maxRetries: 0 });
    const prompt = Array.from({ length: 20 }, (_, i) => `word${i}`).join(' ');
    const { data: stream, response } = await client.chat.completions.create({ model: 'demo-chat', stream: true, messages: [{ role: 'user', content: prompt }] }).withResponse();
    const id = response.headers.get('gatehouse-exchange-id')!;
    const read = (async () => {
      for await (const _chunk of stream) void _chunk;
    })().then(
      () => undefined,
      (error: unknown) => error,
    );
    const exited = new Promise<number | null>((resolve) => gateway.child.once('exit', (code) => resolve(code)));
    const stopped = Date.now();
    gateway.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 1_000));
    gateway.child.kill('SIGHUP');
    await new Promise((r) => setTimeout(r, 1_000));
    assert.equal(gateway.child.exitCode, null, 'SIGHUP did not end the process');
    gateway.child.kill('SIGINT');
    assert.ok(await read, 'the stream was cut');
    assert.equal(await exited, 0);
    const stoppedAfter = Date.now() - stopped;
    assert.ok(stoppedAfter < 8_000, `stopped after ${stoppedAfter} ms, not at the end of the 10 s grace period`);
    assert.match(gateway.logs(), /SIGHUP ignored: the gateway is stopping/);
    assert.match(gateway.logs(), /"msg":"gateway stopped"/);

    const shown = await runCli(['sessions', 'show', id, '--json', '--config', gateway.configPath]);
    assert.equal(shown.code, 0, shown.stderr);
    const record = JSON.parse(shown.stdout) as { complete: boolean; errorCode: string };
    assert.equal(record.complete, false);
    assert.equal(record.errorCode, 'gateway_shutdown');
  });
});

describe('a SIGHUP while starting', () => {
  test('is not fatal: the gateway starts, then reloads (the config may have changed after it was read)', { timeout: 60_000 }, async (t) => {
    // It killed the process (status 129) by SIGHUP's default action: a config tool that
    // reloads right after writing the file, while the gateway starts, stopped it.
    const db = await createTestPostgresDatabase();
    if ('skip' in db) return t.skip(db.skip);
    const target = new URL(db.url);
    const postgres = { port: Number(target.port || 5432), host: target.hostname };
    // Holds every store connection until released, so the start is still under way.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const held = new Set<Socket>();
    const relay = createNetServer((client) => {
      held.add(client);
      client.pause();
      void released.then(() => {
        const upstream = connect(postgres.port, postgres.host);
        held.add(upstream);
        client.pipe(upstream).pipe(client);
        client.resume();
        const end = () => (client.destroy(), upstream.destroy());
        client.on('error', end).on('close', end);
        upstream.on('error', end).on('close', end);
      });
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    target.host = `127.0.0.1:${(relay.address() as AddressInfo).port}`;
    const upstream = await startDemoUpstream({ apiKey: upstreamKey });
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-sighup-start-'));
    const configPath = join(dir, 'gatehouse.yaml');
    const yaml = `${demoConnectionYaml(upstream.url, 'policy:\n  rules: []\n')}store:\n  postgres: { url: '\${SIGHUP_TEST_DB_URL}' }\n`;
    writeFileSync(configPath, yaml);
    const child = spawn(process.execPath, [gatehouseBin, 'start', '--config', configPath], { env: { ...process.env, UPSTREAM_KEY: upstreamKey, SIGHUP_TEST_DB_URL: target.toString() }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))));
    try {
      // Connected to the store means the CLI runs (its handlers are installed) and is starting.
      for (let i = 0; i < 300 && held.size === 0; i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(held.size > 0, `the gateway never reached its store:\n${stderr}`);
      // The file changes after it was read; the SIGHUP asks for it.
      writeFileSync(configPath, yaml.replace('  rules: []\n', '  rules:\n    - { name: no-sailing, effect: deny, when: [{ keywords: [sailing] }] }\n'));
      child.kill('SIGHUP');
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(child.exitCode, null, `the SIGHUP ended the process:\n${stderr}`);
      release();
      for (let i = 0; i < 300 && !/"by":"signal:SIGHUP"[^\n]*"msg":"policy changed"/.test(stdout); i++) await new Promise((r) => setTimeout(r, 50));
      assert.match(stderr, /data plane http/);
      assert.match(stdout, /"by":"signal:SIGHUP"[^\n]*"msg":"policy changed"/);
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      child.kill('SIGKILL');
      release();
      for (const socket of held) socket.destroy();
      await new Promise((resolve) => relay.close(resolve));
      await upstream.close();
      await db.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
