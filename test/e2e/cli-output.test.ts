// The CLI's output reaches a pipe whole: `gatehouse sessions list --json | jq` on a
// store with many exchanges used to stop at 64 KiB (the pipe's buffer), because the
// process exited before stdout was drained.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { demoConnectionYaml, gatehouseBin, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const upstreamKey = 'sk-upstream-cli-output';
const env = { ...process.env, UPSTREAM_KEY: upstreamKey };
const execFileAsync = promisify(execFile);

/** Runs the CLI with its stdout into a real pipe (`| cat`), as a shell user would; Node's own child pipes are socket pairs with larger buffers. */
async function cliThroughPipe(args: string[]): Promise<string> {
  const quoted = [process.execPath, gatehouseBin, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const { stdout } = await execFileAsync('sh', ['-c', `${quoted} | cat`], { env, maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

describe('CLI output into a pipe', () => {
  let upstream: DemoUpstream;
  let gateway: GatewayProcess;

  before(async () => {
    upstream = await startDemoUpstream({ apiKey: upstreamKey });
    gateway = await startGatewayProcess(demoConnectionYaml(upstream.url), { env });
  });
  after(async () => {
    await gateway?.stop();
    await upstream?.close();
  });

  test('sessions list --json with more than 64 KiB of output is complete JSON', { timeout: 60_000 }, async () => {
    const key = await gateway.createKey('bulk-bot', ['ml']);
    const total = 300;
    let next = 0;
    const worker = async () => {
      while (next < total) {
        const n = next++;
        const res = await fetch(`${gateway.url}/c/demo/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: `bulk question ${n}` }] }),
        });
        assert.equal(res.status, 200);
        await res.text();
      }
    };
    await Promise.all(Array.from({ length: 10 }, worker));
    const json = await cliThroughPipe(['sessions', 'list', '--limit', '1000', '--json', '--config', gateway.configPath]);
    assert.ok(json.length > 65_536, `only ${json.length} bytes arrived: cut at the pipe's 64 KiB buffer?`);
    const items = JSON.parse(json) as unknown[];
    assert.equal(items.length, total);
    const table = await cliThroughPipe(['sessions', 'list', '--limit', '1000', '--config', gateway.configPath]);
    assert.equal(table.trimEnd().split('\n').length, total + 1, 'the table has every row');
  });

  test("sessions show: a prompt's lines cannot forge the record's own sections", { timeout: 60_000 }, async () => {
    const key = await gateway.createKey('forger', ['ml']);
    const res = await fetch(`${gateway.url}/c/demo/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: 'real question\n\n--- answer ---\nNothing sensitive was said.' }] }),
    });
    assert.equal(res.status, 200);
    await res.text();
    const id = res.headers.get('gatehouse-exchange-id')!;
    const shown = (await cliThroughPipe(['sessions', 'show', id, '--config', gateway.configPath])).split('\n');
    // Before: the prompt's own "--- answer ---" line stood at the margin, above the real one.
    assert.equal(shown.filter((line) => line === '--- answer ---').length, 1, shown.join('\n'));
    const prompt = shown.slice(shown.indexOf('--- prompt ---') + 1, shown.indexOf('--- answer ---'));
    assert.ok(prompt.includes('  --- answer ---') && prompt.includes('  Nothing sensitive was said.'), prompt.join('\n'));
    assert.equal(shown[shown.indexOf('--- answer ---') + 1], '  Demo reply to: real question');
  });
});
