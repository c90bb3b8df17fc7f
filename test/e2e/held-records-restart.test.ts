// Records held while the PostgreSQL store cannot be reached survive a crash, with the
// real gatehouse process: the store is reached through a TCP relay the test takes down;
// refusals recorded meanwhile are held, and kept in held-records-<pid>-<id>.jsonl in the data
// directory (mode 0600); the gateway is killed (SIGKILL), the store comes back, and the
// restarted gateway writes them, with their events, and the chain verifies.

import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import pg from 'pg';
import { runCli } from '../helpers/gateway-process.js';
import { heldRecordsFileOf, heldRecordsSuite, refusalsHeldWhileStoreAway } from '../helpers/store-relay.js';

const upstreamKey = 'sk-upstream-held';

describe('held records across a crash, end to end on PostgreSQL', () => {
  const suite = heldRecordsSuite('gatehouse-held-', upstreamKey);

  test('refusals recorded while the store is away are written by the next start after a SIGKILL', { timeout: 90_000 }, async (t) => {
    if (suite.skip) return t.skip(suite.skip);
    const dir = suite.dir;
    const behind = await suite.behindStoreRelay();
    const relay = behind.relay;
    let gateway = await behind.start();
    // No credential: refused (401) without the store, and recorded as a refusal.
    const ids = await refusalsHeldWhileStoreAway(gateway, relay);
    const name = heldRecordsFileOf(join(dir, 'data'), gateway.child.pid);
    assert.ok(name !== undefined, 'held records are kept on disk');
    const file = join(dir, 'data', name);
    assert.ok(existsSync(file));
    assert.equal(statSync(file).mode & 0o777, 0o600);

    await gateway.stop('SIGKILL');
    await relay.up();
    gateway = await behind.start();
    const logs = await gateway.waitForLog(/held records written/, 15_000);
    assert.match(logs, /held records left by the previous run/);
    assert.match(logs, /held records written/);

    const client = new pg.Client({ connectionString: suite.databaseUrl });
    await client.connect();
    try {
      const rows = await client.query<{ id: string; status: number; error_code: string }>('select id, status, error_code from exchanges where id = any($1) order by seq', [ids]);
      assert.deepEqual(rows.rows.map((r) => [r.id, r.status]), ids.map((id) => [id, 401]));
      const events = await client.query<{ target: string }>(`select target from audit_events where kind = 'exchange.refused' and target = any($1) order by seq`, [ids]);
      assert.deepEqual(events.rows.map((r) => r.target), ids, 'each written once, with its event, in order');
    } finally {
      await client.end();
    }
    assert.deepEqual(readdirSync(join(dir, 'data')).filter((name) => name.startsWith('held-records')), [], 'the files are removed once everything held is written');
    const verify = await runCli(['audit', 'verify', '--config', join(dir, 'gatehouse.yaml')], behind.env);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
  });
});
