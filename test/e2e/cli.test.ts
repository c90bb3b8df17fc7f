// The command line as an operator meets it: config validation with paths, exit codes,
// key management, session inspection, and the quick start behind `npm start`.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { createTestPostgresDatabase } from '../helpers/databases.js';
import { gatehouseBin, runCli } from '../helpers/gateway-process.js';
import { makeTestPki } from '../helpers/tls.js';

describe('gatehouse CLI', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-cli-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const writeConfig = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  const validConfig = () =>
    writeConfig(
      'valid.yaml',
      `store:\n  sqlite: { path: ${join(dir, 'cli.db')} }\nconnections:\n  - name: openai\n    type: openai\n    target: https://api.openai.com/v1\n    credential:\n      secret: \${CLI_TEST_OPENAI_KEY}\n    access: { groups: [ml] }\n`,
    );

  test('start with an invalid config exits 1 and names each offending path', async () => {
    const path = writeConfig(
      'bad.yaml',
      `gateway:\n  listen: { host: 127.0.0.1, port: 0 }\nconnections:\n  - name: ok\n    type: http\n    target: http://127.0.0.1:9\n    access: { groups: [a] }\n  - name: broken\n    type: openai\n    target: not a url\n    acess: { groups: [a] }\n`,
    );
    const { code, stderr } = await runCli(['start', '--config', path]);
    assert.equal(code, 1);
    assert.equal(
      stderr,
      `gatehouse: invalid config ${path}:\n` +
        '  connections[1].target: must be an http:// or https:// URL\n' +
        '  connections[1].access: is required\n' +
        '  connections[1]: unknown key "acess"\n',
    );
  });

  test('a listener certificate that is not PEM, or a key that is not its own, is named by config check and start, without a stack trace', async () => {
    const pki = makeTestPki();
    try {
      const notPem = writeConfig('not-pem.pem', 'not a certificate\n');
      const config = (cert: string, key: string) =>
        writeConfig('tls.yaml', `gateway:\n  listen: { host: 127.0.0.1, port: 0 }\n  tls: { cert: "file:${cert}", key: "file:${key}" }\nadmin: { enabled: false }\nstore:\n  sqlite: { path: ${join(dir, 'tls.db')} }\nconnections: []\n`);
      const path = config(notPem, pki.keyPath);
      for (const command of [['config', 'check', path], ['start', '--config', path]]) {
        const { code, stderr } = await runCli(command);
        assert.equal(code, 1);
        assert.match(stderr, new RegExp(`^gatehouse: invalid config ${path}:\\n  gateway\\.tls: cert and key are not a usable PEM certificate chain and its private key: .+\\n$`));
      }
      const mismatched = await runCli(['config', 'check', config(pki.certPath, join(pki.dir, 'ca.key'))]);
      assert.equal(mismatched.code, 1);
      assert.match(mismatched.stderr, /gateway\.tls: cert and key are not a usable PEM certificate chain and its private key: .*key values mismatch/);
      const good = await runCli(['config', 'check', config(pki.certPath, pki.keyPath)]);
      assert.equal(good.code, 0, good.stderr);
      // A target's CA bundle replaces the system CAs: one holding no certificate failed every request.
      const caConfig = (ca: string) =>
        writeConfig('ca.yaml', `store:\n  sqlite: { path: ${join(dir, 'ca.db')} }\nconnections:\n  - { name: s, type: http, target: "https://127.0.0.1:9/", tls: { ca: "file:${ca}" }, access: { groups: [u] } }\n`);
      const badCa = caConfig(notPem);
      const refusedCa = await runCli(['config', 'check', badCa]);
      assert.deepEqual([refusedCa.code, refusedCa.stderr], [1, `gatehouse: invalid config ${badCa}:\n  connections[0].tls.ca: holds no PEM certificate (-----BEGIN CERTIFICATE-----)\n`]);
      assert.equal((await runCli(['config', 'check', caConfig(pki.caPath)])).code, 0);
    } finally {
      rmSync(pki.dir, { recursive: true, force: true });
    }
  });

  test('start on a port in use exits 1 naming the address, without a stack trace', async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const port = (busy.address() as AddressInfo).port;
    try {
      const path = writeConfig('busy.yaml', `gateway:\n  listen: { host: 127.0.0.1, port: ${port} }\nadmin:\n  enabled: false\nstore:\n  sqlite: { path: ${join(dir, 'busy.db')} }\n`);
      const { code, stderr } = await runCli(['start', '--config', path]);
      assert.equal(code, 1);
      assert.equal(stderr, `gatehouse: cannot listen on 127.0.0.1:${port}: the address is in use (another gateway?)\n`);
    } finally {
      await new Promise((resolve) => busy.close(resolve));
    }
  });

  test('start with a store that cannot be opened or reached exits 1 with one line saying why: no stack, no password', async () => {
    const notADir = writeConfig('not-a-dir', 'a file, not a directory\n');
    const sqlite = writeConfig('sqlite-bad.yaml', `gateway:\n  listen: { host: 127.0.0.1, port: 0 }\nadmin:\n  enabled: false\nstore:\n  sqlite: { path: ${join(notADir, 'gh.db')} }\n`);
    const a = await runCli(['start', '--config', sqlite]);
    assert.equal(a.code, 1);
    assert.match(a.stderr, /^gatehouse: cannot open the SQLite store \S+not-a-dir\/gh\.db: \w+.*\n$/);
    const postgres = writeConfig('pg-down.yaml', `gateway:\n  listen: { host: 127.0.0.1, port: 0 }\nadmin:\n  enabled: false\nstore:\n  postgres: { url: '\${CLI_TEST_DB_URL}' }\n`);
    const b = await runCli(['start', '--config', postgres], { ...process.env, CLI_TEST_DB_URL: 'postgres://gh:cli-pw-wallaby@127.0.0.1:1/gh' });
    assert.equal(b.code, 1);
    // It said "store migration failed", sending the operator to the schema, not the network.
    assert.match(b.stderr, /^gatehouse: cannot connect to the PostgreSQL store: connect ECONNREFUSED 127\.0\.0\.1:1\n$/);
    assert.ok(!b.stderr.includes('wallaby'));
  });

  // A store URL asking for TLS (sslmode=verify-full) from a server without it said
  // "store migration failed: The server does not support SSL connections".
  test('start against a PostgreSQL store that refuses TLS under sslmode=verify-full says it cannot connect', async () => {
    // Answers PostgreSQL's SSLRequest with "N", as a server without TLS does.
    const noTls = createServer((socket) => socket.once('data', () => socket.write('N')));
    await new Promise<void>((resolve) => noTls.listen(0, '127.0.0.1', resolve));
    try {
      const postgres = writeConfig('pg-no-tls.yaml', `gateway:\n  listen: { host: 127.0.0.1, port: 0 }\nadmin:\n  enabled: false\nstore:\n  postgres: { url: '\${CLI_TEST_DB_URL}' }\n`);
      const port = (noTls.address() as AddressInfo).port;
      const d = await runCli(['start', '--config', postgres], { ...process.env, CLI_TEST_DB_URL: `postgres://gh:cli-pw-wombat@127.0.0.1:${port}/gh?sslmode=verify-full` });
      assert.equal(d.code, 1);
      assert.equal(d.stderr, 'gatehouse: cannot connect to the PostgreSQL store: The server does not support SSL connections\n');
    } finally {
      await new Promise((resolve) => noTls.close(resolve));
    }
  });

  test('start against a PostgreSQL database that does not exist says it cannot connect, naming the database', async (t) => {
    const db = await createTestPostgresDatabase();
    if ('skip' in db) return t.skip(db.skip);
    await db.drop();
    const name = new URL(db.url).pathname.slice(1);
    const postgres = writeConfig('pg-no-db.yaml', `gateway:\n  listen: { host: 127.0.0.1, port: 0 }\nadmin:\n  enabled: false\nstore:\n  postgres: { url: '\${CLI_TEST_DB_URL}' }\n`);
    const c = await runCli(['start', '--config', postgres], { ...process.env, CLI_TEST_DB_URL: db.url });
    assert.equal(c.code, 1);
    assert.equal(c.stderr, `gatehouse: cannot connect to the PostgreSQL store: database "${name}" does not exist\n`);
  });

  test('config check: valid config exits 0 with a summary; a missing secret names its path', async () => {
    const path = validConfig();
    const ok = await runCli(['config', 'check', path], { ...process.env, CLI_TEST_OPENAI_KEY: 'sk-test' });
    assert.equal(ok.code, 0);
    assert.match(ok.stdout, /valid — 1 connection\(s\): openai \(openai\); store: sqlite /);
    const missing = await runCli(['config', 'check', path], { ...process.env, CLI_TEST_OPENAI_KEY: '' });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /connections\[0\]\.credential\.secret: environment variable CLI_TEST_OPENAI_KEY is empty \(a secret must not be\)/);
  });

  test('unknown commands and flags exit 2 with usage', async () => {
    const unknown = await runCli(['frobnicate']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command "frobnicate"/);
    const flag = await runCli(['keys', 'list', '--bogus']);
    assert.equal(flag.code, 2);
    assert.equal(flag.stderr, 'gatehouse: unknown option --bogus\nusage: gatehouse keys list [--limit N]\n');
  });

  test('keys: create shows the key once, list never shows it, revoke works by name; store commands need no connection secret', async () => {
    const path = validConfig();
    const env = { ...process.env, CLI_TEST_OPENAI_KEY: '' };
    const created = await runCli(['keys', 'create', '--config', path, '--name', 'ci-bot', '--groups', 'ml,eval', '--kind', 'agent', '--expires', '30d'], env);
    assert.equal(created.code, 0, created.stderr);
    const token = created.stdout.trim();
    assert.match(token, /^ghk_[0-9a-z]{16}_[A-Za-z0-9_-]{43}$/);
    assert.match(created.stderr, /shown once/);

    // Not a usage error (exit 2): the command line is right, the store refuses it (exit 1,
    // as for revoking or rotating a key that is not there).
    const duplicate = await runCli(['keys', 'create', '--config', path, '--name', 'ci-bot', '--groups', 'ml'], env);
    assert.equal(duplicate.code, 1);
    assert.match(duplicate.stderr, /a live key named "ci-bot" already exists/);
    const badName = await runCli(['keys', 'create', '--config', path, '--name', 'Bad Name', '--groups', 'ml'], env);
    assert.equal(badName.code, 2);
    const noneToRotate = await runCli(['keys', 'rotate', 'no-such-bot', '--config', path, '--overlap', '1h'], env);
    assert.deepEqual([noneToRotate.code, noneToRotate.stderr], [1, 'gatehouse: no live key named "no-such-bot" to rotate; create one\n']);
    const noGroups = await runCli(['keys', 'create', '--config', path, '--name', 'x'], env);
    assert.equal(noGroups.code, 2);
    const badExpiry = await runCli(['keys', 'create', '--config', path, '--name', 'y', '--groups', 'a', '--expires', 'tomorrow'], env);
    assert.equal(badExpiry.code, 2);
    assert.match(badExpiry.stderr, /--expires "tomorrow" is not a duration/);

    const list = await runCli(['keys', 'list', '--config', path], env);
    assert.equal(list.code, 0);
    assert.match(list.stdout, /ci-bot\s+agent\s+ml,eval\s+active/);
    assert.ok(!list.stdout.includes(token.slice(21)), 'the secret is never listed');

    const revoked = await runCli(['keys', 'revoke', 'ci-bot', '--config', path], env);
    assert.equal(revoked.code, 0);
    assert.match((await runCli(['keys', 'list', '--config', path], env)).stdout, /ci-bot\s+agent\s+ml,eval\s+revoked/);
    const again = await runCli(['keys', 'revoke', 'ci-bot', '--config', path], env);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /no live key with id or name "ci-bot"/);
  });

  test('a key pasted whole (a leaked key) is revoked by its id, and its secret is never echoed', async () => {
    const path = validConfig();
    const env = { ...process.env, CLI_TEST_OPENAI_KEY: '' };
    const token = (await runCli(['keys', 'create', '--config', path, '--name', 'leaky-bot', '--groups', 'ml'], env)).stdout.trim();
    const id = token.slice(4, 20);
    for (const command of [['revoke', 'key'], ['keys', 'revoke']]) {
      const other = (await runCli(['keys', 'create', '--config', path, '--name', `${command[0]}-other`, '--groups', 'ml'], env)).stdout.trim();
      const key = command[0] === 'revoke' ? token : other;
      const revoked = await runCli([...command, key, '--config', path], env);
      assert.equal(revoked.code, 0, revoked.stderr);
      assert.match(revoked.stdout, new RegExp(`revoked key ${key.slice(4, 20)} `));
      const again = await runCli([...command, key, '--config', path], env);
      assert.equal(again.code, 1);
      assert.match(again.stderr, new RegExp(`no live key with id or name "${key.slice(4, 20)}"`));
      assert.ok(!`${revoked.stdout}${revoked.stderr}${again.stderr}`.includes(key.slice(21)), 'the secret is not echoed');
    }
    assert.match((await runCli(['keys', 'list', '--config', path], env)).stdout, new RegExp(`${id}\\s+leaky-bot\\s.*revoked`));
  });

  test('keys revoke NAME during and after a rotation revokes every key of the name, the working one included', async () => {
    const path = validConfig();
    const env = { ...process.env, CLI_TEST_OPENAI_KEY: '' };
    assert.equal((await runCli(['keys', 'create', '--config', path, '--name', 'rot-bot', '--groups', 'ml'], env)).code, 0);
    const rotated = await runCli(['keys', 'rotate', 'rot-bot', '--config', path, '--overlap', '1h', '--json'], env);
    assert.equal(rotated.code, 0, rotated.stderr);
    // A rotation is chained: the new key (key.created) and the old one's shortened life (key.rotated).
    const { key: next, previous } = JSON.parse(rotated.stdout) as { key: { id: string }; previous: { id: string; expiresAt: number } };
    const bundle = join(dir, 'rotation-bundle');
    assert.equal((await runCli(['audit', 'export', '--out', bundle, '--config', path], env)).code, 0);
    const events = readFileSync(join(bundle, 'events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; target: string; details: Record<string, unknown> });
    const rotation = events.filter((e) => e.target === `key:${next.id}` || (e.target === `key:${previous.id}` && e.kind !== 'key.created'));
    assert.deepEqual(rotation.map((e) => [e.kind, e.target, e.details['rotatedFrom'] ?? e.details['replacedBy'], e.details['expiresAt']]), [
      ['key.created', `key:${next.id}`, previous.id, null],
      ['key.rotated', `key:${previous.id}`, next.id, previous.expiresAt],
    ]);
    assert.ok(previous.expiresAt > Date.now());
    const revoked = await runCli(['keys', 'revoke', 'rot-bot', '--config', path], env);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal(revoked.stdout.match(/^revoked key /gm)?.length, 2, revoked.stdout);
    const rows = (await runCli(['keys', 'list', '--config', path], env)).stdout.split('\n').filter((l) => /\srot-bot\s/.test(l));
    assert.equal(rows.length, 2);
    for (const row of rows) assert.match(row, /\srevoked\s/);

    // an overlap that has ended leaves an expired key and a live one: revoking by name
    // must take the live one, not only the expired one
    assert.equal((await runCli(['keys', 'create', '--config', path, '--name', 'rot-bot2', '--groups', 'ml'], env)).code, 0);
    const unclear = await runCli(['keys', 'rotate', 'rot-bot2', '--config', path, '--overlap', 'a day'], env);
    assert.deepEqual([unclear.code, unclear.stderr], [2, 'gatehouse: --overlap "a day" is not a duration (e.g. 24h, 30m, or 0)\n']);
    assert.equal((await runCli(['keys', 'rotate', 'rot-bot2', '--config', path, '--overlap', '0s'], env)).code, 0);
    assert.equal((await runCli(['keys', 'revoke', 'rot-bot2', '--config', path], env)).code, 0);
    const rows2 = (await runCli(['keys', 'list', '--config', path], env)).stdout.split('\n').filter((l) => /\srot-bot2\s/.test(l));
    assert.equal(rows2.length, 2);
    for (const row of rows2) assert.match(row, /\srevoked\s/, row);
  });

  test('keys rotate keeps the key\'s lifetime unless --expires says otherwise, and says what the new key\'s expiry is', async () => {
    const path = validConfig();
    const env = { ...process.env, CLI_TEST_OPENAI_KEY: '' };
    const day = 86_400_000;
    assert.equal((await runCli(['keys', 'create', '--config', path, '--name', 'life-bot', '--groups', 'ml', '--expires', '30d'], env)).code, 0);
    // No --expires: 30 days from the rotation, as the old key was given.
    const before = Date.now();
    const kept = await runCli(['keys', 'rotate', 'life-bot', '--config', path, '--overlap', '0s'], env);
    assert.equal(kept.code, 0, kept.stderr);
    const keptExpiry = /created key \S+ "life-bot" \(expires (\S+): the previous key's lifetime, 30d\); the previous key /.exec(kept.stderr);
    assert.ok(keptExpiry, kept.stderr);
    const expiresAt = Date.parse(keptExpiry[1]!);
    assert.ok(expiresAt >= before + 30 * day - 1000 && expiresAt <= Date.now() + 30 * day + 1000, keptExpiry[1]);
    // --expires: that, from now.
    const shorter = await runCli(['keys', 'rotate', 'life-bot', '--config', path, '--overlap', '0s', '--expires', '7d', '--json'], env);
    assert.equal(shorter.code, 0, shorter.stderr);
    const { key: shorterKey } = JSON.parse(shorter.stdout) as { key: { createdAt: number; expiresAt: number } };
    assert.equal(Math.round((shorterKey.expiresAt - shorterKey.createdAt) / 1000), 7 * 86_400);
    // The new lifetime is the one kept from then on.
    const again = await runCli(['keys', 'rotate', 'life-bot', '--config', path, '--overlap', '0s', '--json'], env);
    const { key: againKey } = JSON.parse(again.stdout) as { key: { createdAt: number; expiresAt: number } };
    assert.equal(againKey.expiresAt - againKey.createdAt, 7 * day);
    // --expires never: a key that does not expire, and it is said so.
    const never = await runCli(['keys', 'rotate', 'life-bot', '--config', path, '--overlap', '0s', '--expires', 'never'], env);
    assert.equal(never.code, 0, never.stderr);
    assert.match(never.stderr, /created key \S+ "life-bot" \(never expires\); the previous key /);
    const listed = (await runCli(['keys', 'list', '--config', path, '--json'], env)).stdout;
    const live = (JSON.parse(listed) as Array<{ name: string; expiresAt: number | null; revokedAt: number | null }>).filter((k) => k.name === 'life-bot' && (k.expiresAt === null || k.expiresAt > Date.now()));
    assert.deepEqual(live.map((k) => k.expiresAt), [null]);
    const unclear = await runCli(['keys', 'rotate', 'life-bot', '--config', path, '--overlap', '0s', '--expires', 'a month'], env);
    assert.deepEqual([unclear.code, unclear.stderr], [2, 'gatehouse: --expires "a month" is not a duration (e.g. 30d, 12h, 90m, or never)\n']);
  });

  test('npm start: the quick start serves the demo connection, prints a working key, and records', { timeout: 30_000 }, async () => {
    const quickstart = await startQuickstart([]);
    try {
      const { key } = quickstart;
      const out = quickstart.output();
      assert.match(out, /DEMO upstream/);
      assert.match(out, /curl -s http:\/\/127\.0\.0\.1:8080\/c\/demo\/chat\/completions/);
      const client = new OpenAI({ baseURL: 'http://127.0.0.1:8080/c/demo', apiKey: key, maxRetries: 0 });
      const answer = await client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'ping' }] });
      assert.equal(answer.choices[0]!.message.content, 'Demo reply to: ping');
      const sessions = (await (await fetch('http://127.0.0.1:8081/api/sessions?limit=1', { headers: { authorization: `Bearer ${key}` } })).json()) as { sessions: Array<{ subject: string; operation: string }> };
      assert.equal(sessions.sessions[0]!.subject, 'key:quickstart-demo');
      assert.equal(sessions.sessions[0]!.operation, 'chat.completions');
    } finally {
      await quickstart.stop();
    }
    assert.equal(quickstart.child.exitCode, 0);
  });
  test('npm start -- --port N: the quick start on N (data plane), N+1 (admin) and N+10 (demo upstream), for a machine where 8080 is taken', { timeout: 30_000 }, async () => {
    const free = (port: number) =>
      new Promise<boolean>((resolve) => {
        const server = createServer().once('error', () => resolve(false));
        server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
      });
    let base = 0;
    for (let i = 0; i < 50 && base === 0; i++) {
      const candidate = 20_000 + Math.floor(Math.random() * 40_000);
      if ((await free(candidate)) && (await free(candidate + 1)) && (await free(candidate + 10))) base = candidate;
    }
    assert.ok(base > 0, 'three free ports');
    const quickstart = await startQuickstart(['--port', String(base)]);
    try {
      const { key } = quickstart;
      const out = quickstart.output();
      assert.match(out, new RegExp(`curl -s http://127\\.0\\.0\\.1:${base}/c/demo/chat/completions`));
      assert.match(out, new RegExp(`upstream\\s+http://127\\.0\\.0\\.1:${base + 10}/v1`));
      const client = new OpenAI({ baseURL: `http://127.0.0.1:${base}/c/demo`, apiKey: key, maxRetries: 0 });
      const answer = await client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'ping' }] });
      assert.equal(answer.choices[0]!.message.content, 'Demo reply to: ping', 'the demo connection reaches the demo upstream on N+10');
      const sessions = await fetch(`http://127.0.0.1:${base + 1}/api/sessions?limit=1`, { headers: { authorization: `Bearer ${key}` } });
      assert.equal(sessions.status, 200);
    } finally {
      await quickstart.stop();
    }
    const refused = await runCli(['quickstart', '--port', 'http']);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /--port must be a port number/);
  });
  test('npm start -- --port N with the admin port N+1 taken: the message names that port, as the README says', { timeout: 30_000 }, async () => {
    // Hold a free port P+1; the quick start on P must say "port P+1 is in use", not "P or P+1".
    const holder = createServer();
    let base = 0;
    for (let i = 0; i < 50 && base === 0; i++) {
      const candidate = 20_000 + Math.floor(Math.random() * 40_000);
      const held = await new Promise<boolean>((resolve) => {
        holder.once('error', () => resolve(false));
        holder.listen(candidate + 1, '127.0.0.1', () => resolve(true));
      });
      if (held) base = candidate;
    }
    assert.ok(base > 0, 'a free port to hold');
    try {
      const refused = await runCli(['quickstart', '--port', String(base)]);
      assert.equal(refused.code, 1);
      assert.equal(refused.stderr, `gatehouse: cannot start the gateway: port ${base + 1} is in use (\`npm start -- --port N\` uses N, N+1 and N+10)\n`);
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
  });
  test('revoke: the revocation names the OS user who made it, as the audit events do, also where $USER is not set', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-revoke-by-'));
    try {
      const path = join(dir, 'gatehouse.yaml');
      writeFileSync(path, `store:\n  sqlite: { path: ${join(dir, 'g.db')} }\nconnections: []\n`);
      // A service, cron job or container often runs without USER: the record said cli:unknown.
      const env = { ...process.env };
      delete env['USER'];
      assert.equal((await runCli(['keys', 'create', '--config', path, '--name', 'gone-bot', '--groups', 'ml'], env)).code, 0);
      assert.equal((await runCli(['keys', 'revoke', 'gone-bot', '--config', path], env)).code, 0);
      assert.equal((await runCli(['revoke', 'subject', 'key:other-bot', '--config', path], env)).code, 0);
      const listed = await runCli(['revoke', 'list', '--json', '--config', path], env);
      const by = (JSON.parse(listed.stdout) as Array<{ revokedBy: string }>).map((r) => r.revokedBy);
      assert.deepEqual(by, [`cli:${userInfo().username}`, `cli:${userInfo().username}`]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** `gatehouse quickstart ARGS` until its banner shows the demo key; `stop` ends it with Ctrl-C. */
async function startQuickstart(args: string[]): Promise<{ child: ChildProcess; key: string; output: () => string; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [gatehouseBin, 'quickstart', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGINT');
    await exited;
  };
  try {
    const key = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no banner:\n${out}`)), 20_000);
      child.stdout.on('data', () => {
        const match = /demo key\s+(ghk_\S+)/.exec(out);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]!);
        }
      });
      child.once('exit', (code) => reject(new Error(`quickstart exited ${code}: ${out}`)));
    });
    return { child, key, output: () => out, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
