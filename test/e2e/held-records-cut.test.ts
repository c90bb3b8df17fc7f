// A held-records spill file cut at its end (or deleted) while the gateway is down, with
// the real gatehouse process on PostgreSQL. The file is written only while the store is
// away, so the store cannot witness how many lines it had: the log does. While the store
// is away the gateway logs `held records on disk` with the file, its id and how many
// lines it holds (once a retry, when that changed), and the next start logs what it found
// in each file (`held records left by the previous run`, `found`): the last line of the
// cut file is missing from the second, and nothing else says so.

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { heldRecordsFileOf, heldRecordsSuite, refusalsHeldWhileStoreAway } from '../helpers/store-relay.js';

const upstreamKey = 'sk-upstream-held-cut';

/** The JSON log lines whose msg starts with `message`. */
function logLines(logs: string, message: string): Record<string, unknown>[] {
  return logs
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((line) => String(line.msg).startsWith(message));
}

describe('a held-records file cut at its end, end to end on PostgreSQL', () => {
  const suite = heldRecordsSuite('gatehouse-held-cut-', upstreamKey);

  test('the log says how many lines the file held before the kill, and the next start how many it found', { timeout: 90_000 }, async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    const dir = suite.dir;
    const behind = await suite.behindStoreRelay();
    const relay = behind.relay;
    let gateway = await behind.start();
    await refusalsHeldWhileStoreAway(gateway, relay);
    const name = heldRecordsFileOf(join(dir, 'data'), gateway.child.pid)!;
    const logs = await gateway.waitForLog(/"lines":3/, 15_000);
    const said = logLines(logs, 'held records on disk').at(-1)?.onDisk as { file: string; fileId: string; lines: number } | undefined;
    assert.ok(said, logs);
    assert.equal(said.file, name);
    assert.equal(said.lines, 3);
    assert.match(said.fileId, /^[A-Za-z0-9_-]{16}$/);
    await gateway.stop('SIGKILL');

    // The attacker cuts the last line off.
    const file = join(dir, 'data', name);
    const lines = readFileSync(file, 'utf8').split('\n');
    writeFileSync(file, `${lines.slice(0, 2).join('\n')}\n`);

    await relay.up();
    gateway = await behind.start();
    const next = await gateway.waitForLog(/held records written/, 15_000);
    const left = logLines(next, 'held records left by the previous run');
    assert.equal(left.length, 1, next);
    assert.deepEqual(left[0]!.found, [{ file: name, fileId: said.fileId, lines: 2 }], 'one line fewer than the previous run said: the file was cut');
  });
});
