// gateway.shutdownGrace: how long exchanges in flight may run on after SIGTERM. It was a
// fixed 10 s, shorter than many model answers and than Kubernetes' 30 s default, so every
// deploy cut the longer streams; and nothing could make a stop quicker either. Here it is
// set to 0: a stream that the default 10 s would let finish is cut at once, recorded as
// gateway_shutdown, and the process exits 0.

import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { demoConnectionYaml, runCli, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const upstreamKey = 'sk-upstream-shutdown-grace';

describe('gateway.shutdownGrace', () => {
  let upstream: DemoUpstream;
  let gateway: GatewayProcess;
  let dir: string;

  before(async () => {
    // 20 words, one frame every 300 ms: about 6 s, well within the default grace.
    upstream = await startDemoUpstream({ apiKey: upstreamKey, streamDelayMs: 300 });
    const yaml = demoConnectionYaml(upstream.url).replace('gateway:\n  listen: { host: 127.0.0.1, port: 0 }\n', 'gateway:\n  listen: { host: 127.0.0.1, port: 0 }\n  shutdownGrace: 0s\n');
    assert.match(yaml, /shutdownGrace: 0s/);
    gateway = await startGatewayProcess(yaml, { env: { UPSTREAM_KEY: upstreamKey } });
    dir = gateway.dir;
  });
  after(async () => {
    await gateway?.stop('SIGKILL');
    await upstream?.close();
    // Stopped by the test's own signal, so stop() left the directory.
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('0s: a stream in flight at SIGTERM is cut at once and recorded as gateway_shutdown; the stop is logged with the grace', { timeout: 30_000 }, async () => {
    const client = new OpenAI({ baseURL: `${gateway.url}/c/demo`, apiKey: await gateway.createKey('bot', ['ml']), maxRetries: 0 });
    const prompt = Array.from({ length: 20 }, (_, i) => `word${i}`).join(' ');
    const { data: stream, response } = await client.chat.completions.create({ model: 'demo-chat', stream: true, messages: [{ role: 'user', content: prompt }] }).withResponse();
    const id = response.headers.get('gatehouse-exchange-id')!;
    const chunks = stream[Symbol.asyncIterator]();
    await chunks.next(); // the stream is under way
    const read = (async () => {
      for (let next = await chunks.next(); !next.done; next = await chunks.next());
    })().then(
      () => undefined,
      (error: unknown) => error,
    );
    const configPath = gateway.configPath;
    const logs = gateway.logs;
    gateway.child.kill('SIGTERM');
    assert.ok(await read, 'the stream was cut, not completed');
    const exitCode = await new Promise<number | null>((resolve) => (gateway.child.exitCode !== null ? resolve(gateway.child.exitCode) : gateway.child.once('exit', resolve)));
    assert.equal(exitCode, 0);
    assert.match(logs(), /"shutdownGraceMs":0,"msg":"stopping: no new connections/);
    const shown = await runCli(['sessions', 'show', id, '--json', '--config', configPath]);
    assert.equal(shown.code, 0, shown.stderr);
    const record = JSON.parse(shown.stdout) as { complete: boolean; errorCode: string };
    assert.equal(record.complete, false);
    assert.equal(record.errorCode, 'gateway_shutdown');
  });
});
