// Failed authentication is recorded as an event: who was claimed (API key id, or a
// JWT's unverified iss / sub), from where, and why it failed — and no token material
// anywhere in the store.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readdirSync, readFileSync } from 'node:fs';
import SQLite from 'better-sqlite3';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { demoConnectionYaml, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { startTestIssuer, type TestIssuer } from '../helpers/test-issuer.js';

describe('failed authentication is recorded without token material', () => {
  let upstream: DemoUpstream;
  let gateway: GatewayProcess;
  let idp: TestIssuer;
  let untrusted: TestIssuer;

  before(async () => {
    upstream = await startDemoUpstream({ apiKey: 'sk-up' });
    idp = await startTestIssuer();
    untrusted = await startTestIssuer();
    const identity = `identity:\n  oidc:\n    issuers:\n      - { name: corp, issuer: ${idp.issuer}, audience: gatehouse }\n`;
    gateway = await startGatewayProcess(demoConnectionYaml(upstream.url) + identity, { env: { UPSTREAM_KEY: 'sk-up' } });
  });
  after(async () => {
    await gateway?.stop();
    await upstream?.close();
    await idp?.close();
    await untrusted?.close();
  });

  const call = (token: string) =>
    fetch(`${gateway.url}/c/demo/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{"model":"m","messages":[]}' });

  test('each refusal names the claimed identity and the reason; the store holds no token, secret or signature', async () => {
    const key = await gateway.createKey('svc', ['ml']);
    const wrongSecret = `${key.slice(0, -43)}${'Z'.repeat(43)}`;
    const expired = await idp.sign({ sub: 'alice', aud: 'gatehouse', iat: Math.floor(Date.now() / 1000) - 900, exp: Math.floor(Date.now() / 1000) - 600, jti: 'old-1' });
    const foreign = await untrusted.sign({ sub: 'mallory', aud: 'gatehouse' });
    const tokens = [wrongSecret, expired, foreign, 'sk-not-a-gatehouse-key-1234567890'];
    for (const token of tokens) assert.equal((await call(token)).status, 401);
    // The same needles must not be in the record journal either; read it before a CLI read applies (and removes) it.
    const journal = join(gateway.dir, 'gatehouse.db.records');
    const journalText = readdirSync(journal).map((name) => readFileSync(join(journal, name), 'utf8')).join('');
    assert.match(journalText, /invalid_credential/, 'the refusals are in the journal');
    // Records reach the store file in batches; a CLI read applies what is pending.
    await gateway.cli(['sessions', 'list', '--limit', '1']);

    const db = new SQLite(join(gateway.dir, 'gatehouse.db'), { readonly: true });
    try {
      const rows = db.prepare('select subject, client_address, error_code, error_detail from exchanges order by seq').all() as Array<Record<string, string | null>>;
      assert.equal(rows.length, 4);
      const keyId = key.split('_')[1]!;
      assert.deepEqual(rows.map((r) => [r['subject'], r['client_address'], r['error_code']]), [
        [null, '127.0.0.1', 'invalid_credential'],
        [null, '127.0.0.1', 'credential_expired'],
        [null, '127.0.0.1', 'token_issuer_unknown'],
        [null, '127.0.0.1', 'invalid_credential'],
      ]);
      assert.match(rows[0]!['error_detail']!, new RegExp(`wrong secret for key ${keyId}; claimed key id ${keyId}$`));
      assert.match(rows[1]!['error_detail']!, new RegExp(`token expired: exp \\S+Z, \\d+ s before this gateway's clock; clockSkew \\d+ s \\(issuer corp\\); claimed iss="${idp.issuer}" sub="alice" jti="old-1" alg="RS256"$`));
      assert.match(rows[2]!['error_detail']!, new RegExp(`claimed iss="${untrusted.issuer}" sub="mallory" alg="RS256"$`));
      assert.match(rows[3]!['error_detail']!, /claimed an unrecognised credential of 33 characters$/);

      // no token material in any table: whole tokens, API key secrets, JWT signatures
      const needles = [key, key.slice(-43), wrongSecret.slice(-43), ...[expired, foreign].flatMap((t) => [t, t.split('.')[2]!]), 'sk-not-a-gatehouse-key'];
      const tables = (db.prepare("select name from sqlite_master where type = 'table'").all() as Array<{ name: string }>).map((t) => t.name);
      for (const table of tables) {
        const dump = JSON.stringify(db.prepare(`select * from "${table}"`).all());
        for (const needle of needles) assert.ok(!dump.includes(needle), `${table} contains token material`);
      }
      for (const needle of needles) assert.ok(!journalText.includes(needle), 'the record journal contains token material');
    } finally {
      db.close();
    }
  });
});
