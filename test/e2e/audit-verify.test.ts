// `gatehouse audit verify`, prune and export against tampered or unusual stores, with the
// real gatehouse process: rows edited, deleted, reordered and inserted in PostgreSQL;
// prune over a break; every event deleted; an export to a place it cannot write; a
// verification that outlasts an append; a long verification beside live traffic.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { openAuditTrail } from '../../src/audit/index.js';
import { loadConfig } from '../../src/config/index.js';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { openStore } from '../../src/store/index.js';
import { createTestPostgresDatabase } from '../helpers/databases.js';
import { demoConnectionYaml, runCli, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { upstreamKey, env, cli } from '../helpers/audit-e2e.js';

describe('audit, end to end on PostgreSQL', () => {
  let upstream: DemoUpstream;
  let gateway: GatewayProcess | undefined;
  let database: Awaited<ReturnType<typeof createTestPostgresDatabase>>;
  let dir: string;

  before(async () => {
    database = await createTestPostgresDatabase();
    upstream = await startDemoUpstream({ apiKey: upstreamKey });
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-audit-pg-'));
  });
  after(async () => {
    await gateway?.stop();
    await upstream?.close();
    if ('drop' in database) await database.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('edited, deleted, reordered and inserted rows in PostgreSQL: verify fails and names the event', async (t) => {
    if ('skip' in database) return t.skip(database.skip);
    const url = database.url;
    gateway = await startGatewayProcess(demoConnectionYaml(upstream.url), { env: { ...env, PG_URL: url }, dir, store: 'store:\n  postgres:\n    url: "${PG_URL}"\n' });
    const cliEnv = { ...env, PG_URL: url };
    const key = await gateway.createKey('ml-bot', ['ml']);
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${gateway.url}/c/demo/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: `question ${i}` }] }),
      });
      await res.text();
    }
    const run = (args: string[]) => runCli([...args, '--config', join(dir, 'gatehouse.yaml')], cliEnv);
    assert.equal((await run(['audit', 'verify'])).code, 0);

    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const idAt = async (seq: number) => (await client.query<{ id: string }>('select id from audit_events where seq = $1', [seq])).rows[0]!.id;
    const expectBroken = async (pattern: RegExp) => {
      const verify = await run(['audit', 'verify']);
      assert.equal(verify.code, 3, verify.stdout);
      assert.match(verify.stdout, pattern);
    };
    try {
      await client.query('begin');
      const edited = await idAt(3);
      await client.query(`update audit_events set details = replace(details, 'demo', 'other') where seq = 3`);
      await client.query('commit');
      await expectBroken(new RegExp(`^chain BROKEN at event seq 3 \\(${edited}\\): event seq 3 \\(${edited}\\) was altered`));
      await client.query('begin');
      await client.query(`update audit_events set details = replace(details, 'other', 'demo') where seq = 3`);
      await client.query('commit');
      assert.equal((await run(['audit', 'verify'])).code, 0, 'restored');

      const row = (await client.query('select * from audit_events where seq = 4')).rows[0] as Record<string, unknown>;
      await client.query('delete from audit_events where seq = 4');
      await expectBroken(/^chain BROKEN at event seq 4: event seq 4 is missing \(deleted\): the chain breaks before event seq 5 /);
      await client.query('insert into audit_events (seq, id, at, writer, kind, actor, target, details, prev_hash, hash) values ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)', [row['seq'], row['id'], row['at'], row['writer'], row['kind'], row['actor'], row['target'], row['details'], row['prev_hash'], row['hash']]);
      assert.equal((await run(['audit', 'verify'])).code, 0, 'restored');

      const five = await idAt(5);
      await client.query('update audit_events set seq = -1 where seq = 5');
      await client.query('update audit_events set seq = 5 where seq = 6');
      await client.query('update audit_events set seq = 6 where seq = -1');
      const nowFive = await idAt(5);
      assert.notEqual(nowFive, five);
      await expectBroken(new RegExp(`^chain BROKEN at event seq 5 \\(${nowFive}\\): event seq 5 \\(${nowFive}\\) does not follow event seq 4`));
      await client.query('update audit_events set seq = -1 where seq = 5');
      await client.query('update audit_events set seq = 5 where seq = 6');
      await client.query('update audit_events set seq = 6 where seq = -1');
      assert.equal((await run(['audit', 'verify'])).code, 0, 'restored');

      const head = (await client.query<{ seq: string }>('select max(seq) as seq from audit_events')).rows[0]!.seq;
      await client.query(`insert into audit_events (seq, id, at, writer, kind, actor, target, details, prev_hash, hash) select seq + 1, 'evt_forged', at, writer, 'key.created', actor, target, details, hash, repeat('a', 64) from audit_events where seq = $1`, [head]);
      await expectBroken(new RegExp(`event seq ${Number(head) + 1} \\(evt_forged\\) was altered`));
    } finally {
      await client.end();
    }
  });
});

