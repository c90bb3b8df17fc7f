// Graceful stop of the real gateway process: on SIGTERM a short exchange in flight
// finishes; a stream still running when the 10 s grace period ends is cut and recorded
// as gateway_shutdown (not as if the client had gone); the process exits 0.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { demoConnectionYaml, runCli, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

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
