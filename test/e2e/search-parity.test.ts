// Full-text search (`text`) answers the same on SQLite (FTS5) and PostgreSQL (tsvector),
// through the real gateway's admin API and the CLI: words are runs of letters and digits,
// every one required, in any order, case-insensitive; nothing typed is query syntax; a
// query without a word matches nothing. docs/audit.md#search names what still differs.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import SQLite from 'better-sqlite3';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { createTestPostgresDatabase } from '../helpers/databases.js';
import { demoConnectionYaml, runCli, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const upstreamKey = 'sk-upstream-search';
// The demo upstream answers "Demo reply to: <prompt>": every answer has "demo", "reply", "to".
const prompts = {
  mail: 'Contact alice@example.com about the quarterly report',
  release: 'Deploy v1.2.3 of report-2024 from https://x.org/a/b_c',
  accents: 'ÉCOLE naïve 東京タワー',
  longer: 'reporting tools',
} as const;
type Name = keyof typeof prompts;

// query → the prompts it finds, on both stores.
const expected: ReadonlyArray<readonly [string, readonly Name[]]> = [
  ['alice', ['mail']],
  ['ALICE', ['mail']],
  ['alice@example.com', ['mail']],
  ['example.com', ['mail']],
  ['quarterly report', ['mail']],
  ['"report quarterly"', ['mail']],
  ['report', ['mail', 'release']],
  ['report*', ['mail', 'release']],
  ['-report', ['mail', 'release']],
  ['report OR tools', []],
  ['v1.2.3', ['release']],
  ['2024', ['release']],
  ['x.org', ['release']],
  ['b_c', ['release']],
  ['école', ['accents']],
  ['NAÏVE', ['accents']],
  ['東京タワー', ['accents']],
  ['the', ['mail']],
  ['*', []],
  ['"', []],
  ['%', []],
  ['\u0000', []],
  ["'; drop table exchanges; --", []],
  ['a:* & !b | (c', ['release']],
];

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe(`full-text search on ${dialect}`, () => {
    let upstream: DemoUpstream;
    let gateway: GatewayProcess | undefined;
    let database: Awaited<ReturnType<typeof createTestPostgresDatabase>> | undefined;
    let dir: string;
    let env: NodeJS.ProcessEnv;
    let adminKey: string;
    const ids = new Map<string, Name>();

    before(async () => {
      upstream = await startDemoUpstream({ apiKey: upstreamKey });
      dir = mkdtempSync(join(tmpdir(), `gatehouse-search-${dialect}-`));
      env = { ...process.env, UPSTREAM_KEY: upstreamKey };
      if (dialect === 'postgres') {
        database = await createTestPostgresDatabase();
        if ('skip' in database) return;
        env.PG_URL = database.url;
      }
      gateway = await startGatewayProcess(demoConnectionYaml(upstream.url), { env, dir, ...(dialect === 'postgres' ? { store: 'store:\n  postgres:\n    url: "${PG_URL}"\n' } : {}) });
      const mlKey = await gateway.createKey('ml-bot', ['ml']);
      adminKey = await gateway.createKey('admin', ['admins']);
      for (const [name, content] of Object.entries(prompts) as [Name, string][]) {
        const res = await fetch(`${gateway.url}/c/demo/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${mlKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content }] }),
        });
        assert.equal(res.status, 200);
        await res.text();
        ids.set(res.headers.get('gatehouse-exchange-id')!, name);
      }
      // SQLite: wait until the indexer has taken every row (a queued row is matched
      // inside longer words, documented), so the answer is the index's.
      if (dialect === 'sqlite') {
        await fetch(`${gateway.adminUrl}/api/sessions`, { headers: { authorization: `Bearer ${adminKey}` } });
        const db = new SQLite(join(dir, 'gatehouse.db'), { readonly: true });
        try {
          for (let i = 0; i < 100 && (db.prepare('select count(*) as n from exchanges_fts_pending').get() as { n: number }).n > 0; i++) await new Promise((r) => setTimeout(r, 100));
        } finally {
          db.close();
        }
      }
    });
    after(async () => {
      await gateway?.stop();
      await upstream?.close();
      if (database && 'drop' in database) await database.drop();
      rmSync(dir, { recursive: true, force: true });
    });

    const found = (sessions: { id: string }[]) => sessions.map((s) => ids.get(s.id)).filter((n) => n !== undefined).sort();

    test('the admin API answers every documented query as the other store does, never with an error', async (t) => {
      if (!gateway) return t.skip('no PostgreSQL');
      for (const [text, names] of expected) {
        const res = await fetch(`${gateway.adminUrl}/api/sessions?text=${encodeURIComponent(text)}`, { headers: { authorization: `Bearer ${adminKey}` } });
        const body = (await res.json()) as { sessions: { id: string }[] };
        assert.equal(res.status, 200, `${JSON.stringify(text)}: ${JSON.stringify(body)}`);
        assert.deepEqual(found(body.sessions), [...names].sort(), JSON.stringify(text));
      }
    });

    test('diacritics: FTS5 folds them, PostgreSQL keeps them (documented)', async (t) => {
      if (!gateway) return t.skip('no PostgreSQL');
      const res = await fetch(`${gateway.adminUrl}/api/sessions?text=ecole%20naive`, { headers: { authorization: `Bearer ${adminKey}` } });
      const body = (await res.json()) as { sessions: { id: string }[] };
      assert.deepEqual(found(body.sessions), dialect === 'sqlite' ? ['accents'] : []);
    });

    test('the CLI gives the same answers', async (t) => {
      if (!gateway) return t.skip('no PostgreSQL');
      for (const [text, names] of expected.filter(([q]) => ['alice@example.com', '"report quarterly"', 'report*', 'NAÏVE', '*'].includes(q))) {
        const listed = await runCli(['sessions', 'list', '--text', text, '--json', '--config', gateway.configPath], env);
        assert.equal(listed.code, 0, listed.stderr);
        assert.deepEqual(found(JSON.parse(listed.stdout) as { id: string }[]), [...names].sort(), text);
      }
    });
  });
}
