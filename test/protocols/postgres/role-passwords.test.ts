// Security regression: CREATE / ALTER ROLE … PASSWORD '…' (and the SCRAM verifier psql's
// \password sends) was recorded as sent: the password in the record's request body and
// its full-text-searched text, readable by every auditor. The literal after PASSWORD is
// now '[REDACTED]' in the record (the database gets it as sent); a refused one too.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import type pg from 'pg';
import { redactRolePasswords } from '../../../src/protocols/postgres/role-passwords.js';
import { startTestProxy, withProxyClients, type TestProxy } from '../../helpers/postgres-proxy.js';

const proxyOrSkip = await startTestProxy({});
const skip = 'skip' in proxyOrSkip ? proxyOrSkip.skip : undefined;

test('the literal after PASSWORD is redacted, in every literal form; nothing else is', () => {
  assert.equal(redactRolePasswords("create role x login password 'a''b' valid until 'infinity'"), "create role x login password '[REDACTED]' valid until 'infinity'");
  assert.equal(redactRolePasswords("alter user x with encrypted password E'a\\'b'"), "alter user x with encrypted password '[REDACTED]'");
  assert.equal(redactRolePasswords('alter role x password $p$s3cret$p$'), "alter role x password '[REDACTED]'");
  assert.equal(redactRolePasswords("create role y /* c */ PASSWORD -- c\n U&'z'"), "create role y /* c */ PASSWORD -- c\n '[REDACTED]'");
  const untouched = ["alter role x password null", "select 'password' as p, \"password\" from t -- password 'x'", "comment on role x is 'password ''y'''"];
  for (const text of untouched) assert.equal(redactRolePasswords(text), text);
});

describe('PostgreSQL proxy: role passwords are not recorded', { skip }, () => {
  const proxy = proxyOrSkip as TestProxy;
  let direct: pg.Client;
  let c: pg.Client;
  withProxyClients(proxy, 'select 1', (clients) => ({ direct, client: c } = clients));

  test('CREATE ROLE and ALTER ROLE run with the password, and are recorded without it', async () => {
    const role = `gh_pw_${randomBytes(4).toString('hex')}`;
    const secret = `Sup3r-${randomBytes(6).toString('hex')}`;
    try {
      await c.query(`create role ${role} login password '${secret}'`);
      await c.query(`alter role ${role} with encrypted password '${secret}x'`);
      const stored = await direct.query<{ ok: boolean }>("select rolpassword is not null as ok from pg_authid where rolname = $1", [role]);
      assert.deepEqual(stored.rows, [{ ok: true }], 'the database got the password');
      await c.query('select 1'); // the records above are written by now
      const records = await proxy.store.db.selectFrom('exchanges').select(['request_body', 'prompt_text']).where('operation', '=', 'sql.role').execute();
      assert.equal(records.length, 2);
      for (const r of records) {
        assert.doesNotMatch(`${r.request_body} ${r.prompt_text}`, new RegExp(secret));
        assert.match(r.request_body!, /password '\[REDACTED\]'/);
      }
    } finally {
      await direct.query(`drop role if exists ${role}`);
    }
  });
});
