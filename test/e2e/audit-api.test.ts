// The audit admin API with the real gatehouse process: replay as a timeline, re-execution
// under the caller's identity, raw content sealed and revealed to a reveal group, sinks.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import SQLite from 'better-sqlite3';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { demoConnectionYaml, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { upstreamKey, env } from '../helpers/audit-e2e.js';

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
    // Times count from the exchange's start, and the upstream waits 20 ms before each of at
    // least four frames: the last frame cannot be recorded earlier, however late the
    // gateway read the first ones (a span between frames would shrink on a stalled machine).
    assert.ok(timeline.at(-1)!.atMs >= 60, `the upstream's 20 ms gaps are kept in the times (last frame at ${timeline.at(-1)!.atMs} ms)`);
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
