// security: a statement prepared in the session (SQL PREPARE, or a named Parse) is
// decided as what it runs each time it runs, not as `sql.execute`. Otherwise what was
// allowed, or approved once, at PREPARE covered every later EXECUTE of it, through any
// policy change since (here: a rule denying deletes on accounts, loaded after the
// PREPARE), and a Bind to a name made by SQL PREPARE was decided as a statement never seen.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { ruleSchema } from '../../../src/config/policy-schema.js';
import { compilePolicy, type DecisionPolicy } from '../../../src/policy/index.js';
import { cstring, int16, int32, message } from '../../../src/protocols/postgres/codec.js';
import { rawLogin } from '../../helpers/pg-raw.js';
import { startTestProxy, type TestProxy } from '../../helpers/postgres-proxy.js';

const access = [{ connection: 'db', groups: ['dba'] }];
const open = compilePolicy({ access });
const strict = compilePolicy({
  access,
  rules: [ruleSchema.parse({ name: 'no-account-deletes', effect: 'deny', message: 'Deleting accounts is not allowed.', when: [{ fact: 'statementClasses', includes: ['delete'] }, { fact: 'tables', includes: ['accounts'] }] })],
});
let current: DecisionPolicy = open;
const switchable: DecisionPolicy = {
  get version() {
    return current.version;
  },
  decide: (exchange) => current.decide(exchange),
};

const proxyOrSkip = await startTestProxy({ policy: () => switchable });
const skip = 'skip' in proxyOrSkip ? proxyOrSkip.skip : undefined;

describe('security: prepared statements are decided as what they run', { skip }, () => {
  const proxy = proxyOrSkip as TestProxy;
  let direct: pg.Client;

  before(async () => {
    direct = new pg.Client({ connectionString: proxy.directUrl });
    await direct.connect();
    await direct.query('create table accounts (id int primary key, balance int); insert into accounts select g, g * 10 from generate_series(1, 6) g');
  });
  after(async () => {
    await direct.end();
    await proxy.close();
  });

  const ids = async () => (await direct.query('select id from accounts order by id')).rows.map((r) => r.id as number);
  const refused = { code: '42501', message: 'Deleting accounts is not allowed. (rule: no-account-deletes)' };

  test('EXECUTE, EXPLAIN ANALYZE EXECUTE and a Bind of a PREPAREd DELETE follow the policy in force when they run', async () => {
    current = open;
    const c = new pg.Client(proxy.clientConfig());
    await c.connect();
    const raw = await rawLogin(proxy.port, 'agent', proxy.database, proxy.token);
    try {
      await c.query('prepare del(int) as delete from accounts where id = $1');
      raw.write(message('Q', cstring('prepare rawdel(int) as delete from accounts where id = $1')));
      await raw.untilReady(1);
      await c.query('execute del(1)'); // allowed while the policy allows it
      assert.deepEqual(await ids(), [2, 3, 4, 5, 6]);

      current = strict;
      await assert.rejects(c.query('execute del(2)'), refused);
      await assert.rejects(c.query('explain analyze execute del(3)'), refused);
      // A Bind to the name SQL PREPARE made (no Parse the gateway saw), then Execute.
      raw.write(message('B', Buffer.concat([cstring(''), cstring('rawdel'), int16(0), int16(1), int32(1), Buffer.from('4'), int16(0)])), message('E', Buffer.concat([cstring(''), int32(0)])), message('S'));
      const frames = await raw.untilReady(1);
      const error = frames.find((f) => f.type === 'E');
      assert.ok(error, `an ErrorResponse: ${frames.map((f) => f.type).join('')}`);
      assert.match(error.body.toString('utf8'), /Deleting accounts is not allowed/);
      assert.deepEqual(await ids(), [2, 3, 4, 5, 6], 'nothing more was deleted');

      const executes = proxy.observed.filter((o) => /^execute del|^explain analyze execute del/.test(o.exchange.facts.text ?? ''));
      assert.deepEqual(executes.map((o) => [o.exchange.operation, o.outcome.errorCode ?? 'ok']), [['sql.delete', 'ok'], ['sql.delete', 'access_denied'], ['sql.delete', 'access_denied']]);
      assert.deepEqual(executes[1]!.exchange.facts.sql?.tables, ['accounts']);
    } finally {
      raw.close();
      await c.end();
    }
  });

  test('after DEALLOCATE the name is unknown again; a name prepared twice is decided as both', async () => {
    current = strict;
    const c = new pg.Client(proxy.clientConfig());
    await c.connect();
    try {
      await c.query('prepare pick(int) as select balance from accounts where id = $1');
      assert.deepEqual((await c.query('execute pick(5)')).rows, [{ balance: 50 }]);
      // The database refuses a second PREPARE of the name (42P05) and keeps the first; the gateway, which may not see every
      // DEALLOCATE (a function's dynamic SQL), decides the name as both from then on.
      current = open;
      await assert.rejects(c.query('prepare pick(int) as delete from accounts where id = $1'), { code: '42P05' });
      current = strict;
      await assert.rejects(c.query('execute pick(5)'), refused);
      await c.query('deallocate pick');
      await c.query('prepare pick(int) as select balance from accounts where id = $1');
      assert.deepEqual((await c.query('execute pick(6)')).rows, [{ balance: 60 }]);
      await c.query('deallocate all');
      await assert.rejects(c.query('execute pick(6)'), { code: '26000' }); // unknown to the database too
    } finally {
      await c.end();
    }
  });
});
