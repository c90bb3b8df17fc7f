// Audit end to end, with the real gatehouse process: a gateway killed with SIGKILL in
// the middle of a streamed answer leaves a record marked incomplete holding what was
// delivered, and the chain still verifies; tampering with the database directly (SQLite
// file, PostgreSQL) makes `gatehouse audit verify` fail and name the event; an exported
// bundle verifies with exactly the commands its README documents.

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { openAuditTrail } from '../../src/audit/index.js';
import { loadConfig } from '../../src/config/index.js';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { openStore } from '../../src/store/index.js';
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

    // With the gateway still down, the CLI applies what the dead gateway left in its record journal.
    const whileDown = await cli(dir, ['sessions', 'show', id, '--json']);
    assert.equal(whileDown.code, 0, whileDown.stderr);
    const downRecord = JSON.parse(whileDown.stdout) as { complete: boolean; response: { text: string | null } };
    assert.equal(downRecord.complete, false);
    assert.ok(downRecord.response.text?.startsWith('Demo reply to: word0'), String(downRecord.response.text));

    gateway = await startGatewayProcess(demoConnectionYaml(upstream.url), { env, dir });

    const show = await cli(dir, ['sessions', 'show', id, '--json']);
    assert.equal(show.code, 0, show.stderr);
    const record = JSON.parse(show.stdout) as { complete: boolean; endedAt: string | null; response: { text: string | null }; bytesOut: number; chunkTimings: [number, number][]; status: number | null; ttfbMs: number | null; bytesIn: number };
    assert.equal(record.complete, false);
    assert.equal(record.endedAt, null);
    // What the client had already seen: the status, the first byte, the request it sent.
    assert.deepEqual([record.status, typeof record.ttfbMs, record.bytesIn > longPrompt.length], [200, 'number', true]);
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

  test('a misspelt decision, an unreadable or wrong --public-key, or a limit on an export, is an error that says so, not an empty answer, a stack or a partial export', async () => {
    const adminKey = await gateway.createKey('auditor-2', ['admins']);
    const r = await fetch(`${gateway.adminUrl}/api/sessions?decision=DENY`, { headers: { authorization: `Bearer ${adminKey}` } });
    assert.equal(r.status, 400);
    assert.deepEqual(await r.json(), { error: { code: 'invalid_query', message: 'Query parameter "decision" must be one of allow, deny, require_approval.' } });
    // Every 400 the API gives is in its OpenAPI document.
    const verify = await fetch(`${gateway.adminUrl}/api/audit/verify?from=x`, { headers: { authorization: `Bearer ${adminKey}` } });
    assert.equal(verify.status, 400);
    // A start that names no checkpoint is a mistake in the request, not a broken chain (it said "chain BROKEN", exit 3).
    const noCheckpoint = await fetch(`${gateway.adminUrl}/api/audit/verify?from=99999`, { headers: { authorization: `Bearer ${adminKey}` } });
    assert.equal(noCheckpoint.status, 400);
    assert.match(((await noCheckpoint.json()) as { error: { message: string } }).error.message, /^Query parameter "from": no checkpoint at seq 99999 \(/);
    const noCheckpointCli = await cli(dir, ['audit', 'verify', '--from', '99999']);
    assert.equal(noCheckpointCli.code, 2);
    assert.match(noCheckpointCli.stderr, /^gatehouse: --from 99999: no checkpoint at seq 99999 \((the newest are at seq [\d, ]+|there are no checkpoints yet); one deleted is found by a verification without it\)\n$/);
    const openapi = (await (await fetch(`${gateway.adminUrl}/api/openapi.json`)).json()) as { paths: Record<string, { get: { responses: Record<string, unknown> } }> };
    for (const path of ['/api/sessions', '/api/audit/verify']) assert.ok(openapi.paths[path]!.get.responses['400'], `${path} documents its 400`);
    const list = await cli(dir, ['sessions', 'list', '--decision', 'denied']);
    assert.deepEqual([list.code, list.stderr.trim()], [2, 'gatehouse: --decision must be one of allow, deny, require_approval']);
    // A limit outside 1–500 (the OpenAPI range) is refused, not clamped; a time must be ISO 8601 (basic format too).
    const query = (q: string) => fetch(`${gateway.adminUrl}/api/sessions?${q}`, { headers: { authorization: `Bearer ${adminKey}` } });
    for (const limit of ['0', '501', '2.5']) {
      const refused = await query(`limit=${limit}`);
      assert.equal(refused.status, 400, `limit=${limit}`);
      assert.deepEqual(await refused.json(), { error: { code: 'invalid_query', message: 'Query parameter "limit" must be an integer from 1 to 500.' } });
    }
    assert.equal((await query('limit=500')).status, 200);
    const vague = await query(`since=${encodeURIComponent('Nov 23 2026')}`);
    assert.equal(vague.status, 400);
    assert.equal(((await vague.json()) as { error: { code: string } }).error.code, 'invalid_query');
    assert.equal((await query('since=20260101T000000Z')).status, 200);
    // A day the month does not have is refused, not read as March 2.
    assert.equal((await query('until=2026-02-30T00:00:00Z')).status, 400);
    // Swapped bounds are a mistake to say, not an empty answer ("nothing happened").
    const swapped = await query('since=2026-11-24T00:00:00Z&until=2026-11-01T00:00:00Z');
    assert.equal(swapped.status, 400);
    assert.deepEqual(await swapped.json(), { error: { code: 'invalid_query', message: 'Query parameter "since" (2026-11-24T00:00:00Z) is after "until" (2026-11-01T00:00:00Z): no time is in that range.' } });
    const swappedCli = await cli(dir, ['sessions', 'list', '--since', '2026-11-24T00:00:00Z', '--until', '2026-11-01T00:00:00Z']);
    assert.deepEqual([swappedCli.code, swappedCli.stderr], [2, 'gatehouse: --since 2026-11-24T00:00:00Z is after --until 2026-11-01T00:00:00Z: no time is in that range\n']);
    // A filter given twice was read as its first value, silently: `text=a&text=b` looked like an AND.
    const twice = await query('text=zebras&text=lions');
    assert.equal(twice.status, 400);
    assert.deepEqual(await twice.json(), { error: { code: 'invalid_query', message: 'Query parameter "text" is given 2 times; give each parameter once.' } });
    const vagueCli = await cli(dir, ['sessions', 'list', '--since', 'Nov 23 2026']);
    assert.deepEqual([vagueCli.code, vagueCli.stderr.trim()], [2, 'gatehouse: --since must be an ISO 8601 time, e.g. 2026-11-23T10:00:00Z']);
    const missing = await cli(dir, ['audit', 'verify', '--public-key', join(dir, 'no-such.pem')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^gatehouse: --public-key \S+no-such\.pem: cannot read it \(ENOENT\)\n$/);
    const notKey = await cli(dir, ['audit', 'verify', '--public-key', join(dir, 'gatehouse.yaml')]);
    assert.equal(notKey.code, 2);
    assert.match(notKey.stderr, /^gatehouse: --public-key \S+gatehouse\.yaml: not a PEM public key/);
    const limited = await cli(dir, ['audit', 'export', '--out', join(dir, 'some.csv'), '--limit', '1']);
    assert.deepEqual([limited.code, limited.stderr.trim()], [2, 'gatehouse: audit export takes no --limit: it exports every exchange the filters match']);
  });

  test('verify without the public key does not call its checkpoints signed', async () => {
    // An auditor's copy of the config, without the key file beside the store.
    const elsewhere = join(dir, 'auditor.yaml');
    writeFileSync(elsewhere, `${readFileSync(join(dir, 'gatehouse.yaml'), 'utf8')}audit:\n  keyFile: ${join(dir, 'no-key-here.pem')}\n`);
    const verify = await runCli(['audit', 'verify', '--config', elsewhere], env);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    assert.match(verify.stdout, /^chain verified: events 1\.\.\d+ \(\d+ events\), \d+ checkpoints whose signatures were NOT checked, \d+ exchange records\nwarning: no public key: checkpoint signatures were not checked \(.*--public-key FILE.*\)\n$/);
    const withKey = await runCli(['audit', 'verify', '--config', elsewhere, '--public-key', join(dir, 'audit-signing-key.pem')], env);
    assert.match(withKey.stdout, /^chain verified: events 1\.\.\d+ \(\d+ events\), \d+ signed checkpoints, \d+ exchange records\n$/);
  });

  test('an audit key file readable by group or others is refused with a message, not a stack', async () => {
    const loose = join(dir, 'loose-audit-key.pem');
    writeFileSync(loose, readFileSync(join(dir, 'audit-signing-key.pem')), { mode: 0o644 });
    chmodSync(loose, 0o644);
    const config = join(dir, 'loose.yaml');
    writeFileSync(config, `${readFileSync(join(dir, 'gatehouse.yaml'), 'utf8')}audit:\n  keyFile: ${loose}\n`);
    const verify = await runCli(['audit', 'verify', '--config', config], env);
    assert.equal(verify.code, 1);
    assert.equal(verify.stderr, `gatehouse: audit signing key ${loose} is readable by group or others (mode 644): whoever can read it can sign checkpoints; chmod 600 it\n`);
  });

  test('the exported bundle verifies with the documented sha256sum and openssl commands; a changed file fails them', async () => {
    const res = await fetch(`${gateway.url}/c/demo/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${mlKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: 'evidence please' }] }),
    });
    await res.text();
    // A re-execution chains an event about the original without a state: the documented
    // check reads the state its events recorded last, not its last event.
    const adminKey = await gateway.createKey('evidence-admin', ['admins', 'ml']);
    const again = await fetch(`${gateway.adminUrl}/api/sessions/${res.headers.get('gatehouse-exchange-id')}/reexecute`, { method: 'POST', headers: { authorization: `Bearer ${adminKey}` } });
    assert.equal(again.status, 200, await again.text());
    const out = join(dir, 'evidence');
    const exported = await cli(dir, ['audit', 'export', '--out', out, '--text', 'evidence please']);
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
    const events = readFileSync(join(out, 'events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; target: string; details: { state?: string } });
    assert.equal(events.filter((e) => e.target === firstExchange.id).at(-1)!.kind, 'exchange.reexecuted');
    const stateCommand = `jq -r --arg id "$(head -n1 exchanges.jsonl | jq -r .id)" 'select(.target == $id and .details.state != null) | .details.state' events.jsonl | tail -n1`;
    assert.ok(readme.includes(`       ${stateCommand}\n`), 'README documents the state check');
    assert.ok(readFileSync(new URL('../../docs/audit.md', import.meta.url), 'utf8').includes(`${stateCommand}\n`), 'docs/audit.md documents the state check');
    assert.equal((await execFileAsync('sh', ['-c', stateCommand], { cwd: out })).stdout.trim(), lineHash);
    assert.match(readFileSync(join(out, 'exchanges.csv'), 'utf8'), /^id,started_at,/);

    appendFileSync(join(out, 'exchanges.csv'), '"forged"\r\n');
    const output = (pattern: RegExp) => (error: unknown) => pattern.test(`${(error as { stdout?: string }).stdout ?? ''}${(error as Error).message}`);
    await assert.rejects(execFileAsync('sh', ['-c', commands[0]!], { cwd: out }), output(/exchanges\.csv: FAILED/));
    writeFileSync(join(out, 'manifest.sha256'), readFileSync(join(out, 'manifest.sha256'), 'utf8').replace(/^./, (c) => (c === '0' ? '1' : '0')));
    await assert.rejects(execFileAsync('sh', ['-c', commands[1]!], { cwd: out }), output(/Signature Verification Failure/));
  });

  test('security: an export holds prompts and answers, so the bundle and the CSV are created readable by their owner only, whatever the umask', async () => {
    const res = await fetch(`${gateway.url}/c/demo/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${mlKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: 'payroll for Zoë, "Q3", 東京' }] }),
    });
    await res.text();
    const out = join(dir, 'private', 'bundle');
    const csv = join(dir, 'private-export.csv');
    assert.equal((await cli(dir, ['audit', 'export', '--out', out, '--text', 'payroll'])).code, 0);
    assert.equal((await cli(dir, ['audit', 'export', '--out', csv, '--text', 'payroll'])).code, 0);
    assert.match(readFileSync(csv, 'utf8'), /payroll for Zoë, ""Q3"", 東京/);
    const mode = (path: string) => (statSync(path).mode & 0o777).toString(8);
    assert.equal(mode(out), '700');
    assert.equal(mode(join(dir, 'private')), '700');
    const files = readdirSync(out);
    assert.equal(files.length, 8);
    for (const file of files) assert.equal(mode(join(out, file)), '600', file);
    assert.equal(mode(csv), '600');
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

