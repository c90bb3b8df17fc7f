// The real porsager `postgres` client (and pg-cursor) through the gateway, as an
// application uses them: pipelined queries on one connection, named statements reused,
// `sql.begin` with a savepoint rolled back, COPY in and out as streams, a cancelled
// pg_sleep, a masked table read back with its types parsed, a refused statement reaching
// the client as a PostgresError, LISTEN/NOTIFY; and pg-cursor reading a masked result in
// batches.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import Cursor from 'pg-cursor';
import postgres from 'postgres';
import { ruleSchema } from '../../../src/config/policy-schema.js';
import { compilePolicy } from '../../../src/policy/index.js';
import { startTestProxy, type TestProxy } from '../../helpers/postgres-proxy.js';

const rules = [{ name: 'deny-truncate', effect: 'deny', message: 'Truncating is not allowed.', when: [{ fact: 'statementClasses', includes: ['truncate'] }] }].map((r) => ruleSchema.parse(r));

const proxyOrSkip = await startTestProxy({
  policy: () => compilePolicy({ access: [{ connection: 'db', groups: ['dba'] }], rules }),
  masking: { columns: new Map([['email', 'redact'], ['ssn', 'partial']]) },
});
const skip = 'skip' in proxyOrSkip ? proxyOrSkip.skip : undefined;

