// Security regression: SQL the gateway cannot see into (DO blocks, routine bodies,
// procedures, user-defined functions, built-ins that run SQL from a string) used to be
// decided on the tables its text names, which is none: a rule denying table `payroll`
// let `DO $$ … DROP TABLE payroll … $$` through, and a rule allowing only `orders`
// was met by `select f() from orders`. Such statements now carry risky `unknown-tables`,
// and a table condition holds in a deny rule and fails in an allow rule for them.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, test } from 'node:test';
import pg from 'pg';
import { ruleSchema } from '../../../src/config/policy-schema.js';
import { compilePolicy } from '../../../src/policy/index.js';
import { startTestProxy, withProxyClients, type TestProxy } from '../../helpers/postgres-proxy.js';

const rules = [
  { name: 'deny-payroll', effect: 'deny', message: 'Payroll is off limits.', when: [{ fact: 'tables', includes: ['payroll', '*.payroll'] }] },
  { name: 'connect', effect: 'allow', match: { operations: ['sql.connect'] } },
  { name: 'orders-only', effect: 'allow', when: [{ fact: 'tables', includes: ['orders'] }] },
  { name: 'approve-files', effect: 'require_approval', when: [{ fact: 'risky', includes: ['server-file'] }] },
].map((r) => ruleSchema.parse(r));

// No connection access: a statement runs only when `orders-only` allows it.
const proxyOrSkip = await startTestProxy({ policy: () => compilePolicy({ access: [], rules }) });
const skip = 'skip' in proxyOrSkip ? proxyOrSkip.skip : undefined;

describe('PostgreSQL proxy: statements whose tables are unknown fail table rules closed', { skip }, () => {
  const proxy = proxyOrSkip as TestProxy;
  let direct: pg.Client;
  let c: pg.Client;

  withProxyClients(proxy, `create table payroll (id int, pay int); insert into payroll values (1, 100), (2, 200);
      create table orders (id int, item text); insert into orders values (1, 'Book');
      create function wipe() returns int language sql as 'delete from payroll returning 1';
      create procedure wipe_proc() language sql as 'delete from payroll';`, (clients) => ({ direct, client: c } = clients));

  const payrollRows = async () => Number((await direct.query('select count(*) as n from payroll')).rows[0].n);
  const denied = { code: '42501', message: 'Payroll is off limits. (rule: deny-payroll)' };

  test('a DO block, a procedure, a function body and SQL in a string are denied by the payroll rule', async () => {
    await assert.rejects(c.query("do $$ begin execute 'delete from payroll'; end $$"), denied);
    await assert.rejects(c.query('call wipe_proc()'), denied);
    await assert.rejects(c.query('select wipe() from orders'), denied);
    await assert.rejects(c.query('select wipe()'), denied);
    await assert.rejects(c.query("select query_to_xml('select * from payroll', true, true, '')"), denied);
    await assert.rejects(c.query("select table_to_xml('payroll', true, true, '') from orders"), denied);
    await assert.rejects(c.query("create function f2() returns void language sql as 'delete from payroll'"), denied);
    await assert.rejects(c.query("create function f3() returns void language plpgsql as $$ begin execute 'drop table payroll'; end $$"), denied);
    await assert.rejects(c.query('prepare p as select wipe()'), denied);
    await assert.rejects(c.query('select wipe() from orders where id = $1', [1]), denied); // extended protocol
    assert.equal(await payrollRows(), 2);
  });

  test('the allow rule for orders still lets ordinary statements on orders through, built-in functions included', async () => {
    assert.deepEqual((await c.query("select id, lower(item) as item, coalesce(item, 'x') as c, now() is not null as t from orders where id = $1", [1])).rows, [{ id: 1, item: 'book', c: 'Book', t: true }]);
    assert.equal((await c.query('select count(*) from orders')).rows[0].count, '1');
  });

  test('functions that read server files carry risky server-file', async () => {
    await assert.rejects(c.query("select pg_stat_file('/etc/hostname') from orders"), { code: '42501', message: /rule: approve-files/ });
  });

  test("reading a server file's content fails table rules closed: a table's data file holds its rows", async () => {
    // Was a leak: only `server-file`, so the payroll rule did not see the table whose
    // data file was read (a rule on risky server-file caught it, a table rule did not).
    await assert.rejects(c.query("select pg_read_binary_file(pg_relation_filepath('payroll')) from orders"), denied);
    await assert.rejects(c.query("select pg_read_file('/etc/hostname') from orders"), denied);
    await assert.rejects(c.query("select lo_import(pg_relation_filepath('payroll')) from orders"), denied);
    await assert.rejects(c.query("copy orders from program 'psql -c \"copy payroll to stdout\"'"), denied);
  });

  test('psql: a DO block is refused with the rule named, and payroll is intact', async () => {
    const out = await new Promise<{ code: number; stderr: string }>((resolve) => {
      const child = spawn('psql', ['-X', '-h', '127.0.0.1', '-p', String(proxy.port), '-U', 'agent', '-d', proxy.database, '-c', "DO $$ BEGIN EXECUTE 'DROP TABLE payroll'; END $$"], { env: { ...process.env, PGPASSWORD: proxy.token, PGSSLMODE: 'disable' } });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d));
      child.on('close', (code) => resolve({ code: code ?? -1, stderr }));
    });
    assert.equal(out.code, 1);
    assert.match(out.stderr, /ERROR: {2}Payroll is off limits\. \(rule: deny-payroll\)/);
    assert.equal(await payrollRows(), 2);
  });
});