describe('audit prune over a broken chain, with the CLI', () => {
  test('security: prune refuses (exit 3) to delete a range holding a break, which would make verify pass again; --force prunes and names the break', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-prune-'));
    try {
      // A signing key and a checkpoint after every batch, so each CLI act below ends at one.
      const keyFile = join(dir, 'signing-key.pem');
      writeFileSync(keyFile, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
      writeFileSync(join(dir, 'gatehouse.yaml'), `store:\n  sqlite: { path: ${join(dir, 'gatehouse.db')} }\naudit:\n  signingKey: file:${keyFile}\n  checkpoint: { every: 1 }\nconnections:\n  - { name: demo, type: openai, target: "http://127.0.0.1:9/v1", access: { groups: [ml] } }\n`);
      for (const name of ['a', 'b', 'c']) assert.equal((await cli(dir, ['keys', 'create', '--name', name, '--groups', 'ml'])).code, 0);
      const db = new SQLite(join(dir, 'gatehouse.db'));
      try {
        db.prepare(`delete from audit_events where seq = 2`).run();
      } finally {
        db.close();
      }
      const later = new Date(Date.now() + 60_000).toISOString();
      const refused = await cli(dir, ['audit', 'prune', '--before', later]);
      assert.equal(refused.code, 3, refused.stdout + refused.stderr);
      assert.match(refused.stderr, /^gatehouse: nothing pruned: the chain is broken in the events a prune through seq \d+ would delete: event seq 2 is missing/);
      assert.equal((await cli(dir, ['audit', 'verify'])).code, 3, 'the break is still there to find');

      const forced = await cli(dir, ['audit', 'prune', '--before', later, '--force']);
      assert.equal(forced.code, 0, forced.stderr);
      const check = new SQLite(join(dir, 'gatehouse.db'), { readonly: true });
      try {
        const pruned = check.prepare(`select details from audit_events where kind = 'audit.pruned'`).get() as { details: string };
        assert.match(pruned.details, /"overBreak":"event seq 2 is missing/);
      } finally {
        check.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('audit verify of a chain whose every event was deleted, with the CLI', () => {
  test('security: deleting every event before the first checkpoint is a break (exit 3), named against the head, not "chain verified: events 0..0"', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-wiped-'));
    try {
      const keyFile = join(dir, 'signing-key.pem');
      writeFileSync(keyFile, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
      // No checkpoint is due yet: nothing signed vouches for these events, only the head row.
      writeFileSync(join(dir, 'gatehouse.yaml'), `store:\n  sqlite: { path: ${join(dir, 'gatehouse.db')} }\naudit:\n  signingKey: file:${keyFile}\n  checkpoint: { every: 1000, interval: 1h }\nconnections:\n  - { name: demo, type: openai, target: "http://127.0.0.1:9/v1", access: { groups: [ml] } }\n`);
      for (const name of ['a', 'b']) assert.equal((await cli(dir, ['keys', 'create', '--name', name, '--groups', 'ml'])).code, 0);
      assert.equal((await cli(dir, ['audit', 'verify'])).code, 0);
      const db = new SQLite(join(dir, 'gatehouse.db'));
      try {
        assert.equal((db.prepare(`select count(*) as n from audit_checkpoints`).get() as { n: number }).n, 0);
        db.prepare(`delete from audit_events`).run();
      } finally {
        db.close();
      }
      const verify = await cli(dir, ['audit', 'verify']);
      assert.equal(verify.code, 3, verify.stdout);
      assert.match(verify.stdout, /^chain BROKEN at event seq 1: every event was deleted: the head records seq 2, the chain is empty/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('after every event is deleted, verify names the events the checkpoints vouch for, not "events after seq 0"', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-wiped-'));
    try {
      const keyFile = join(dir, 'signing-key.pem');
      writeFileSync(keyFile, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
      writeFileSync(join(dir, 'gatehouse.yaml'), `store:\n  sqlite: { path: ${join(dir, 'gatehouse.db')} }\naudit:\n  signingKey: file:${keyFile}\n  checkpoint: { every: 1 }\nconnections:\n  - { name: demo, type: openai, target: "http://127.0.0.1:9/v1", access: { groups: [ml] } }\n`);
      for (const name of ['a', 'b']) assert.equal((await cli(dir, ['keys', 'create', '--name', name, '--groups', 'ml'])).code, 0);
      const db = new SQLite(join(dir, 'gatehouse.db'));
      try {
        db.prepare(`delete from audit_events`).run();
      } finally {
        db.close();
      }
      const verify = await cli(dir, ['audit', 'verify']);
      assert.equal(verify.code, 3, verify.stdout);
      assert.doesNotMatch(verify.stdout, /after seq 0/);
      assert.match(verify.stdout, /^chain BROKEN at event seq 1: checkpoint at seq 1 vouches for event seq 1, which is missing \(deleted\)/m);
      assert.match(verify.stdout, /every event was deleted: the head records seq 2, the chain is empty/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('audit export to a place it cannot write, with the CLI', () => {
  test('a missing directory for a CSV, or a file where a bundle directory should go, is one line naming --out (exit 1), not a crash with a stack', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-export-'));
    try {
      const keyFile = join(dir, 'signing-key.pem');
      writeFileSync(keyFile, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
      writeFileSync(join(dir, 'gatehouse.yaml'), `store:\n  sqlite: { path: ${join(dir, 'gatehouse.db')} }\naudit:\n  signingKey: file:${keyFile}\nconnections:\n  - { name: demo, type: openai, target: "http://127.0.0.1:9/v1", access: { groups: [ml] } }\n`);
      assert.equal((await cli(dir, ['keys', 'create', '--name', 'a', '--groups', 'ml'])).code, 0);
      const csv = await cli(dir, ['audit', 'export', '--out', join(dir, 'missing', 'x.csv')]);
      assert.equal(csv.code, 1, csv.stderr);
      assert.equal(csv.stderr, `gatehouse: --out ${join(dir, 'missing', 'x.csv')}: cannot write it (ENOENT: its directory does not exist)\n`);
      writeFileSync(join(dir, 'a-file'), 'x');
      const bundle = await cli(dir, ['audit', 'export', '--out', join(dir, 'a-file')]);
      assert.equal(bundle.code, 1, bundle.stderr);
      assert.equal(bundle.stderr, `gatehouse: --out ${join(dir, 'a-file')}: cannot write it (EEXIST: a file is there; a bundle goes to a directory, a CSV to a name ending in .csv)\n`);
      // Nothing failed half-way was chained as exported.
      const exported = () => {
        const db = new SQLite(join(dir, 'gatehouse.db'), { readonly: true });
        try {
          return (db.prepare(`select actor, details from audit_events where kind = 'audit.exported' order by seq`).all() as { actor: string; details: string }[]).map((e) => ({ actor: e.actor, details: JSON.parse(e.details) as Record<string, unknown> }));
        } finally {
          db.close();
        }
      };
      assert.deepEqual(exported(), []);
      // Security regression: a CSV export, which holds the prompts and answers as a bundle
      // does, left no trace in the chain (only bundles chained audit.exported).
      const written = await cli(dir, ['audit', 'export', '--out', join(dir, 'all.csv'), '--subject', 'key:a']);
      assert.equal(written.code, 0, written.stderr);
      const events = exported();
      assert.equal(events.length, 1);
      assert.match(events[0]!.actor, /^cli:/);
      assert.deepEqual(events[0]!.details, { format: 'csv', filter: { subject: 'key:a' }, exchanges: 0 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('audit verify while another process appends, with the CLI', () => {
  test('a verification that outlasts an append reports no break: the events appended meanwhile are not "appended outside the gateway" (it exited 3 on a live store)', { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-live-verify-'));
    try {
      const keyFile = join(dir, 'signing-key.pem');
      writeFileSync(keyFile, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
      const configFile = join(dir, 'gatehouse.yaml');
      writeFileSync(configFile, `store:\n  sqlite: { path: ${join(dir, 'gatehouse.db')} }\naudit:\n  signingKey: file:${keyFile}\nconnections:\n  - { name: demo, type: openai, target: "http://127.0.0.1:9/v1", access: { groups: [ml] } }\n`);
      // A chain long enough that verifying it takes a while (about a second here): a
      // day of a busy gateway's records is far longer.
      const config = loadConfig(configFile, env, { secrets: 'store-only' });
      const store = await openStore(config.store);
      const trail = openAuditTrail(store.db, config.audit, { createKey: false, withSinks: false });
      try {
        for (let i = 0; i < 30_000; i += 1000) await Promise.all(Array.from({ length: 1000 }, (_, j) => trail.log.event({ kind: 'test.filled', actor: 'cli:test', target: null, details: { i: i + j } })));
      } finally {
        await trail.close();
        await store.close();
      }
      // Another process appends an event every 20 ms (as a gateway under traffic does, and
      // more often), while three verifications run.
      const appenderScript = `
        const { loadConfig } = await import(${JSON.stringify(new URL('../../dist/config/index.js', import.meta.url).href)});
        const { openStore } = await import(${JSON.stringify(new URL('../../dist/store/index.js', import.meta.url).href)});
        const { openAuditTrail } = await import(${JSON.stringify(new URL('../../dist/audit/index.js', import.meta.url).href)});
        const config = loadConfig(${JSON.stringify(configFile)}, process.env, { secrets: 'store-only' });
        const store = await openStore(config.store);
        const trail = openAuditTrail(store.db, config.audit, { createKey: false, withSinks: false });
        let stop = false;
        process.stdin.on('data', () => (stop = true)).resume();
        while (!stop) {
          await trail.log.event({ kind: 'test.appended', actor: 'cli:test', target: null, details: {} });
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        await trail.close();
        await store.close();`;
      const appender = spawn(process.execPath, ['--input-type=module', '-e', appenderScript], { env, stdio: ['pipe', 'inherit', 'inherit'] });
      const appenderExit = new Promise<number | null>((resolve) => appender.once('exit', resolve));
      try {
        for (let i = 0; i < 3; i++) {
          const verify = await cli(dir, ['audit', 'verify']);
          assert.equal(verify.code, 0, verify.stdout + verify.stderr);
        }
      } finally {
        appender.stdin!.end('stop\n');
        assert.equal(await appenderExit, 0);
      }
      const final = await cli(dir, ['audit', 'verify']);
      assert.equal(final.code, 0, final.stdout);
      assert.match(final.stdout, /^chain verified: events 1\.\.3\d\d\d\d /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('GET /api/audit/verify on a gateway serving traffic', () => {
  test("a long verification does not hold the gateway's event loop: a request sent during it is answered before it ends", { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-verify-loop-'));
    let gateway: GatewayProcess | undefined;
    try {
      gateway = await startGatewayProcess(demoConnectionYaml('http://127.0.0.1:9/v1'), { env, dir });
      const adminKey = await gateway.createKey('verifier', ['admins']);
      // 60,000 events: about 2 s of hashing, which ran in one turn of the gateway's loop.
      const config = loadConfig(gateway.configPath, env, { secrets: 'store-only' });
      const store = await openStore(config.store);
      const trail = openAuditTrail(store.db, config.audit, { createKey: false, withSinks: false });
      try {
        for (let i = 0; i < 60_000; i += 1000) await Promise.all(Array.from({ length: 1000 }, (_, j) => trail.log.event({ kind: 'test.filled', actor: 'cli:test', target: null, details: { i: i + j } })));
      } finally {
        await trail.close();
        await store.close();
      }
      const order: string[] = [];
      const verify = fetch(`${gateway.adminUrl}/api/audit/verify`, { headers: { authorization: `Bearer ${adminKey}` } }).then(async (r) => {
        const report = (await r.json()) as { ok: boolean; events: number };
        order.push('verify');
        return report;
      });
      await new Promise((resolve) => setTimeout(resolve, 100));
      const health = await fetch(`${gateway.adminUrl}/healthz`);
      assert.equal(health.status, 200);
      order.push('healthz');
      const report = await verify;
      assert.equal(report.ok, true);
      assert.ok(report.events > 60_000);
      assert.deepEqual(order, ['healthz', 'verify']);
    } finally {
      await gateway?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