describe('PostgreSQL proxy: the porsager postgres client and pg-cursor', { skip }, () => {
  const proxy = proxyOrSkip as TestProxy;
  let direct: pg.Client;
  let sql: postgres.Sql;

  before(async () => {
    direct = new pg.Client({ connectionString: proxy.directUrl });
    await direct.connect();
    await direct.query(`create table users (id int primary key, email text, ssn text, balance numeric(10,2), born date, seen timestamptz, prefs jsonb);
      insert into users values (1, 'ann@example.com', '078-05-1120', 12.50, '1990-02-03', '2024-05-06 07:08:09+00', '{"theme":"dark"}'),
                               (2, 'bob@example.com', '219-09-9999', 7.25, '1985-11-12', '2024-01-02 03:04:05+00', '{"theme":"light"}');
      create table items (id int, name text);
      create table people (id int, email text);
      insert into people select i, 'user' || i || '@example.com' from generate_series(1, 2500) i`);
    sql = postgres({ host: '127.0.0.1', port: proxy.port, user: 'agent', pass: proxy.token, database: proxy.database, ssl: false, max: 1, onnotice: () => undefined });
  });
  after(async () => {
    await sql?.end({ timeout: 5 });
    await direct?.end();
    await proxy.close();
  });

  test('pipelined queries awaited together on one connection each get their own result', async () => {
    const [a, b, c, d] = await Promise.all([
      sql`select ${1}::int as n`,
      sql`select id from users order by id`,
      sql`select ${'x'}::text || ${'y'}::text as s`,
      sql`select count(*)::int as n from people`,
    ]);
    assert.deepEqual([...a], [{ n: 1 }]);
    assert.deepEqual([...b], [{ id: 1 }, { id: 2 }]);
    assert.deepEqual([...c], [{ s: 'xy' }]);
    assert.deepEqual([...d], [{ n: 2500 }]);
  });

  test('a prepared statement reused with other parameters answers each call', async () => {
    for (const id of [1, 2, 1, 2, 3]) {
      const rows = await sql`select id, email from users where id = ${id}`;
      assert.deepEqual([...rows], id === 3 ? [] : [{ id, email: '[EMAIL]' }]);
    }
  });

  test('sql.begin with a savepoint rolled back keeps the outer writes only', async () => {
    await sql.begin(async (tx) => {
      await tx`insert into items values (1, 'kept')`;
      await tx.savepoint(async (sp) => {
        await sp`insert into items values (2, 'dropped')`;
        throw new Error('roll back the savepoint');
      }).catch((error: Error) => assert.equal(error.message, 'roll back the savepoint'));
      await tx`insert into items values (3, 'kept too')`;
    });
    await assert.rejects(
      sql.begin(async (tx) => {
        await tx`insert into items values (4, 'rolled back')`;
        throw new Error('roll back all');
      }),
      /roll back all/,
    );
    assert.deepEqual((await direct.query('select id from items order by id')).rows, [{ id: 1 }, { id: 3 }]);
  });

  test('COPY in through .writable() and out through .readable(), the copied-out emails masked', async () => {
    await direct.query('delete from items');
    const writable = await sql`copy items (id, name) from stdin`.writable();
    await pipeline(Readable.from(['10\tten\n', '11\televen\n', '12\ttwelve\n']), writable);
    assert.deepEqual((await direct.query('select id, name from items order by id')).rows, [{ id: 10, name: 'ten' }, { id: 11, name: 'eleven' }, { id: 12, name: 'twelve' }]);
    const readable = await sql`copy (select id, email from users order by id) to stdout`.readable();
    let out = '';
    for await (const chunk of readable) out += chunk.toString();
    assert.equal(out, '1\t[EMAIL]\n2\t[EMAIL]\n');
    assert.deepEqual([...(await sql`select 1 as after_copy`)], [{ after_copy: 1 }]);
  });

  test('query.cancel() ends a long pg_sleep at once with 57014, and the connection goes on', async () => {
    const started = Date.now();
    const sleeping = sql`select pg_sleep(30)`;
    const result = sleeping.then(() => undefined, (error: postgres.PostgresError) => error);
    await new Promise((resolve) => setTimeout(resolve, 300));
    sleeping.cancel();
    const error = await result;
    assert.ok(error, 'the sleep was not cancelled');
    assert.equal(error.code, '57014');
    assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);
    assert.deepEqual([...(await sql`select 2 as n`)], [{ n: 2 }]);
  });

  test('a masked table reads back masked, every other type parsed as without the gateway', async () => {
    const rows = await sql`select * from users order by id`;
    assert.equal(rows.length, 2);
    assert.deepEqual(rows[0], { id: 1, email: '[EMAIL]', ssn: '*******1120', balance: '12.50', born: rows[0]!.born, seen: new Date('2024-05-06T07:08:09Z'), prefs: { theme: 'dark' } });
    assert.ok(rows[0]!.born instanceof Date && !Number.isNaN(rows[0]!.born.getTime()));
    assert.equal(rows[1]!.ssn, '*******9999');
    assert.deepEqual(rows.columns.map((c) => c.name), ['id', 'email', 'ssn', 'balance', 'born', 'seen', 'prefs']);
  });

  test('a refused statement is a PostgresError 42501 naming the rule; the connection goes on', async () => {
    const error = await sql`truncate items`.then(() => undefined, (e: postgres.PostgresError) => e);
    assert.ok(error instanceof postgres.PostgresError, String(error));
    assert.equal(error.code, '42501');
    assert.equal(error.severity, 'ERROR');
    assert.match(error.message, /Truncating is not allowed\. \(rule: deny-truncate\)/);
    assert.equal(error.detail, 'gatehouse code: access_denied');
    assert.equal((await direct.query('select count(*)::int as n from items')).rows[0].n, 3);
    assert.deepEqual([...(await sql`select 3 as n`)], [{ n: 3 }]);
  });

  test('LISTEN/NOTIFY: a notification sent through the gateway reaches a listener through it', async () => {
    const received: string[] = [];
    let arrived: () => void = () => undefined;
    const both = new Promise<void>((resolve) => (arrived = resolve));
    const listening = await sql.listen('orders', (payload) => {
      received.push(payload);
      if (received.length === 2) arrived();
    });
    await sql.notify('orders', 'first');
    await direct.query("notify orders, 'second'");
    await Promise.race([both, new Promise((_, reject) => setTimeout(() => reject(new Error(`received only ${JSON.stringify(received)}`)), 5000))]);
    assert.deepEqual(received, ['first', 'second']);
    await listening.unlisten();
  });

  test('pg-cursor reads a large masked result in batches, every row masked', async () => {
    const client = new pg.Client(proxy.clientConfig());
    await client.connect();
    try {
      const cursor = client.query(new Cursor<{ id: number; email: string }>('select id, email from people order by id'));
      let total = 0;
      let batches = 0;
      for (;;) {
        const rows = await cursor.read(1000);
        if (rows.length === 0) break;
        batches++;
        for (const row of rows) assert.equal(row.email, '[EMAIL]', `row ${row.id}`);
        assert.equal(rows[0]!.id, total + 1);
        total += rows.length;
      }
      await cursor.close();
      assert.equal(total, 2500);
      assert.equal(batches, 3);
      assert.equal((await client.query('select 1 as n')).rows[0].n, 1);
    } finally {
      await client.end();
    }
  });
});