describe('audit admin API: replay, re-execution, reveal, sinks', () => {
  let upstream: DemoUpstream;
  let gateway: GatewayProcess;
  let webhook: import('node:http').Server;
  const received: { body: string; signature: string | undefined }[] = [];
  let mlKey: string;
  let adminKey: string;
  let auditorKey: string;
  let dir: string;
  const rawKey = 'a'.repeat(64);
  const hookSecret = 'hook-secret-value';

  before(async () => {
    const { createServer } = await import('node:http');
    webhook = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        received.push({ body, signature: req.headers['gatehouse-signature'] as string | undefined });
        res.end();
      });
    });
    await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
    const hookUrl = `http://127.0.0.1:${(webhook.address() as import('node:net').AddressInfo).port}/siem`;
    upstream = await startDemoUpstream({ apiKey: upstreamKey, streamDelayMs: 20 });
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-audit-api-'));
    const extra = `audit:
  raw: { enabled: true, key: "\${RAW_KEY}", revealGroups: [auditors] }
  sinks:
    - { type: file, path: ${join(dir, 'siem.jsonl')} }
    - { type: webhook, url: ${hookUrl}, secret: "\${HOOK_SECRET}" }
`;
    gateway = await startGatewayProcess(demoConnectionYaml(upstream.url, extra), { env: { ...env, RAW_KEY: rawKey, HOOK_SECRET: hookSecret }, dir });
    mlKey = await gateway.createKey('ml-bot', ['ml']);
    adminKey = await gateway.createKey('admin', ['admins', 'ml']);
    auditorKey = await gateway.createKey('auditor', ['admins', 'auditors']);
  });
  after(async () => {
    await gateway?.stop();
    await upstream?.close();
    await new Promise((resolve) => webhook?.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  const admin = (path: string, key: string, method = 'GET') => fetch(`${gateway.adminUrl}${path}`, { method, headers: { authorization: `Bearer ${key}` } });

  async function streamed(content: string): Promise<string> {
    const res = await fetch(`${gateway.url}/c/demo/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${mlKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo-chat', stream: true, messages: [{ role: 'user', content }] }),
    });
    assert.equal(res.status, 200);
    await res.text();
    return res.headers.get('gatehouse-exchange-id')!;
  }

  test('replay shows the streamed answer as a timeline of chunks with their timings', async () => {
    const id = await streamed('one two three');
    const res = await admin(`/api/sessions/${id}/replay`, adminKey);
    assert.equal(res.status, 200);
    const { session, timeline } = (await res.json()) as { session: { response: { text: string } }; timeline: { atMs: number; bytes: number; text: string }[] };
    assert.equal(session.response.text, 'Demo reply to: one two three');
    assert.ok(timeline.length >= 6, `one entry per SSE frame, got ${timeline.length}`);
    for (let i = 1; i < timeline.length; i++) assert.ok(timeline[i]!.atMs >= timeline[i - 1]!.atMs, 'times never go back');
    assert.ok(timeline.at(-1)!.atMs - timeline[0]!.atMs >= 60, 'the 20 ms gaps between frames are kept');
    assert.match(timeline.map((t) => t.text).join(''), /data: \[DONE\]/);
  });

  test("re-execution runs as a new, policy-checked, recorded exchange under the caller's identity, linked to the original", async () => {
    const original = await streamed('repeat after me');
    const res = await admin(`/api/sessions/${original}/reexecute`, adminKey, 'POST');
    assert.equal(res.status, 200);
    const result = (await res.json()) as { id: string; reexecutionOf: string; status: number; body: string };
    assert.equal(result.status, 200);
    assert.equal(result.reexecutionOf, original);
    assert.match(result.body, /"content":"repeat "/, "the streamed answer comes back");
    const record = (await (await admin(`/api/sessions/${result.id}`, adminKey)).json()) as { subject: string; reexecutionOf: string; decision: string };
    assert.deepEqual([record.subject, record.reexecutionOf, record.decision], ['key:admin', original, 'allow']);

    // Policy still decides: an admin without the connection's group is refused, and that is recorded too.
    const denied = await admin(`/api/sessions/${original}/reexecute`, auditorKey, 'POST');
    const deniedResult = (await denied.json()) as { id: string; status: number };
    assert.equal(deniedResult.status, 403);
    const deniedRecord = (await (await admin(`/api/sessions/${deniedResult.id}`, adminKey)).json()) as { subject: string; decision: string; reexecutionOf: string };
    assert.deepEqual([deniedRecord.subject, deniedRecord.decision, deniedRecord.reexecutionOf], ['key:auditor', 'deny', original]);
  });

  test('a recording whose request body was not recorded (binary, or refused before it was read) is not re-executed', async () => {
    // A multipart upload is binary: recorded by size only.
    const form = new FormData();
    form.set('model', 'whisper-1');
    form.set('file', new Blob([new Uint8Array(300).fill(7)]), 'audio.bin');
    const binary = await fetch(`${gateway.url}/c/demo/audio/transcriptions`, { method: 'POST', headers: { authorization: `Bearer ${mlKey}` }, body: form });
    await binary.text();
    // Refused before the body was read: an unknown key.
    const refused = await fetch(`${gateway.url}/c/demo/chat/completions`, {
      method: 'POST',
      headers: { authorization: 'Bearer ghk_unknown', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: 'hello' }] }),
    });
    assert.equal(refused.status, 401);
    await refused.text();
    for (const id of [binary.headers.get('gatehouse-exchange-id'), refused.headers.get('gatehouse-exchange-id')]) {
      const res = await admin(`/api/sessions/${id}/reexecute`, adminKey, 'POST');
      const body = (await res.json()) as { error?: { code: string } };
      assert.equal(res.status, 409, `${id}: ${JSON.stringify(body)}`);
      assert.equal(body.error?.code, 'reexecute_unavailable');
    }
  });

  test('a gatehouse-reexecution header sent by a caller links nothing', async () => {
    const res = await fetch(`${gateway.url}/c/demo/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${mlKey}`, 'content-type': 'application/json', 'gatehouse-reexecution': 'forged-token' },
      body: JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] }),
    });
    await res.text();
    const record = (await (await admin(`/api/sessions/${res.headers.get('gatehouse-exchange-id')}`, adminKey)).json()) as { reexecutionOf: string | null };
    assert.equal(record.reexecutionOf, null);
  });

  test('raw content is sealed at rest and revealed only to a reveal group, each reveal an audit event', async () => {
    const id = await streamed('my secret prompt');
    // Records reach the store file in batches; an API read waits for them.
    assert.equal((await admin(`/api/sessions/${id}`, adminKey)).status, 200);
    const db = new SQLite(join(dir, 'gatehouse.db'), { readonly: true });
    try {
      const row = db.prepare('select raw_request, raw_response from exchanges where id = ?').get(id) as { raw_request: string; raw_response: string };
      assert.match(row.raw_request, /^v1\./);
      assert.ok(!row.raw_request.includes('secret prompt') && !row.raw_response.includes('secret prompt'), 'sealed, not plain');
    } finally {
      db.close();
    }
    const refused = await admin(`/api/sessions/${id}/reveal`, adminKey, 'POST');
    assert.equal(refused.status, 403);
    assert.deepEqual(await refused.json(), { error: { code: 'access_denied', message: 'key:admin is not in a group allowed to reveal raw content.' } });
    const revealed = await admin(`/api/sessions/${id}/reveal`, auditorKey, 'POST');
    assert.equal(revealed.status, 200);
    const raw = (await revealed.json()) as { request: string; response: string };
    assert.match(raw.request, /my secret prompt/);
    assert.match(raw.response, /data: \[DONE\]/);
    const check = new SQLite(join(dir, 'gatehouse.db'), { readonly: true });
    try {
      const events = check.prepare(`select actor from audit_events where kind = 'exchange.revealed' and target = ?`).all(id) as { actor: string }[];
      assert.deepEqual(events, [{ actor: 'key:auditor' }]);
    } finally {
      check.close();
    }
  });

  test('sinks receive every event: a JSON-lines file and an HMAC-signed webhook', async () => {
    await streamed('for the siem');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const lines = readFileSync(join(dir, 'siem.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; hash: string });
    assert.ok(lines.some((l) => l.kind === 'gateway.started'));
    assert.ok(lines.some((l) => l.kind === 'exchange.finished'));
    assert.ok(received.length > 0, 'the webhook was called');
    const { createHmac } = await import('node:crypto');
    for (const r of received) assert.equal(r.signature, `sha256=${createHmac('sha256', hookSecret).update(r.body).digest('hex')}`);
    const hookHashes = new Set(received.flatMap((r) => r.body.trim().split('\n').map((l) => (JSON.parse(l) as { hash: string }).hash)));
    for (const line of lines) assert.ok(hookHashes.has(line.hash), `webhook got ${line.kind}`);
  });

  test('CLI commands run during traffic leave the exchange events to the gateway, so its sinks get every one', { timeout: 60_000 }, async () => {
    // A CLI applied the running gateway's journal itself: those events were chained but
    // never sent to the sinks (silent gaps in the SIEM).
    const db = new SQLite(join(dir, 'gatehouse.db'), { readonly: true });
    const after = (db.prepare('select max(seq) as seq from audit_events').get() as { seq: number }).seq;
    const prompt = Array.from({ length: 30 }, (_, i) => `siem${i}`).join(' ');
    const traffic = Promise.all(Array.from({ length: 8 }, () => streamed(prompt)));
    for (let i = 0; i < 4; i++) await gateway.cli(['sessions', 'list', '--limit', '1']);
    await traffic;
    await new Promise((resolve) => setTimeout(resolve, 500));
    const chained = db.prepare(`select seq, kind from audit_events where seq > ? and kind like 'exchange.%' order by seq`).all(after) as { seq: number; kind: string }[];
    db.close();
    const sent = new Set(readFileSync(join(dir, 'siem.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { seq: number }).seq));
    assert.ok(chained.length >= 16, `${chained.length} exchange events`);
    assert.deepEqual(chained.filter((e) => !sent.has(e.seq)), [], 'every exchange event reached the file sink');
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
      const db = new SQLite(join(dir, 'gatehouse.db'), { readonly: true });
      try {
        assert.equal((db.prepare(`select count(*) as n from audit_events where kind = 'audit.exported'`).get() as { n: number }).n, 0);
      } finally {
        db.close();
      }
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
