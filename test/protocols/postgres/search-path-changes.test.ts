// Security regression: the session followed `SET search_path` (a bare name it knew is
// looked up again, so a same-named table made since in the new schema counts), but not
// the same change made another way: `select set_config('search_path', 'secret', false)`
// then `select * from accounts` read secret.accounts, made after the session had looked
// `accounts` up, past a rule denying secret's tables. Now set_config of search_path (or
// of a setting not named by a literal), an UPDATE of pg_settings, and code the gateway
// does not see count as a change (search-path.ts), and so does the end of a transaction
// or a ROLLBACK TO that may undo one (SET LOCAL, set_config(…, true)).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type pg from 'pg';
import { ruleSchema } from '../../../src/config/policy-schema.js';
import { compilePolicy } from '../../../src/policy/index.js';
import { startTestProxy, withProxyClients, type TestProxy } from '../../helpers/postgres-proxy.js';

const rules = [{ name: 'deny-secret', effect: 'deny', message: 'Secret tables are off limits.', when: [{ fact: 'tables', includes: ['secret.*'] }] }].map((r) => ruleSchema.parse(r));

const proxyOrSkip = await startTestProxy({ policy: () => compilePolicy({ access: [{ connection: 'db', groups: ['dba'] }], rules }) });
const skip = 'skip' in proxyOrSkip ? proxyOrSkip.skip : undefined;

describe('PostgreSQL proxy: every way of changing search_path is followed', { skip }, () => {
  const proxy = proxyOrSkip as TestProxy;
  let direct: pg.Client;
  let c: pg.Client;
  // Each table exists in public at the login (the session knows its name); secret's twin is made later, elsewhere.
  withProxyClients(proxy, `create schema secret;
    create table accounts (id int); insert into accounts values (1);
    create table cards (id int); insert into cards values (1);
    create table ledger (id int); insert into ledger values (1);
    create table notes (id int); insert into notes values (1)`, (clients) => ({ direct, client: c } = clients));

  const secret = { code: '42501', message: 'Secret tables are off limits. (rule: deny-secret)' };
  /** The session names `table` (learning it is public's), then another session makes secret's twin holding 42. */
  async function twinMadeLater(table: string): Promise<void> {
    assert.deepEqual((await c.query(`select id from ${table}`)).rows, [{ id: 1 }]);
    await direct.query(`create table secret.${table} (id int); insert into secret.${table} values (42)`);
  }

  test('set_config(search_path) by literal, by parameter, and UPDATE pg_settings: the bare name is looked up again', async () => {
    await twinMadeLater('accounts');
    // Another setting's set_config, of the same shape, changes nothing.
    await c.query("select set_config('app.tenant', 'secret', false)");
    assert.deepEqual((await c.query('select id from accounts')).rows, [{ id: 1 }]);
    await c.query("select set_config('search_path', 'secret', false)");
    assert.deepEqual((await c.query('show search_path')).rows, [{ search_path: 'secret' }]);
    await assert.rejects(c.query('select id from accounts'), secret);
    await c.query('reset search_path');

    await twinMadeLater('cards');
    await c.query('select set_config($1, $2, false)', ['search_path', 'secret']); // extended protocol, a parameter
    await assert.rejects(c.query('select id from cards where id > $1', [0]), secret);
    await c.query('reset search_path');

    await twinMadeLater('ledger');
    await c.query("update pg_settings set setting = 'secret' where name = 'search_path'");
    await assert.rejects(c.query('select id from ledger'), secret);
    await c.query('reset search_path');
  });

  test('in one Query, a name after set_config(search_path) is unresolved (fail closed); after another setting\'s it is not', async () => {
    const results = (await c.query("select set_config('app.tenant', '7', false); select id from notes")) as unknown as pg.QueryResult[];
    assert.deepEqual(results[1]!.rows, [{ id: 1 }]);
    await assert.rejects(c.query("select set_config('search_path', 'public', true); select id from notes"), secret);
  });

  test('set_config(…, true) in a transaction, and a path undone by COMMIT or ROLLBACK TO, are followed', async () => {
    await direct.query('create table parcels (id int); insert into parcels values (1); create table crates (id int); insert into crates values (1)');
    await c.query('begin');
    await c.query("select set_config('search_path', 'secret, public', true)");
    // secret has no parcels yet: the look-up finds public's.
    assert.deepEqual((await c.query('select id from parcels')).rows, [{ id: 1 }]);
    await c.query('set local search_path = public');
    assert.deepEqual((await c.query('select id from parcels')).rows, [{ id: 1 }]);
    await c.query('commit');
    // Under the session's path (secret, public) from now on, then public only in a transaction.
    await c.query('set search_path = secret, public');
    await c.query('begin');
    await c.query('set local search_path = public');
    assert.deepEqual((await c.query('select id from parcels')).rows, [{ id: 1 }]);
    await direct.query('create table secret.parcels (id int); insert into secret.parcels values (42)');
    await c.query('commit');
    // The COMMIT put secret back on the path: parcels is secret's now.
    await assert.rejects(c.query('select id from parcels'), secret);

    await c.query('begin');
    await c.query('savepoint a');
    await c.query('set local search_path = public');
    assert.deepEqual((await c.query('select id from crates')).rows, [{ id: 1 }]);
    await direct.query('create table secret.crates (id int); insert into secret.crates values (42)');
    await c.query('rollback to savepoint a');
    await assert.rejects(c.query('select id from crates'), secret);
    await c.query('rollback');
    await c.query('reset search_path');
  });
});
