// A prompt, a model name, an answer or a text body holding U+0000 is recorded, on a
// PostgreSQL store as on SQLite. PostgreSQL's text cannot hold U+0000, and such an
// exchange failed its recording and so was refused (503 recording_failed) on a
// PostgreSQL store only: a caller could not send a document with a NUL in it. Both
// stores record U+FFFD in its place, and the chain verifies.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { createTestPostgresDatabase } from '../helpers/databases.js';
import { demoConnectionYaml, runCli, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const upstreamKey = 'sk-upstream-nul';

describe('recording U+0000', () => {
  let upstream: DemoUpstream;
  let database: Awaited<ReturnType<typeof createTestPostgresDatabase>>;
  const gateways: GatewayProcess[] = [];
  const dirs: string[] = [];

  before(async () => {
    upstream = await startDemoUpstream({ apiKey: upstreamKey });
    database = await createTestPostgresDatabase();
  });
  after(async () => {
    for (const gateway of gateways) await gateway.stop();
    await upstream?.close();
    if ('drop' in database) await database.drop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  for (const storeKind of ['sqlite', 'postgres'] as const) {
    test(`${storeKind} store: exchanges holding U+0000 pass and are recorded with U+FFFD; the chain verifies`, async (t) => {
      if (storeKind === 'postgres' && 'skip' in database) return t.skip(database.skip);
      const dir = mkdtempSync(join(tmpdir(), `gatehouse-nul-${storeKind}-`));
      dirs.push(dir);
      const env = { ...process.env, UPSTREAM_KEY: upstreamKey, PG_URL: 'url' in database ? database.url : '' };
      const store = storeKind === 'postgres' ? 'store:\n  postgres:\n    url: "${PG_URL}"\n' : undefined;
      const gateway = await startGatewayProcess(demoConnectionYaml(upstream.url), { env, dir, ...(store ? { store } : {}) });
      gateways.push(gateway);
      const key = await gateway.createKey('doc-bot', ['ml']);
      const send = async (body: string, contentType = 'application/json', path = '/chat/completions') => {
        const res = await fetch(`${gateway.url}/c/demo${path}`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': contentType }, body });
        const text = await res.text();
        return { status: res.status, id: res.headers.get('gatehouse-exchange-id')!, text };
      };
      const prompt = await send('{"model":"demo-chat","messages":[{"role":"user","content":"page 1\\u0000page 2"}]}');
      assert.equal(prompt.status, 200, prompt.text);
      assert.match(prompt.text, /page 1\\u0000page 2/, 'the caller gets the answer as the target wrote it');
      const streamed = await send('{"model":"demo\\u0000chat","stream":true,"messages":[{"role":"user","content":"a\\u0000b"}]}');
      assert.equal(streamed.status, 200, streamed.text);
      const plain = await send('raw\u0000bytes', 'text/plain', '/notes');
      assert.notEqual(plain.status, 503, plain.text);

      const run = (args: string[]) => runCli([...args, '--config', gateway.configPath], env);
      const shown = JSON.parse((await run(['sessions', 'show', prompt.id, '--json'])).stdout) as Record<string, unknown>;
      assert.equal(JSON.stringify(shown).includes('page 1\ufffdpage 2'), true, JSON.stringify(shown));
      const shownStream = JSON.parse((await run(['sessions', 'show', streamed.id, '--json'])).stdout) as { model: string };
      assert.equal(shownStream.model, 'demo\ufffdchat');
      const shownPlain = JSON.parse((await run(['sessions', 'show', plain.id, '--json'])).stdout) as Record<string, unknown>;
      assert.equal(JSON.stringify(shownPlain).includes('raw\ufffdbytes'), true, JSON.stringify(shownPlain));
      const verify = await run(['audit', 'verify']);
      assert.equal(verify.code, 0, verify.stdout + verify.stderr);
      assert.match(verify.stdout, /^chain verified: /);
    });
  }
});
