// A gateway started with a checkpoint signing key other than the one that signed the
// newest checkpoint (the key file lost and regenerated, or `audit.signingKey` rotated)
// chains `audit.key_changed` naming both key ids, and `gateway.started` names the key
// in use: before, the change was only visible as checkpoints that stopped verifying.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import SQLite from 'better-sqlite3';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { demoConnectionYaml, startGatewayProcess } from '../helpers/gateway-process.js';

const upstreamKey = 'sk-upstream-ckpt';
const env = { ...process.env, UPSTREAM_KEY: upstreamKey };
let upstream: DemoUpstream;
let dir: string;

before(async () => {
  upstream = await startDemoUpstream({ apiKey: upstreamKey });
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-ckpt-key-'));
});
after(async () => {
  await upstream?.close();
  rmSync(dir, { recursive: true, force: true });
});

type Row = { kind: string; details: string };
const events = (): Row[] => {
  const db = new SQLite(join(dir, 'gatehouse.db'), { readonly: true });
  try {
    return db.prepare(`select kind, details from audit_events where kind in ('gateway.started', 'audit.key_changed') order by seq`).all() as Row[];
  } finally {
    db.close();
  }
};

test('a new checkpoint key is an audit.key_changed event; gateway.started names the key', async () => {
  const yaml = demoConnectionYaml(upstream.url, 'audit:\n  checkpoint: { every: 1 }\n');
  const first = await startGatewayProcess(yaml, { env, dir });
  await first.createKey('ml-bot', ['ml']); // chained, so a checkpoint is signed
  await first.stop();
  rmSync(join(dir, 'audit-signing-key.pem'));
  const second = await startGatewayProcess(yaml, { env, dir });
  await second.stop();
  const rows = events().map((r) => ({ kind: r.kind, details: JSON.parse(r.details) as { checkpointKey?: string; from?: string; to?: string } }));
  assert.deepEqual(rows.map((r) => r.kind), ['gateway.started', 'audit.key_changed', 'gateway.started']);
  const [started1, changed, started2] = rows;
  assert.match(started1!.details.checkpointKey!, /^[0-9a-f]{16}$/);
  assert.notEqual(started2!.details.checkpointKey, started1!.details.checkpointKey);
  assert.deepEqual(changed!.details, { from: started1!.details.checkpointKey, to: started2!.details.checkpointKey });
});
