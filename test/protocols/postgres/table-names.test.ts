// Security regression: a rule on a table (`tables` conditions) was matched against the
// names as written only, so it was bypassed by another name for the same rows: a
// partition (`orders_eu_1`, a sub-partition of `orders`), an inheritance child
// (`invoices_2023`), the schema-qualified name (`public.payroll` past a rule on
// `payroll`), and a bare name search_path resolves into the rule's schema (`set
// search_path = hr` then `salaries` past a rule on `hr.salaries`). The gateway now reads
// the ancestry and schemas of the database's tables at login (table-catalog.ts) and a
// deny rule, or an allow rule's masking obligations, holds on every name a table may
// stand for, and so does a partition or child the session itself makes (`create table
// ledger_us partition of ledger …` then `insert into ledger_us` past a rule on writes to
// `ledger`). Quoted identifiers are exact: `"Payroll"` is another table than `payroll`.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pg from 'pg';
import { ruleSchema } from '../../../src/config/policy-schema.js';
import { bindMessage, cstring, int32, message, parseNoticeFields, syncMessage } from '../../../src/protocols/postgres/codec.js';
import { compilePolicy } from '../../../src/policy/index.js';
import { rawLogin } from '../../helpers/pg-raw.js';
import { startTestProxy, withProxyClients, type TestProxy } from '../../helpers/postgres-proxy.js';

const rules = [
  { name: 'deny-orders', effect: 'deny', message: 'Orders are off limits.', when: [{ fact: 'tables', includes: ['orders', 'invoices'] }] },
  { name: 'deny-payroll', effect: 'deny', message: 'Payroll is off limits.', when: [{ fact: 'tables', includes: ['payroll'] }] },
  { name: 'deny-hr-salaries', effect: 'deny', message: 'Salaries are off limits.', when: [{ fact: 'tables', includes: ['hr.salaries'] }] },
  { name: 'deny-ledger-writes', effect: 'deny', message: 'The ledger is read-only.', match: { operations: ['sql.insert', 'sql.update', 'sql.delete', 'sql.merge'] }, when: [{ fact: 'tables', includes: ['ledger'] }] },
  { name: 'mask-notes', effect: 'allow', when: [{ fact: 'tables', includes: ['notes'] }], obligations: { mask: ['pii'] } },
].map((r) => ruleSchema.parse(r));

const proxyOrSkip = await startTestProxy({ policy: () => compilePolicy({ access: [{ connection: 'db', groups: ['dba'] }], rules }) });
const skip = 'skip' in proxyOrSkip ? proxyOrSkip.skip : undefined;

