// A refused reveal of raw content is an audit event, on SQLite and PostgreSQL, through the
// real gateway process: who tried (or null when the credential was not known), which
// exchange, why refused; never the credential. `audit verify` passes over it and an
// export, filtered to the exchange or not, carries it.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { createTestPostgresDatabase } from '../helpers/databases.js';
import { demoConnectionYaml, runCli, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const upstreamKey = 'sk-upstream-reveal';
const rawKey = 'b'.repeat(64);
const raw = 'audit:\n  raw: { enabled: true, key: "${RAW_KEY}", revealGroups: [auditors] }\n';

interface Event { kind: string; actor: string | null; target: string | null; details: { code?: string; status?: number; reason?: string; rule?: string; groups?: string[] } }

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe(`refused reveals are audit events (${dialect})`, () => {
    let upstream: DemoUpstream;
    let gateway: GatewayProcess | undefined;
    let database: Awaited<ReturnType<typeof createTestPostgresDatabase>> | undefined;
    let dir: string;
    let env: NodeJS.ProcessEnv;

    before(async () => {
      upstream = await startDemoUpstream({ apiKey: upstreamKey });
      dir = mkdtempSync(join(tmpdir(), `gatehouse-reveal-${dialect}-`));
      env = { ...process.env, UPSTREAM_KEY: upstreamKey, RAW_KEY: rawKey };
      if (dialect === 'postgres') {
        database = await createTestPostgresDatabase();
        if ('skip' in database) return;
        env.PG_URL = database.url;
      }
      gateway = await startGatewayProcess(demoConnectionYaml(upstream.url, raw), { env, dir, ...(dialect === 'postgres' ? { store: 'store:\n  postgres:\n    url: "${PG_URL}"\n' } : {}) });
    });
    after(async () => {
      await gateway?.stop();
      await upstream?.close();
      if (database && 'drop' in database) await database.drop();
      rmSync(dir, { recursive: true, force: true });
    });

    test('each refusal names who tried, which exchange and why; verify passes and the export carries them', { timeout: 60_000 }, async (t) => {
      if (!gateway) return t.skip('no PostgreSQL');
      const mlKey = await gateway.createKey('ml-bot', ['ml']);
      const adminKey = await gateway.createKey('admin', ['admins', 'ml']);
      const auditorKey = await gateway.createKey('auditor', ['admins', 'auditors']);
      const chat = (key: string) =>
        fetch(`${gateway!.url}/c/demo/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: 'the raw prompt' }] }),
        });
      const kept = await chat(mlKey);
      await kept.text();
      const id = kept.headers.get('gatehouse-exchange-id')!;
      // Refused before its body was read: no raw content kept.
      const unknownKey = 'ghk_notakeyatall0123456789';
      const bare = await chat(unknownKey);
      await bare.text();
      const bareId = bare.headers.get('gatehouse-exchange-id')!;

      const reveal = async (path: string, key: string) => {
        const res = await fetch(`${gateway!.adminUrl}/api/sessions/${path}/reveal`, { method: 'POST', headers: { authorization: `Bearer ${key}` } });
        return { status: res.status, body: (await res.json()) as { error?: { code: string } } };
      };
      assert.deepEqual((await reveal(id, adminKey)).status, 403, 'an admin outside revealGroups');
      assert.deepEqual((await reveal(id, mlKey)).status, 403, 'not an admin');
      assert.deepEqual((await reveal(id, unknownKey)).status, 401, 'an unknown key');
      assert.deepEqual((await reveal(bareId, auditorKey)).body.error?.code, 'reveal_unavailable', 'no raw content kept');
      assert.deepEqual((await reveal('ex_nosuchexchange', auditorKey)).status, 404);
      assert.deepEqual((await reveal('ex_%E0%A4%A', auditorKey)).status, 404, 'not percent-encoding');
      assert.equal((await reveal(id, auditorKey)).status, 200);

      const cli = (args: string[]) => runCli([...args, '--config', gateway!.configPath], env);
      const verify = await cli(['audit', 'verify']);
      assert.equal(verify.code, 0, verify.stdout + verify.stderr);

      const all = join(dir, 'all');
      assert.equal((await cli(['audit', 'export', '--out', all])).code, 0);
      const eventsText = readFileSync(join(all, 'events.jsonl'), 'utf8');
      assert.ok(!eventsText.includes(unknownKey) && !eventsText.includes('the raw prompt'), 'no credential, no raw content in the events');
      const refused = eventsText.trim().split('\n').map((l) => JSON.parse(l) as Event).filter((e) => e.kind === 'exchange.reveal_refused');
      const summary = refused.map((e) => [e.actor, e.target, e.details.code, e.details.rule ?? null]);
      assert.deepEqual(summary, [
        ['key:admin', id, 'access_denied', 'audit-reveal-groups'],
        ['key:ml-bot', id, 'access_denied', 'admin-groups'],
        [null, id, 'invalid_credential', null],
        ['key:auditor', bareId, 'reveal_unavailable', null],
        ['key:auditor', 'ex_nosuchexchange', 'route_not_found', null],
        ['key:auditor', 'ex_%E0%A4%A', 'route_not_found', null],
      ]);
      assert.equal(refused[0]!.details.reason, 'key:admin is not in a group allowed to reveal raw content.');
      assert.deepEqual(refused[0]!.details.groups, ['admins', 'ml']);
      assert.equal(refused[3]!.details.reason, `Session "${bareId}" has no raw content recorded.`);

      // Filtered to the exchange, the bundle still holds every attempt on it.
      const one = join(dir, 'one');
      assert.equal((await cli(['audit', 'export', '--out', one, '--subject', 'key:ml-bot'])).code, 0);
      const kinds = readFileSync(join(one, 'events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Event).filter((e) => e.target === id).map((e) => e.kind);
      assert.deepEqual(kinds.filter((k) => k.startsWith('exchange.reveal')), ['exchange.reveal_refused', 'exchange.reveal_refused', 'exchange.reveal_refused', 'exchange.revealed']);
    });
  });
}
