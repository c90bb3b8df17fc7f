// Audit end to end on SQLite, with the real gatehouse process: a gateway killed with
// SIGKILL in the middle of a streamed answer leaves a record marked incomplete holding
// what was delivered, and the chain still verifies; search through the API and the CLI;
// an exported bundle verifies with exactly the commands its README documents; an event
// edited in the SQLite file makes `gatehouse audit verify` fail and name it.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import SQLite from 'better-sqlite3';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { demoConnectionYaml, runCli, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { upstreamKey, env, longPrompt, streamUntil, contentOf, cli } from '../helpers/audit-e2e.js';

const execFileAsync = promisify(execFile);

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
    assert.deepEqual([vagueCli.code, vagueCli.stderr.trim()], [2, 'gatehouse: --since must be an ISO 8601 time (2026-11-23T10:00:00Z) or a duration back from now (30m, 2h, 7d)']);
    // A duration back from now, as a responder types it: everything here is from the last day, nothing from before it.
    const all = JSON.parse((await cli(dir, ['sessions', 'list', '--json'])).stdout) as unknown[];
    const lastDay = JSON.parse((await cli(dir, ['sessions', 'list', '--since', '1d', '--json'])).stdout) as unknown[];
    const beforeIt = JSON.parse((await cli(dir, ['sessions', 'list', '--until', '24h', '--json'])).stdout) as unknown[];
    assert.ok(all.length > 0);
    assert.deepEqual([lastDay.length, beforeIt.length], [all.length, 0]);
    assert.equal((await cli(dir, ['sessions', 'list', '--since', '2'])).code, 2, 'a bare number is no duration: 2 what?');
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
