// Audit end to end, with the real gatehouse process: a gateway killed with SIGKILL in
// the middle of a streamed answer leaves a record marked incomplete holding what was
// delivered, and the chain still verifies; tampering with the database directly (SQLite
// file, PostgreSQL) makes `gatehouse audit verify` fail and name the event; an exported
// bundle verifies with exactly the commands its README documents.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { createTestPostgresDatabase } from '../helpers/databases.js';
import { demoConnectionYaml, runCli, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const execFileAsync = promisify(execFile);
const upstreamKey = 'sk-upstream-audit';
const env = { ...process.env, UPSTREAM_KEY: upstreamKey };
const longPrompt = Array.from({ length: 40 }, (_, i) => `word${i}`).join(' ');

async function streamUntil(url: string, key: string, enough: (received: string) => boolean): Promise<{ id: string; received: string; reader: ReadableStreamDefaultReader<Uint8Array> }> {
  const res = await fetch(`${url}/c/demo/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'demo-chat', stream: true, messages: [{ role: 'user', content: longPrompt }] }),
  });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let received = '';
  while (!enough(received)) {
    const { value, done } = await reader.read();
    if (done) break;
    received += decoder.decode(value, { stream: true });
  }
  return { id: res.headers.get('gatehouse-exchange-id')!, received, reader };
}

function contentOf(sse: string): string {
  let text = '';
  for (const line of sse.split('\n')) {
    if (!line.startsWith('data: {')) continue;
    const content = (JSON.parse(line.slice(6)) as { choices: { delta?: { content?: string } }[] }).choices[0]?.delta?.content;
    if (content) text += content;
  }
  return text;
}

async function cli(dir: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCli([...args, '--config', join(dir, 'gatehouse.yaml')], env);
}

describe('audit, end to end on SQLite', () => {
  let upstream: DemoUpstream;
  let dir: string;
  let gateway: GatewayProcess;
  let mlKey: string;

  before(async () => {
    upstream = await startDemoUpstream({ apiKey: upstreamKey, streamDelayMs: 150 });
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-audit-e2e-'));
    gateway = await startGatewayProcess(demoConnectionYaml(upstream.url), { env, dir });
    mlKey = await gateway.createKey('ml-bot', ['ml']);
  });
  after(async () => {
    await gateway?.stop('SIGKILL');
    await upstream?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('SIGKILL mid-stream: after a restart the record is there, incomplete, with the delivered text, and the chain verifies', { timeout: 60_000 }, async () => {
    // Past the first progress write (250 ms), well before the end (~6 s).
    const { id, received, reader } = await streamUntil(gateway.url, mlKey, (r) => contentOf(r).split(' ').length > 8);
    await new Promise((resolve) => setTimeout(resolve, 600));
    await gateway.stop('SIGKILL');
    await reader.cancel().catch(() => undefined);
    gateway = await startGatewayProcess(demoConnectionYaml(upstream.url), { env, dir });

    const show = await cli(dir, ['sessions', 'show', id, '--json']);
    assert.equal(show.code, 0, show.stderr);
    const record = JSON.parse(show.stdout) as { complete: boolean; endedAt: string | null; response: { text: string | null }; bytesOut: number; chunkTimings: [number, number][] };
    assert.equal(record.complete, false);
    assert.equal(record.endedAt, null);
    const delivered = contentOf(received);
    assert.ok(record.response.text, 'the delivered text was recorded');
    assert.ok(record.response.text.startsWith('Demo reply to: word0'), record.response.text);
    assert.ok(record.response.text.length >= delivered.length - 40, `recorded "${record.response.text}" keeps up with delivered "${delivered}"`);
    assert.ok(record.chunkTimings.length > 5, 'chunk timings recorded while streaming');

    const replay = await cli(dir, ['sessions', 'replay', id]);
    assert.equal(replay.code, 0, replay.stderr);
    assert.match(replay.stdout, /\+\d+ms {2}\d+ B {2}"data: /);
    assert.match(replay.stdout, /INCOMPLETE/);

    const verify = await cli(dir, ['audit', 'verify']);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    assert.match(verify.stdout, /^chain verified: events 1\.\.\d+ \(\d+ events\), \d+ signed checkpoints, \d+ exchange records\n$/);
  });

  test('admin acts are chained: key created and revoked, gateway started', async () => {
    const created = await cli(dir, ['keys', 'create', '--name', 'temp', '--groups', 'ml', '--json']);
    assert.equal(created.code, 0, created.stderr);
    const keyId = (JSON.parse(created.stdout) as { key: { id: string } }).key.id;
    assert.equal((await cli(dir, ['keys', 'revoke', 'temp'])).code, 0);
    const db = new SQLite(join(dir, 'gatehouse.db'), { readonly: true });
    try {
      const rows = db.prepare(`select kind, actor, target from audit_events where kind like 'key.%' or kind like 'gateway.%' order by seq`).all() as { kind: string; actor: string; target: string | null }[];
      const kinds = rows.map((r) => `${r.kind} ${r.target ?? '-'}`);
      assert.ok(kinds.includes(`key.created key:${keyId}`) && kinds.includes(`key.revoked key:${keyId}`), kinds.join('\n'));
      assert.ok(rows.filter((r) => r.kind === 'gateway.started').length >= 2, 'each start is an event');
      assert.match(rows.find((r) => r.kind === 'key.created')!.actor, /^cli:/);
    } finally {
      db.close();
    }
  });

  test('search by text, group and rule through the admin API and the CLI', async () => {
    const adminKey = await gateway.createKey('auditor', ['admins']);
    const res = await fetch(`${gateway.url}/c/demo/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${mlKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: 'Where do zebras sleep?' }] }),
    });
    assert.equal(res.status, 200);
    const id = res.headers.get('gatehouse-exchange-id')!;
    await res.text();
    const search = async (query: string) => {
      const r = await fetch(`${gateway.adminUrl}/api/sessions?${query}`, { headers: { authorization: `Bearer ${adminKey}` } });
      assert.equal(r.status, 200);
      return ((await r.json()) as { sessions: { id: string }[] }).sessions.map((s) => s.id);
    };
    assert.deepEqual(await search('text=zebras'), [id]);
    assert.deepEqual(await search('text=zebras&group=ml'), [id]);
    assert.deepEqual(await search('text=zebras&group=admins'), []);
    assert.deepEqual(await search('text=zebras&rule=connection-access'), []);
    assert.deepEqual(await search(`text=${encodeURIComponent('"demo reply"')}&limit=1`), [id], 'words of the answer are searchable too');
    const list = await cli(dir, ['sessions', 'list', '--text', 'zebras', '--json']);
    assert.deepEqual((JSON.parse(list.stdout) as { id: string }[]).map((s) => s.id), [id]);
  });

  test('the exported bundle verifies with the documented sha256sum and openssl commands; a changed file fails them', async () => {
    const out = join(dir, 'evidence');
    const exported = await cli(dir, ['audit', 'export', '--out', out, '--group', 'ml']);
    assert.equal(exported.code, 0, exported.stderr);
    const readme = readFileSync(join(out, 'README.md'), 'utf8');
    const commands = ['sha256sum -c manifest.sha256', 'openssl pkeyutl -verify -pubin -inkey public-key.pem -rawin -in manifest.sha256 -sigfile manifest.sig'];
    for (const command of commands) assert.ok(readme.includes(`       ${command}\n`), `README documents: ${command}`);
    const sha = await execFileAsync('sh', ['-c', commands[0]!], { cwd: out });
    assert.match(sha.stdout, /events\.jsonl: OK\n/);
    const sig = await execFileAsync('sh', ['-c', commands[1]!], { cwd: out });
    assert.match(sig.stdout, /Signature Verified Successfully/);

    // The documented jq check of an event's hash, and of an exchange line against its event.
    const firstEvent = JSON.parse(readFileSync(join(out, 'events.jsonl'), 'utf8').split('\n')[0]!) as { hash: string; target: string };
    const jq = await execFileAsync('sh', ['-c', `jq -cS 'del(.hash)' events.jsonl | head -n1 | tr -d '\\n' | sha256sum`], { cwd: out });
    assert.equal(jq.stdout.split(' ')[0], firstEvent.hash);
    const lineHash = (await execFileAsync('sh', ['-c', `head -n1 exchanges.jsonl | tr -d '\\n' | sha256sum`], { cwd: out })).stdout.split(' ')[0];
    const firstExchange = JSON.parse(readFileSync(join(out, 'exchanges.jsonl'), 'utf8').split('\n')[0]!) as { id: string };
    const events = readFileSync(join(out, 'events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { target: string; details: { state?: string } });
    assert.equal(events.filter((e) => e.target === firstExchange.id).at(-1)!.details.state, lineHash);
    assert.match(readFileSync(join(out, 'exchanges.csv'), 'utf8'), /^id,started_at,/);

    appendFileSync(join(out, 'exchanges.csv'), '"forged"\r\n');
    await assert.rejects(execFileAsync('sh', ['-c', commands[0]!], { cwd: out }), /exchanges\.csv: FAILED/);
    writeFileSync(join(out, 'manifest.sha256'), readFileSync(join(out, 'manifest.sha256'), 'utf8').replace(/^./, (c) => (c === '0' ? '1' : '0')));
    await assert.rejects(execFileAsync('sh', ['-c', commands[1]!], { cwd: out }), /Signature Verification Failure/);
  });

  test('an event edited in the SQLite file makes verify fail (exit 3) and name it', async () => {
    const db = new SQLite(join(dir, 'gatehouse.db'));
    let target: { seq: number; id: string };
    try {
      target = db.prepare(`select seq, id from audit_events where kind = 'key.created' order by seq limit 1`).get() as { seq: number; id: string };
      db.prepare(`update audit_events set actor = 'cli:mallory' where seq = ?`).run(target.seq);
    } finally {
      db.close();
    }
    const verify = await cli(dir, ['audit', 'verify']);
    assert.equal(verify.code, 3);
    assert.match(verify.stdout, new RegExp(`^chain BROKEN at event seq ${target.seq} \\(${target.id}\\): event seq ${target.seq} \\(${target.id}\\) was altered`));
  });
});

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
