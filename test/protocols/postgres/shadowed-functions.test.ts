// Security regression: a function created on the database with a built-in's name,
// `create function public.lower(int) … as 'delete from payroll returning 1'`, ran as
// `select lower(1)` through the gateway judged as the built-in (PostgreSQL picks the
// exact-argument-type overload over pg_catalog's): no `unknown-tables`, so a rule
// denying table payroll let it through. The gateway now reads at login which built-in
// names the database's own functions share (its catalog query consumed, never seen by
// the client; cached per connection config for a few seconds), and a function the
// session creates or renames to such a name adds it: calls of those names are
// user-defined functions. A failed catalog query refuses the login.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Duplex } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { ruleSchema } from '../../../src/config/policy-schema.js';
import { compilePolicy } from '../../../src/policy/index.js';
import { dataRow, errorResponse, FrameReader, message, cstring, readyForQuery } from '../../../src/protocols/postgres/codec.js';
import { FrameSource } from '../../../src/protocols/postgres/frame-source.js';
import { clearFunctionCatalog, shadowedBuiltins } from '../../../src/protocols/postgres/function-catalog.js';
import type { UpstreamSession } from '../../../src/protocols/postgres/forward.js';
import { startTestProxy, type TestProxy } from '../../helpers/postgres-proxy.js';

const rules = [
  { name: 'deny-payroll', effect: 'deny', message: 'Payroll is off limits.', match: { operations: ['sql.select'] }, when: [{ fact: 'tables', includes: ['payroll'] }] },
].map((r) => ruleSchema.parse(r));
const proxyOrSkip = await startTestProxy({ policy: () => compilePolicy({ access: [{ connection: 'db', groups: ['dba'] }], rules }) });
const skip = 'skip' in proxyOrSkip ? proxyOrSkip.skip : undefined;

describe('PostgreSQL proxy: built-in names shadowed by functions on the database', { skip }, () => {
  const proxy = proxyOrSkip as TestProxy;
  let direct: pg.Client;

  before(async () => {
    direct = new pg.Client({ connectionString: proxy.directUrl });
    await direct.connect();
    await direct.query(`create table payroll (id int, pay int); insert into payroll values (1, 100), (2, 200);
      create function public.lower(int) returns int language sql as 'delete from payroll returning 1'`);
    clearFunctionCatalog();
  });
  after(async () => {
    await direct.end();
    await proxy.close();
  });

  const payrollRows = async () => Number((await direct.query('select count(*) as n from payroll')).rows[0].n);
  const denied = { code: '42501', message: 'Payroll is off limits. (rule: deny-payroll)' };
  const session = async () => {
    const c = new pg.Client(proxy.clientConfig());
    await c.connect();
    return c;
  };

  test('a call of a name the database shadows is a user-defined function: the payroll rule denies it', async () => {
    const c = await session();
    try {
      // The login's catalog query is not seen: the first answer is this statement's.
      assert.deepEqual((await c.query("select pg_catalog.lower('ABC') as l, upper('x') as u")).rows, [{ l: 'abc', u: 'X' }]);
      await assert.rejects(c.query('select lower(1)'), denied);
      await assert.rejects(c.query('select lower($1::int)', [1]), denied); // extended protocol
      await assert.rejects(c.query("select lower('ABC')"), denied); // which overload runs is the database's choice
      assert.equal(await payrollRows(), 2);
    } finally {
      await c.end();
    }
  });

  test('a function the session creates, or renames, to a built-in name is a user-defined function for the rest of it', async () => {
    const c = await session();
    try {
      assert.deepEqual((await c.query('select upper($1) as u', ['a'])).rows, [{ u: 'A' }]);
      await c.query("create function public.upper(int) returns int language sql as 'delete from payroll returning 1'");
      await assert.rejects(c.query('select upper(1)'), denied);
      await c.query("create function public.wipe2(int) returns int language sql as 'delete from payroll returning 1'");
      await c.query('alter function public.wipe2(int) rename to initcap');
      await assert.rejects(c.query('select initcap(1)'), denied);
      await assert.rejects(c.query("create or replace function public.reverse(int) returns int language sql as 'delete from payroll returning 1'; select reverse(1)"), denied);
      assert.equal(await payrollRows(), 2);
    } finally {
      await c.end();
    }
  });

  test('a function created on the database after a login is seen by logins after the catalog is read again', async () => {
    await direct.query("create function public.btrim(int) returns int language sql as 'delete from payroll returning 1'");
    clearFunctionCatalog(); // what the cache's expiry does after a few seconds
    const c = await session();
    try {
      await assert.rejects(c.query('select btrim(1)'), denied);
      assert.equal(await payrollRows(), 2);
    } finally {
      await c.end();
    }
  });

  test('psql: the session starts as usual and the shadowed call is refused', async () => {
    const out = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const child = spawn('psql', ['-X', '-At', '-h', '127.0.0.1', '-p', String(proxy.port), '-U', 'agent', '-d', proxy.database, '-c', 'select 41 + 1', '-c', 'select lower(1)'], { env: { ...process.env, PGPASSWORD: proxy.token, PGSSLMODE: 'disable' } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d));
      child.stderr.on('data', (d: Buffer) => (stderr += d));
      child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });
    assert.equal(out.stdout, '42\n');
    assert.match(out.stderr, /Payroll is off limits/);
    assert.equal(await payrollRows(), 2);
  });
});

describe('function catalog at login', () => {
  /** An upstream that answers each Query with `answer` and counts the Queries. */
  const fakeUpstream = (answer: Buffer) => {
    const seen = { queries: 0 };
    const reader = new FrameReader(1 << 20);
    const socket: Duplex = new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, done) {
        reader.push(chunk);
        for (let f = reader.next(false); f; f = reader.next(false)) if (f.type === 'Q') (seen.queries++, socket.push(answer));
        done();
      },
    });
    const upstream = { socket, source: new FrameSource(socket, 1 << 20), parameterStatus: [], processId: 1, secretKey: 1, status: 'I', close() {} } satisfies UpstreamSession;
    return { upstream, seen };
  };

  test('keeps the built-in names among the answer, and reuses it for the same config', async () => {
    const rows = ['lower', 'my_function', 'abs'].map((n) => dataRow([Buffer.from(n)]));
    const { upstream, seen } = fakeUpstream(Buffer.concat([...rows, message('C', cstring('SELECT 3')), readyForQuery('I')]));
    assert.deepEqual([...(await shadowedBuiltins(upstream, 'k1', 1000))].sort(), ['abs', 'lower']);
    assert.deepEqual([...(await shadowedBuiltins(upstream, 'k1', 2000))].sort(), ['abs', 'lower']);
    assert.equal(seen.queries, 1);
    await shadowedBuiltins(upstream, 'k1', 1000 + 60_000); // expired: read again
    assert.equal(seen.queries, 2);
  });

  test('an error refuses the login (upstream_failed), and is not cached', async () => {
    const { upstream, seen } = fakeUpstream(Buffer.concat([errorResponse({ severity: 'ERROR', code: '42501', message: 'permission denied for table pg_proc' }), readyForQuery('I')]));
    await assert.rejects(shadowedBuiltins(upstream, 'k2', 1000), { code: 'upstream_failed', detail: /permission denied for table pg_proc/ });
    await assert.rejects(shadowedBuiltins(upstream, 'k2', 1001), { code: 'upstream_failed' });
    assert.equal(seen.queries, 2);
  });
});
