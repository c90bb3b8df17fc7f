// A CLI command that cannot see the gateway's pid (another container sharing the data
// volume; here a new pid namespace, `unshare -p`) beside a gateway under traffic: it
// used to take the gateway's live record journal segments for a dead writer's, apply
// and delete them, and what the gateway wrote on into the deleted file was lost. With
// the gateway's store lock it leaves every segment to the gateway: nothing is lost.
// Needs root and unshare(1) (skipped otherwise).

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { demoConnectionYaml, gatehouseBin, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const upstreamKey = 'sk-upstream-lock-ns';
const env = { ...process.env, UPSTREAM_KEY: upstreamKey };

function unshareWorks(): boolean {
  try {
    execFileSync('unshare', ['-p', '-f', 'true'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** `gatehouse ARGS` in a pid namespace of its own: the gateway's pid is not there. */
function cliElsewhere(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('unshare', ['-p', '-f', process.execPath, gatehouseBin, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('a CLI in another pid namespace beside a running gateway', { skip: process.getuid?.() === 0 && unshareWorks() ? undefined : 'needs root and unshare -p' }, () => {
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

  test('leaves the gateway its journal segments: every exchange is recorded, none lost', { timeout: 120_000 }, async () => {
    const key = await gateway.createKey('app', ['ml']);
    // Traffic until the CLI has run 5 times beside it (each run used to delete a live segment).
    let cliRuns = 0;
    let sent = 0;
    const traffic = (async () => {
      while (cliRuns < 5) {
        const res = await fetch(`${gateway.url}/c/demo/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: `question ${sent}` }] }),
        });
        assert.equal(res.status, 200);
        await res.text();
        sent++;
      }
    })();
    for (; cliRuns < 5; cliRuns++) {
      const listed = await cliElsewhere(['sessions', 'list', '--limit', '1', '--json', '--config', gateway.configPath]);
      assert.equal(listed.code, 0, listed.stderr);
    }
    await traffic;
    assert.doesNotMatch(gateway.logs(), /a segment was deleted while this gateway wrote to it/);
    const all = JSON.parse((await gateway.cli(['sessions', 'list', '--limit', '100000', '--json'])).stdout) as unknown[];
    assert.equal(all.length, sent);
  });
});
