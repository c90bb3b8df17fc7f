// The held-records spill file is authenticated, with the real gatehouse process: records
// held while the PostgreSQL store is away are kept in held-records-<pid>-<id>.jsonl; an
// attacker who can write the data directory edits one of them while the gateway is down
// (a refusal turned into a success, its state digest recomputed so the chain would vouch
// for it). The next start writes the untouched records, not the edited one: it chains
// recording.held_rejected naming the file and the line, logs an error, and keeps the
// file aside for the operator; the chain verifies.

import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import pg from 'pg';
import { rowWithDefaults, stateDigest } from '../../src/audit/exchange-state.js';
import { runCli } from '../helpers/gateway-process.js';
import { heldRecordsFileOf, heldRecordsSuite, refusalsHeldWhileStoreAway } from '../helpers/store-relay.js';

const upstreamKey = 'sk-upstream-held-tamper';

/** What an attacker does to one line: the refusal becomes a 200, and its event's digest is recomputed to match. */
function forge(line: string): string {
  const at = line.indexOf('{');
  const write = JSON.parse(line.slice(at)) as { exchange: { insert: Record<string, unknown> }; event: { details: Record<string, unknown> } };
  Object.assign(write.exchange.insert, { status: 200, error_code: null });
  Object.assign(write.event.details, { status: 200, errorCode: null, state: stateDigest(rowWithDefaults(write.exchange.insert)) });
  return `${line.slice(0, at)}${JSON.stringify(write)}`;
}

describe('an edited held-records file, end to end on PostgreSQL', () => {
  const suite = heldRecordsSuite('gatehouse-held-tamper-', upstreamKey);

  test('the edited record is not written: recording.held_rejected names the file and line, the rest are written, the chain verifies', { timeout: 90_000 }, async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    const dir = suite.dir;
    const behind = await suite.behindStoreRelay();
    const relay = behind.relay;
    let gateway = await behind.start();
    // No credential: refused (401) without the store, and recorded as a refusal.
    const ids = await refusalsHeldWhileStoreAway(gateway, relay);
    const name = heldRecordsFileOf(join(dir, 'data'), gateway.child.pid)!;
    const file = join(dir, 'data', name);
    await gateway.stop('SIGKILL');

    const lines = readFileSync(file, 'utf8').split('\n');
    assert.equal(lines.length, 4, 'three records and the final newline');
    lines[1] = forge(lines[1]!);
    writeFileSync(file, lines.join('\n'));

    await relay.up();
    gateway = await behind.start();
    const logs = await gateway.waitForLog(/held records written/, 15_000);
    assert.match(logs, /held records rejected/);
    assert.ok(logs.includes(`${name} line 2`), logs);

    const client = new pg.Client({ connectionString: suite.databaseUrl });
    await client.connect();
    try {
      const rows = await client.query<{ id: string; status: number }>('select id, status from exchanges where id = any($1) order by seq', [ids]);
      assert.deepEqual(rows.rows.map((r) => [r.id, r.status]), [[ids[0], 401], [ids[2], 401]], 'the edited record is not written; the others are');
      const rejected = await client.query<{ details: string }>(`select details from audit_events where kind = 'recording.held_rejected'`);
      assert.equal(rejected.rows.length, 1);
      const details = JSON.parse(rejected.rows[0]!.details) as Record<string, unknown>;
      assert.equal(details.file, name);
      assert.equal(details.line, 2);
      assert.equal(details.keptAs, `${name}.rejected`);
    } finally {
      await client.end();
    }
    assert.ok(existsSync(`${file}.rejected`), 'the altered file is kept aside for the operator');
    assert.deepEqual(readdirSync(join(dir, 'data')).filter((n) => n.endsWith('.jsonl') || n.endsWith('.lock')), [], 'no spill file left to be read again, nor its lock');
    const verify = await runCli(['audit', 'verify', '--config', join(dir, 'gatehouse.yaml')], behind.env);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
  });
});
