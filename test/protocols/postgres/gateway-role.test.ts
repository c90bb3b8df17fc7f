// Security regression: psql's `\password` (it sends `ALTER USER <current_user> PASSWORD
// '<SCRAM verifier>'`), and any ALTER ROLE … PASSWORD / NOLOGIN / VALID UNTIL /
// CONNECTION LIMIT / RENAME of the role the gateway logs in to the database as, passed as
// an allowed `sql.role` statement: one caller changed the credential every caller's
// session depends on, and locked them all out. Now such a statement is refused, 42501
// naming rule `gateway-credential`, and its record keeps no password; the same change to
// another role runs (as policy allows), with the risky shape `role-login` for policy.
// The proxy logs in upstream as a role of the test's own, so a failure here changes
// nothing but that role.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { startTestProxy, type TestProxy } from '../../helpers/postgres-proxy.js';

const gatewayRole = `gh_gateway_${process.pid}`;
const otherRole = `gh_other_${process.pid}`;
const proxyOrSkip = await startTestProxy({ upstreamUser: gatewayRole });
const skip = 'skip' in proxyOrSkip ? proxyOrSkip.skip : undefined;

describe("changing the gateway's own upstream role through the gateway", { skip }, () => {
  const proxy = proxyOrSkip as TestProxy;
  let direct: pg.Client;
  const rolePassword = async (role: string) => (await direct.query<{ set: boolean }>('select rolpassword is not null as set from pg_authid where rolname = $1', [role])).rows[0]?.set;

  before(async () => {
    direct = new pg.Client({ connectionString: proxy.directUrl });
    await direct.connect();
    await direct.query(`create role ${gatewayRole} login createrole; create role ${otherRole} login`);
  });
  after(async () => {
    await direct.query(`drop role if exists ${otherRole}; drop role if exists ${gatewayRole}`);
    await direct.end();
    await proxy.close();
  });

  /** The recorded statements of class role (prompt text and request body), as the store keeps them. */
  async function roleRecords(count: number): Promise<string> {
    let rows: unknown[] = [];
    for (let i = 0; i < 50 && rows.length < count; i++) {
      rows = await proxy.store.db.selectFrom('exchanges').select(['prompt_text', 'request_body', 'error_code']).where('operation', '=', 'sql.role').execute();
      if (rows.length < count) await new Promise((r) => setTimeout(r, 100));
    }
    return JSON.stringify(rows);
  }

  test("psql's \\password: refused with 42501 and rule gateway-credential; the role keeps its credential; the record keeps no verifier", async () => {
    // Run off the event loop: the proxy answers psql from this process.
    const child = spawn('psql', ['-X', '-v', 'VERBOSITY=verbose', '-h', '127.0.0.1', '-p', String(proxy.port), '-U', 'agent', '-d', proxy.database, '-c', '\\password'], { env: { ...process.env, PGPASSWORD: proxy.token, PGSSLMODE: 'disable' } });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.end('N3w-Secret-pw\nN3w-Secret-pw\n');
    await new Promise((resolve) => child.on('close', resolve));
    assert.match(stderr, /ERROR:\s+42501: The statement changes PASSWORD of role "gh_gateway_\d+", which this gateway logs in to the database as/);
    assert.match(stderr, /gateway-credential/);
    const recorded = await roleRecords(1);
    assert.match(recorded, /access_denied/);
    assert.match(recorded, /PASSWORD '\[redacted\]'/i);
    assert.doesNotMatch(recorded, /SCRAM-SHA-256|N3w-Secret/);
  });

  test('ALTER ROLE of the gateway role (by name, CURRENT_USER, SESSION_USER) changing its login is refused; other changes, and other roles, run', async () => {
    assert.equal(await rolePassword(gatewayRole), false, 'the \\password above changed nothing');
    const client = new pg.Client(proxy.clientConfig());
    await client.connect();
    try {
      for (const sql of [
        `alter role ${gatewayRole} password 'x-Secret-9'`,
        `alter user current_user nologin`,
        `alter role session_user valid until '2000-01-01'`,
        `alter role ${gatewayRole} connection limit 0`,
        `alter role ${gatewayRole} rename to gh_renamed_${process.pid}`,
      ]) {
        await assert.rejects(client.query(sql), (error: pg.DatabaseError) => error.code === '42501' && /gateway logs in to the database as/.test(error.message), sql);
      }
      assert.deepEqual((await direct.query('select rolcanlogin, rolvaliduntil, rolconnlimit from pg_roles where rolname = $1', [gatewayRole])).rows, [{ rolcanlogin: true, rolvaliduntil: null, rolconnlimit: -1 }]);
      // The session goes on; another role's password is the statement's own business.
      await client.query(`alter role ${otherRole} password 'An0ther-pw'`);
      assert.equal(await rolePassword(otherRole), true);
      const other = proxy.observed.find((o) => o.exchange.facts.sql?.risky.includes('role-login') && o.outcome.errorCode === undefined);
      assert.ok(other, 'the other role change ran, with the risky shape role-login');
      assert.doesNotMatch(await roleRecords(7), /An0ther-pw|x-Secret-9/);
    } finally {
      await client.end();
    }
  });

  // ALTER ROLE <the gateway's role> SET … passed: every caller's later sessions became
  // read-only (or got another search_path), by one caller's statement.
  test("ALTER ROLE … SET / RESET of the gateway role, ALTER ROLE ALL … SET, ALTER DATABASE <target> SET are refused; scoped to another database they run", async () => {
    const settings = async () => (await direct.query('select d.datname, s.setconfig from pg_db_role_setting s join pg_roles r on r.oid = s.setrole left join pg_database d on d.oid = s.setdatabase where r.rolname = $1', [gatewayRole])).rows;
    const client = new pg.Client(proxy.clientConfig());
    await client.connect();
    try {
      for (const sql of [
        `alter role ${gatewayRole} set default_transaction_read_only = on`,
        `alter user current_user set search_path = nowhere`,
        `alter role ${gatewayRole} in database ${proxy.database} set statement_timeout = 1`,
        `alter role session_user reset all`,
        `alter role all set default_transaction_read_only = on`,
        `alter database ${proxy.database} set default_transaction_read_only = on`,
      ]) {
        await assert.rejects(client.query(sql), (error: pg.DatabaseError) => error.code === '42501' && /gateway logs in to the database as/.test(error.message), sql);
      }
      assert.deepEqual(await settings(), []);
      // Scoped to another database, the gateway's sessions are untouched: it runs.
      await client.query(`alter role ${gatewayRole} in database postgres set search_path = elsewhere`);
      assert.deepEqual(await settings(), [{ datname: 'postgres', setconfig: ['search_path=elsewhere'] }]);
      await client.query(`alter role ${gatewayRole} in database postgres reset all`);
    } finally {
      await client.end();
    }
  });
});
