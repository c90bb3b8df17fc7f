// Security regression: code that changes search_path unnamed (a trigger's function
// calling set_config) created by ANOTHER session after this one logged in was missed:
// the login had read the catalog of such code (path-code-catalog.ts) and found none, so
// after `insert into audit_log …` (whose new trigger sets search_path to `secret,
// public`), `select * from accounts` was decided as public.accounts and read
// secret.accounts, past a rule denying secret's tables. Now a session that knows of no
// such code reads the catalog again before a statement that may run code, once its
// answer is older than catalogTtlMs (shared by the sessions of the connection).
// clearPathCodeCatalog() stands for that time having passed.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type pg from 'pg';
import { ruleSchema } from '../../../src/config/policy-schema.js';
import { compilePolicy } from '../../../src/policy/index.js';
import { clearPathCodeCatalog } from '../../../src/protocols/postgres/path-code-catalog.js';
import { startTestProxy, withProxyClients, type TestProxy } from '../../helpers/postgres-proxy.js';

const rules = [{ name: 'deny-secret', effect: 'deny', message: 'Secret tables are off limits.', when: [{ fact: 'tables', includes: ['secret.*'] }] }].map((r) => ruleSchema.parse(r));

const proxyOrSkip = await startTestProxy({ policy: () => compilePolicy({ access: [{ connection: 'db', groups: ['dba'] }], rules }) });
const skip = 'skip' in proxyOrSkip ? proxyOrSkip.skip : undefined;

describe('PostgreSQL proxy: search_path code created by another session after the login', { skip }, () => {
  const proxy = proxyOrSkip as TestProxy;
  let direct: pg.Client;
  let c: pg.Client;
  withProxyClients(proxy, `create schema secret;
    create table accounts (id int); insert into accounts values (1);
    create table cards (id int); insert into cards values (1);
    create table audit_log (id int)`, (clients) => ({ direct, client: c } = clients));
  const secret = { code: '42501', message: 'Secret tables are off limits. (rule: deny-secret)' };

  test("a trigger whose function sets search_path, made elsewhere after the login: the bare name is looked up again after the INSERT, and refused (Query, then Parse/Bind/Execute)", async () => {
    assert.deepEqual((await c.query('select id from accounts')).rows, [{ id: 1 }]);
    assert.deepEqual((await c.query('select id from cards where id > $1', [0])).rows, [{ id: 1 }]);
    await direct.query(`create function log_path() returns trigger language plpgsql as $$ begin perform set_config('search_path', 'secret, public', false); return new; end $$;
      create trigger log_path before insert on audit_log for each row execute function log_path();
      create table secret.accounts (id int); insert into secret.accounts values (42);
      create table secret.cards (id int); insert into secret.cards values (42)`);
    clearPathCodeCatalog(); // the login's answer is older than catalogTtlMs

    await c.query('insert into audit_log values (1)');
    assert.deepEqual((await c.query('show search_path')).rows, [{ search_path: 'secret, public' }]);
    await assert.rejects(c.query('select id from accounts'), secret);
    await c.query('reset search_path');

    await c.query('insert into audit_log values ($1)', [2]);
    await assert.rejects(c.query('select id from cards where id > $1', [0]), secret);
    await c.query('reset search_path');
  });
});
