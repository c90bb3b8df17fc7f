// Security regression: code a statement runs without naming it — a trigger's function, a
// column default calling set_config — changed search_path for the session unseen: after
// `insert into audit_log …` (whose trigger runs set_config('search_path', 'secret,
// public', false)), `select * from accounts` read secret.accounts, made after the session
// had looked `accounts` up, past a rule denying secret's tables. Now the login reads
// whether the database holds such code (path-code-catalog.ts); where it does, every
// statement that may run code counts as a search_path change once decided, and a bare
// name is looked up again when next named. Where it does not, nothing changes (no look-up).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type pg from 'pg';
import { ruleSchema } from '../../../src/config/policy-schema.js';
import { compilePolicy } from '../../../src/policy/index.js';
import { SessionTables } from '../../../src/protocols/postgres/table-catalog.js';
import { startTestProxy, withProxyClients, type TestProxy } from '../../helpers/postgres-proxy.js';

const rules = [{ name: 'deny-secret', effect: 'deny', message: 'Secret tables are off limits.', when: [{ fact: 'tables', includes: ['secret.*'] }] }].map((r) => ruleSchema.parse(r));

const proxyOrSkip = await startTestProxy({ policy: () => compilePolicy({ access: [{ connection: 'db', groups: ['dba'] }], rules }) });
const skip = 'skip' in proxyOrSkip ? proxyOrSkip.skip : undefined;

describe('PostgreSQL proxy: search_path changed by code the statement does not name', { skip }, () => {
  const proxy = proxyOrSkip as TestProxy;
  let direct: pg.Client;
  let c: pg.Client;
  withProxyClients(proxy, `create schema secret;
    create table accounts (id int); insert into accounts values (1);
    create table cards (id int); insert into cards values (1);
    create function log_path() returns trigger language plpgsql as $$ begin perform set_config('search_path', 'secret, public', false); return new; end $$;
    create table audit_log (id int);
    create trigger log_path before insert on audit_log for each row execute function log_path();
    create table visits (id int, note text default pg_catalog.set_config('search_path', 'secret, public', false))`, (clients) => ({ direct, client: c } = clients));

  const secret = { code: '42501', message: 'Secret tables are off limits. (rule: deny-secret)' };
  /** The session names `table` (learning it is public's), then another session makes secret's twin holding 42. */
  async function twinMadeLater(table: string): Promise<void> {
    assert.deepEqual((await c.query(`select id from ${table}`)).rows, [{ id: 1 }]);
    await direct.query(`create table secret.${table} (id int); insert into secret.${table} values (42)`);
  }

  test("a trigger's function: the bare name is looked up again after the INSERT, and refused", async () => {
    await twinMadeLater('accounts');
    await c.query('insert into audit_log values (1)');
    assert.deepEqual((await c.query('show search_path')).rows, [{ search_path: 'secret, public' }]);
    await assert.rejects(c.query('select id from accounts'), secret);
    await c.query('reset search_path');
  });

  test('a column default calling set_config, through the extended protocol: refused', async () => {
    await twinMadeLater('cards');
    await c.query('insert into visits (id) values ($1)', [1]);
    await assert.rejects(c.query('select id from cards where id > $1', [0]), secret);
    await c.query('reset search_path');
  });

  test('without such code a statement is no change: a known name needs no look-up', () => {
    const catalog = new Map([['accounts', ['public.accounts']], ['public.accounts', ['accounts']]]);
    const facts = [{ tables: ['accounts'] }];
    const plain = new SessionTables(catalog, undefined, false);
    plain.ranStatement('insert');
    assert.equal(plain.unknown(facts), undefined);
    const withCode = new SessionTables(catalog, undefined, true);
    withCode.ranStatement('show');
    assert.equal(withCode.unknown(facts), undefined, 'SHOW runs no code');
    withCode.ranStatement('insert');
    assert.deepEqual(withCode.unknown(facts), ['accounts']);
  });
});
