// Security regression: a role's password in a statement was recorded as sent
// (`create role app login password 'Hunter2-Sup3r!'` in prompt_text and request_body,
// so in the search index, exports and CSV), a credential no detector took for one. The
// record keeps the literal after PASSWORD as '[redacted]' (as pgaudit does); the
// database still receives the statement as sent.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import pg from 'pg';
import { withoutPasswords } from '../../../src/protocols/postgres/statement-passwords.js';
import { startTestProxy, type TestProxy } from '../../helpers/postgres-proxy.js';

const proxyOrSkip = await startTestProxy();
const skip = 'skip' in proxyOrSkip ? proxyOrSkip.skip : undefined;

describe('a role password in a statement, as recorded', () => {
  after(() => ('skip' in proxyOrSkip ? undefined : proxyOrSkip.close()));

  test('the literal after PASSWORD is redacted in every form; nothing else changes', () => {
    assert.equal(withoutPasswords("create role app login password 'Hunter2-Sup3r!'"), "create role app login password '[redacted]'");
    assert.equal(withoutPasswords("ALTER USER app WITH ENCRYPTED PASSWORD\n  /* new */ E'it\\'s''x' VALID UNTIL '2030-01-01'"), "ALTER USER app WITH ENCRYPTED PASSWORD\n  /* new */ '[redacted]' VALID UNTIL '2030-01-01'");
    assert.equal(withoutPasswords('alter role app password $pw$S3cr;et$pw$; select 1'), "alter role app password '[redacted]'; select 1");
    assert.equal(withoutPasswords("create user mapping for app server s options (user 'app', password 'pw123456x')"), "create user mapping for app server s options (user 'app', password '[redacted]')");
    for (const unchanged of ["select * from users where password = 'x'", "select 'password ''a''' as \"password\", 'b'", "-- password 'x'\nselect 1", 'alter role app password null']) assert.equal(withoutPasswords(unchanged), unchanged);
  });

  test('through the proxy: the database gets the password, the record does not', { skip }, async () => {
    const proxy = proxyOrSkip as TestProxy;
    const role = `trial_role_${process.pid}`;
    const c = new pg.Client(proxy.clientConfig());
    await c.connect();
    try {
      await c.query(`create role ${role} login password 'Hunter2-Sup3r!'`);
      await c.query(`alter role ${role} password 'Xy9#kLm2Pq'`);
      const direct = new pg.Client({ connectionString: proxy.directUrl });
      await direct.connect();
      try {
        assert.deepEqual((await direct.query('select rolpassword is not null as set from pg_authid where rolname = $1', [role])).rows, [{ set: true }]);
      } finally {
        await direct.query(`drop role if exists ${role}`).catch(() => undefined);
        await direct.end();
      }
    } finally {
      await c.end();
    }
    let rows: { prompt_text: string | null; request_body: string | null }[] = [];
    for (let i = 0; i < 50 && rows.length < 2; i++) {
      rows = await proxy.store.db.selectFrom('exchanges').select(['prompt_text', 'request_body']).where('operation', '=', 'sql.role').execute();
      if (rows.length < 2) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(rows.length, 2);
    const all = JSON.stringify(rows);
    assert.ok(!all.includes('Hunter2') && !all.includes('Xy9#kLm2Pq'), all);
    assert.deepEqual(rows.map((r) => r.prompt_text).sort(), [`alter role ${role} password '[redacted]'`, `create role ${role} login password '[redacted]'`]);
  });
});
