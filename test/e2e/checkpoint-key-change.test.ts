// A gateway started with a checkpoint signing key other than the one that signed the
// newest checkpoint (the key file lost and regenerated, or `audit.signingKey` rotated)
// chains `audit.key_changed` naming both key ids, and `gateway.started` names the key
// in use: before, the change was only visible as checkpoints that stopped verifying.
// `audit verify` then names the old key's checkpoints, until the old key's public half is
// listed in audit.previousPublicKeys: then the chain verifies across the change.

import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import SQLite from 'better-sqlite3';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { demoConnectionYaml, runCli, startGatewayProcess } from '../helpers/gateway-process.js';

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
  // The operator keeps the old key's public half (openssl pkey -pubout) before replacing it.
  const oldPublic = createPublicKey(readFileSync(join(dir, 'audit-signing-key.pem'), 'utf8')).export({ type: 'spki', format: 'pem' }).toString();
  writeFileSync(join(dir, 'old-audit-key.pub.pem'), oldPublic);
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

test('audit verify trusts the replaced key only when audit.previousPublicKeys lists its public half', async () => {
  const yaml = demoConnectionYaml(upstream.url, 'audit:\n  checkpoint: { every: 1 }\n');
  const started = await startGatewayProcess(yaml, { env, dir });
  await started.createKey('after-change', ['ml']); // a checkpoint signed by the new key
  await started.stop();
  const config = join(dir, 'gatehouse.yaml');
  const without = await runCli(['audit', 'verify', '--config', config], env);
  assert.equal(without.code, 3, without.stdout + without.stderr);
  assert.match(without.stdout, /is signed by key [0-9a-f]{16}, not by the key it is verified with .*a key replaced before goes in audit\.previousPublicKeys/);

  const store = `store:\n  sqlite: { path: ${join(dir, 'gatehouse.db')} }\n`;
  writeFileSync(config, `${demoConnectionYaml(upstream.url, 'audit:\n  checkpoint: { every: 1 }\n  previousPublicKeys: [old-audit-key.pub.pem]\n')}\n${store}`);
  const trusted = await runCli(['audit', 'verify', '--config', config], env);
  assert.equal(trusted.code, 0, trusted.stdout + trusted.stderr);
  assert.match(trusted.stdout, /^chain verified: .* [1-9]\d* signed checkpoints/);

  // A file that is no Ed25519 key is refused when the config loads, naming the entry.
  writeFileSync(join(dir, 'not-a-key.pem'), 'hello\n');
  writeFileSync(config, `${demoConnectionYaml(upstream.url, 'audit:\n  previousPublicKeys: [old-audit-key.pub.pem, not-a-key.pem]\n')}\n${store}`);
  const refused = await runCli(['config', 'check', config], env);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /audit\.previousPublicKeys\[1\]: .*not-a-key\.pem: must be an Ed25519 public key in PEM/);
});
