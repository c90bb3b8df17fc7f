// Policy conditions on the SQL facts (`risky`, `tables`, `statementClasses`) decide real
// statements through the proxy: rules parsed as the config parses them, statements
// inspected by the gateway, simple and extended protocol. And a decision whose
// obligations the relay cannot honour (masking profiles) fails closed.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { ruleSchema } from '../../../src/config/policy-schema.js';
import { compilePolicy } from '../../../src/policy/index.js';
import { startTestProxy, type TestProxy } from '../../helpers/postgres-proxy.js';

const rules = [
  { name: 'deny-unbounded-writes', effect: 'deny', message: 'DELETE or UPDATE without WHERE is not allowed.', when: [{ fact: 'risky', includes: ['delete-without-where', 'update-without-where'] }] },
  { name: 'deny-hr', effect: 'deny', message: 'The hr schema is off limits.', when: [{ fact: 'tables', includes: ['hr.*'] }] },
  { name: 'deny-truncate', effect: 'deny', when: [{ fact: 'statementClasses', includes: ['truncate'] }] },
  { name: 'mask-notes', effect: 'allow', when: [{ fact: 'tables', includes: ['notes'] }], obligations: { mask: ['pii'] } },
].map((r) => ruleSchema.parse(r));

const proxyOrSkip = await startTestProxy({ policy: () => compilePolicy({ access: [{ connection: 'db', groups: ['dba'] }], rules }) });
const skip = 'skip' in proxyOrSkip ? proxyOrSkip.skip : undefined;

describe('PostgreSQL proxy: policy conditions on SQL facts', { skip }, () => {
  const proxy = proxyOrSkip as TestProxy;
  let direct: pg.Client;

  before(async () => {
    direct = new pg.Client({ connectionString: proxy.directUrl });
    await direct.connect();
    await direct.query("create schema hr; create table hr.salaries (id int, pay int); create table accounts (id int, balance int); insert into accounts values (1, 10), (2, 20); create table notes (body text); insert into notes values ('ssn 078-05-1121')");
  });
  after(async () => {
    await direct.end();
    await proxy.close();
  });

  const balances = async () => (await direct.query('select balance from accounts order by id')).rows.map((r) => r.balance as number);

  test('risky: DELETE and UPDATE without WHERE are denied (simple and extended); with WHERE they run', async () => {
    const c = new pg.Client(proxy.clientConfig());
    await c.connect();
    const refused = { code: '42501', message: 'DELETE or UPDATE without WHERE is not allowed. (rule: deny-unbounded-writes)' };
    await assert.rejects(c.query('update accounts set balance = 0'), refused);
    await assert.rejects(c.query('delete from accounts'), refused);
    await assert.rejects(c.query('update accounts set balance = $1', [0]), refused);
    await assert.rejects(c.query('select 1; delete from accounts'), refused);
    assert.deepEqual(await balances(), [10, 20]);
    assert.equal((await c.query('update accounts set balance = $1 where id = $2', [11, 1])).rowCount, 1);
    assert.deepEqual(await balances(), [11, 20]);
    await c.end();
  });

  test('tables and statementClasses: a table glob and a class are denied, others run', async () => {
    const c = new pg.Client(proxy.clientConfig());
    await c.connect();
    await assert.rejects(c.query('select * from hr.salaries'), { code: '42501', message: 'The hr schema is off limits. (rule: deny-hr)' });
    await assert.rejects(c.query('truncate accounts'), { code: '42501', message: /\(rule: deny-truncate\)$/ });
    assert.equal((await c.query('select * from accounts')).rowCount, 2);
    await c.end();
  });

  test('security: a decision asking for masking profiles the connection cannot apply (no masking engine) is refused (0A000), not answered unmasked', async () => {
    const c = new pg.Client(proxy.clientConfig());
    await c.connect();
    const refused = { code: '0A000', message: /^The policy asks to mask the answer with masking profile pii \(obligations\.mask\), which this PostgreSQL connection cannot apply/ };
    await assert.rejects(c.query('select body from notes'), refused);
    await assert.rejects(c.query('select body from notes where body like $1', ['%']), refused);
    assert.equal((await c.query('select * from accounts')).rowCount, 2);
    await c.end();
  });
});
