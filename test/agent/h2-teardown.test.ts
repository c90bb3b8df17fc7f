// Regression: tearing down HTTP/2 streams from inside a stream's 'close' event made the
// whole process spin in node:http2 (empty DATA frames forever, no timer ever fired).
// Runs the scenario in a child process so a regression fails this test instead of
// freezing the test runner.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

test('resetting another stream and destroying the session from a close handler does not spin the event loop', async () => {
  const fixture = fileURLToPath(new URL('./fixtures/teardown-in-close.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', fixture], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('exit', (c, s) => resolve([c, s])));
  clearTimeout(killer);
  assert.equal(signal, null, `the child was killed: its event loop stopped turning. Output: ${out}`);
  assert.equal(code, 0, out);
  assert.match(out, /^done$/m);
});