describe('PostgreSQL proxy: a table rule holds for every name of its rows', { skip }, () => {
  const proxy = proxyOrSkip as TestProxy;
  let direct: pg.Client;
  let c: pg.Client;

  // The catalog is read at login: the client logs in after the tables exist.
  withProxyClients(proxy, `create table orders (id int, region text) partition by list (region);
      create table orders_eu partition of orders for values in ('eu') partition by range (id);
      create table orders_eu_1 partition of orders_eu for values from (0) to (100);
      insert into orders values (1, 'eu');
      create table invoices (id int); create table invoices_2023 () inherits (invoices); insert into invoices_2023 values (7);
      create table payroll (id int, pay int); insert into payroll values (1, 100);
      create table "Payroll" (id int); insert into "Payroll" values (2);
      create schema hr; create table hr.salaries (id int, pay int); insert into hr.salaries values (1, 200);
      create table notes (body text); create table notes_archive () inherits (notes); insert into notes_archive values ('ssn 078-05-1121');
      create table ledger (id int, region text) partition by list (region);
      create table accounts (id int); insert into accounts values (1);
      create table parcels (id int); insert into parcels values (9)`, (clients) => ({ direct, client: c } = clients));

  const denied = (message: string, rule: string) => ({ code: '42501', message: `${message} (rule: ${rule})` });

  test('partitions, sub-partitions and inheritance children are refused by a rule on their ancestor', async () => {
    const orders = denied('Orders are off limits.', 'deny-orders');
    await assert.rejects(c.query('select * from orders'), orders);
    await assert.rejects(c.query('select * from orders_eu'), orders);
    await assert.rejects(c.query('select * from orders_eu_1'), orders);
    await assert.rejects(c.query('select * from public.orders_eu_1 where id = $1', [1]), orders); // extended protocol
    await assert.rejects(c.query("insert into orders_eu_1 values (2, 'eu')"), orders);
    await assert.rejects(c.query('with x as (select * from orders_eu_1) select count(*) from x'), orders);
    await assert.rejects(c.query('select * from invoices_2023'), orders);
    await assert.rejects(c.query('select * from only invoices'), orders);
    assert.deepEqual((await direct.query('select id from orders')).rows, [{ id: 1 }]);
    assert.deepEqual((await c.query('select id from accounts')).rows, [{ id: 1 }]);
  });

  test("an allow rule's masking holds for an inheritance child of its table (fails closed here: no masking engine)", async () => {
    const masked = { code: '0A000', message: /^The policy asks to mask the answer with masking profile pii \(obligations\.mask\)/ };
    await assert.rejects(c.query('select body from notes'), masked);
    await assert.rejects(c.query('select body from notes_archive'), masked);
  });

  test('a schema-qualified name, and a bare name search_path may resolve into the rule\'s schema, are refused', async () => {
    const payroll = denied('Payroll is off limits.', 'deny-payroll');
    await assert.rejects(c.query('select * from public.payroll'), payroll);
    await assert.rejects(c.query('select * from "public"."payroll"'), payroll);
    await assert.rejects(c.query('select * from PAYROLL'), payroll);
    const salaries = denied('Salaries are off limits.', 'deny-hr-salaries');
    await c.query('set search_path = hr, public');
    await assert.rejects(c.query('select * from salaries'), salaries);
    await assert.rejects(c.query('select pay from salaries where id = $1', [1]), salaries);
    await c.query('reset search_path');
    // A quoted identifier is exact: "Payroll" is another table, which the rule does not name.
    assert.deepEqual((await c.query('select id from "Payroll"')).rows, [{ id: 2 }]);
  });

  test('a partition or child the session makes is its parent\'s from then on', async () => {
    const ledger = denied('The ledger is read-only.', 'deny-ledger-writes');
    await c.query("create table ledger_us partition of ledger for values in ('us')");
    await assert.rejects(c.query("insert into ledger_us values (1, 'us')"), ledger);
    await assert.rejects(c.query('update public.ledger_us set id = 2'), ledger);
    await c.query('create table ledger_x (id int, region text)');
    await c.query("alter table ledger attach partition ledger_x for values in ('x')");
    await assert.rejects(c.query("insert into ledger_x values (1, 'x')"), ledger);
    await assert.rejects(c.query("create table ledger_eu partition of public.ledger for values in ('eu'); insert into ledger_eu values (1, 'eu')"), ledger);
    assert.deepEqual((await direct.query('select count(*)::int as n from ledger')).rows, [{ n: 0 }]);
    // Other sessions know them from the catalog at their login.
    const other = new pg.Client(proxy.clientConfig());
    await other.connect();
    await assert.rejects(other.query("insert into ledger_us values (1, 'us')"), ledger);
    await other.end();
  });

  test('a partition or child another session creates after the login is its parent\'s (looked up when first named)', async () => {
    const orders = denied('Orders are off limits.', 'deny-orders');
    // Named before it exists: the database's own error, and no rule (it is no one's rows yet).
    await assert.rejects(c.query('select * from orders_late'), { code: '42P01' });
    await direct.query(`create table orders_us partition of orders for values in ('us');
      insert into orders values (5, 'us');
      create table invoices_2024 () inherits (invoices);
      create table orders_late partition of orders for values in ('late');
      create table orders_cte partition of orders for values in ('cte');
      create table shipments (id int); insert into shipments values (3)`);
    await assert.rejects(c.query('select * from orders_us'), orders);
    // A CTE of the same name shadows it only inside its own query: the partition outside is looked up.
    await assert.rejects(c.query('select * from (with orders_cte as (select 1 as id) select id from orders_cte) s, orders_cte'), orders);
    await assert.rejects(c.query('select * from public.orders_us where id = $1', [5]), orders); // extended protocol
    await assert.rejects(c.query('select * from invoices_2024'), orders);
    // Found absent before, looked up again: now a partition of orders.
    await assert.rejects(c.query('select * from orders_late'), orders);
    await assert.rejects(c.query('update orders_us set id = 6'), orders);
    // A new table of its own runs, and so do CTE names, which are no relation.
    assert.deepEqual((await c.query('select id from shipments')).rows, [{ id: 3 }]);
    assert.deepEqual((await c.query('with recent as (select 1 as id) select id from recent')).rows, [{ id: 1 }]);
    // A table made in the session and used in the same Query or extended batch.
    const made = (await c.query('create table crates (id int); insert into crates values (4); select id from crates')) as unknown as pg.QueryResult[];
    assert.deepEqual(made.map((r) => r.rows), [[], [], [{ id: 4 }]]);
    assert.deepEqual((await direct.query('select id from orders_us')).rows, [{ id: 5 }]);
  });

  test('a name the gateway cannot look up in the middle of an extended batch is decided as unknown tables (fail closed)', async () => {
    await direct.query("create table orders_mid partition of orders for values in ('mid')");
    const raw = await rawLogin(proxy.port, 'agent', proxy.database, proxy.token);
    try {
      const parse = (sql: string) => message('P', Buffer.concat([cstring(''), cstring(sql), Buffer.from([0, 0])]));
      const execute = message('E', Buffer.concat([cstring(''), int32(0)]));
      // select 1 starts the batch; orders_mid, unknown to the session, comes behind it before any Sync.
      raw.write(parse('select 1'), bindMessage('', ''), execute, parse('select * from orders_mid'), bindMessage('', ''), execute, syncMessage());
      const frames = await raw.untilReady(1);
      const errors = frames.filter((f) => f.type === 'E').map((f) => parseNoticeFields(f.body).get('M'));
      assert.deepEqual(errors, ['Orders are off limits. (rule: deny-orders)']);
      assert.equal(frames.filter((f) => f.type === 'D').length, 1);
      // At the start of the next batch it is looked up, and known as orders' from then on.
      raw.write(parse('select * from orders_mid'), bindMessage('', ''), execute, syncMessage());
      const next = await raw.untilReady(1);
      assert.deepEqual(next.filter((f) => f.type === 'E').map((f) => parseNoticeFields(f.body).get('M')), ['Orders are off limits. (rule: deny-orders)']);
    } finally {
      raw.close();
    }
  });

  test('after SET search_path, a bare name the session knew is looked up again: a same-named partition made since in the new schema is its parent\'s', async () => {
    const orders = denied('Orders are off limits.', 'deny-orders');
    // parcels is public.parcels, known from the login's catalog, no one's partition.
    assert.deepEqual((await c.query('select id from parcels')).rows, [{ id: 9 }]);
    await direct.query("create schema ship; create table ship.parcels partition of orders for values in ('parcels')");
    await c.query('set search_path = ship, public');
    await assert.rejects(c.query('select * from parcels'), orders);
    await assert.rejects(c.query('select * from parcels where id = $1', [9]), orders);
    await c.query('reset search_path');
    // In one Query: the SET comes after the Query's look-up, so the name is unresolved there (fail closed).
    await assert.rejects(c.query('set search_path = ship, public; select * from accounts, parcels'), orders);
    await c.query('reset search_path');
    assert.deepEqual((await c.query('select id from public.parcels')).rows, [{ id: 9 }]);
  });
  test('security: renaming a schema (or dropping it with CASCADE, or DROP OWNED) names none of its tables, so its tables are unknown: a rule on hr.salaries refuses it', async () => {
    // `alter schema hr rename to hr2` then `select * from hr2.salaries` read the rows past
    // a rule on `hr.salaries`: neither statement named that name.
    // Unknown tables hold every deny rule on tables: the first in order names the refusal.
    const refused = { code: '42501', message: /off limits/ };
    await assert.rejects(c.query('alter schema hr rename to hr2'), refused);
    await assert.rejects(c.query('drop schema hr cascade'), refused);
    assert.deepEqual((await direct.query("select nspname from pg_namespace where nspname in ('hr', 'hr2')")).rows, [{ nspname: 'hr' }]);
    // DROP OWNED BY drops the role's relations without naming them either.
    await direct.query(`drop role if exists trial_owner_${process.pid}; create role trial_owner_${process.pid}`);
    try {
      await assert.rejects(c.query(`drop owned by trial_owner_${process.pid}`), refused);
    } finally {
      await direct.query(`drop role trial_owner_${process.pid}`);
    }
    // A schema without CASCADE cannot drop a relation; one that is not renamed is unaffected.
    await c.query('create schema scratch; alter schema scratch owner to current_user; drop schema scratch');
  });
});
