// Regression: a commit that fails after the statements it commits have completed (a
// deferred foreign key, checked at commit) left their records saying they succeeded —
// for the gateway's own COMMIT after a wrapped Query (a connection with maxRows runs an
// INSERT … RETURNING between a BEGIN and a COMMIT of its own), and for the implicit
// commit at the end of a Query; and in extended mode the database's error for the
// batch's Sync was taken for a protocol fault that ended the session (node-postgres
// sends each parameterised statement with its Sync). Now the client gets the database's
// error, the session goes on, and each statement's record carries the failed commit.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type pg from 'pg';
import { bindMessage, cstring, int32, message, syncMessage } from '../../../src/protocols/postgres/codec.js';
import { rawLogin } from '../../helpers/pg-raw.js';
import { startTestProxy, withProxyClients, type TestProxy } from '../../helpers/postgres-proxy.js';

const proxyOrSkip = await startTestProxy({ maxRows: 100 });
const skip = 'skip' in proxyOrSkip ? proxyOrSkip.skip : undefined;

describe('PostgreSQL proxy: a commit that fails fails the statements it would have kept', { skip }, () => {
  const proxy = proxyOrSkip as TestProxy;
  let direct: pg.Client;
  let c: pg.Client;

  withProxyClients(proxy, `create table parent (id int primary key); insert into parent values (1);
      create table child (id int, parent_id int references parent deferrable initially deferred);
      create table plain (id int references parent deferrable)`, (clients) => ({ direct, client: c } = clients));

  const fkViolation = { code: '23503', message: /violates foreign key constraint "child_parent_id_fkey"/ };

  /**
   * node-postgres rejects a query at its ErrorResponse; the gateway records a wrapped
   * Query's statements at the ReadyForQuery after it. The next query's answer comes after
   * that one, so once it is in, the records are too (without it the check raced the
   * ReadyForQuery on a loaded machine).
   */
  const settled = () => c.query('select 1');

  /** The recorded outcome of the statement whose text is `text` (the last one so). */
  const outcomeOf = (text: string) => proxy.observed.findLast((o) => o.exchange.facts.text === text)?.outcome;

  const failedCommit = (text: string) => {
    const outcome = outcomeOf(text);
    assert.equal(outcome?.errorCode, 'sql_error', `record of ${text}`);
    assert.match(outcome?.errorDetail ?? '', /^the transaction's commit failed, so the statement's changes were not kept: 23503: insert or update on table "child"/);
  };

  test("the gateway's COMMIT after a wrapped INSERT … RETURNING fails: the client gets the error, the record says so", async () => {
    const sql = 'insert into child values (10, 999) returning id';
    await assert.rejects(c.query(sql), fkViolation);
    await settled();
    failedCommit(sql);
    assert.deepEqual((await c.query('select count(*)::int as n from child')).rows, [{ n: 0 }]);
  });

  test('every statement of a wrapped Query of several carries the failed COMMIT', async () => {
    const insert = 'insert into child values (11, 998)';
    const select = 'select id from parent';
    await assert.rejects(c.query(`${insert}; ${select}`), fkViolation);
    await settled();
    failedCommit(insert);
    failedCommit(select);
  });

  test('the implicit commit of a Query that is not wrapped fails its statement (the database reports it in place of its CommandComplete)', async () => {
    const sql = 'insert into child values (12, 997)';
    await assert.rejects(c.query(sql), fkViolation);
    await settled();
    assert.equal(outcomeOf(sql)?.errorCode, 'sql_error');
    assert.match(outcomeOf(sql)?.errorDetail ?? '', /^23503: insert or update on table "child"/);
  });

  test('a statement of a Query whose later statement fails is recorded as rolled back (its implicit transaction)', async () => {
    const first = 'insert into child values (16, 1)';
    const second = 'insert into child values (17, 995)';
    await assert.rejects(c.query(`${first}; ${second}`), fkViolation);
    await settled();
    assert.equal(outcomeOf(first)?.errorCode, 'rolled_back');
    assert.equal(outcomeOf(second)?.errorCode, 'sql_error');
    assert.deepEqual((await direct.query('select count(*)::int as n from child where id = 16')).rows, [{ n: 0 }]);
  });

  test("extended query: the batch's Sync fails to commit; the session goes on and the Execute's record says so", async () => {
    const sql = 'insert into child values ($1, $2)';
    await assert.rejects(c.query(sql, [13, 996]), fkViolation);
    await settled();
    failedCommit(sql);
    assert.deepEqual((await c.query('select $1::int as n', [7])).rows, [{ n: 7 }]);
    // A batch that commits is recorded as it ran.
    await c.query(sql, [14, 1]);
    assert.equal(outcomeOf(sql)?.errorCode, undefined);
    assert.deepEqual((await direct.query('select id from child')).rows, [{ id: 14 }]);
  });

  test('extended query: an Execute rolled back with its batch by a later error is recorded as rolled back', async () => {
    const raw = await rawLogin(proxy.port, 'agent', proxy.database, proxy.token);
    try {
      const run = (sql: string) => [message('P', Buffer.concat([cstring(''), cstring(sql), Buffer.from([0, 0])])), bindMessage('', ''), message('E', Buffer.concat([cstring(''), int32(0)]))];
      raw.write(...run('insert into child values (18, 1)'), ...run('select 1 / 0'), syncMessage());
      const frames = await raw.untilReady(1);
      assert.equal(frames.filter((f) => f.type === 'E').length, 1);
    } finally {
      raw.close();
    }
    assert.equal(outcomeOf('insert into child values (18, 1)')?.errorCode, 'rolled_back');
    assert.equal(outcomeOf('select 1 / 0')?.errorCode, 'sql_error');
    assert.deepEqual((await direct.query('select count(*)::int as n from child where id = 18')).rows, [{ n: 0 }]);
  });

  test('SET CONSTRAINTS … DEFERRED in a block: the client\'s own COMMIT fails, and is recorded so', async () => {
    await c.query('begin');
    await c.query('set constraints all deferred');
    await c.query('insert into plain values (999)');
    await assert.rejects(c.query('commit'), { code: '23503' });
    await settled();
    assert.equal(outcomeOf('commit')?.errorCode, 'sql_error');
    assert.deepEqual((await direct.query('select count(*)::int as n from plain')).rows, [{ n: 0 }]);
  });

  test('a wrapped Query that commits is recorded as it ran', async () => {
    const sql = 'insert into child values (15, 1) returning id';
    assert.deepEqual((await c.query(sql)).rows, [{ id: 15 }]);
    const outcome = outcomeOf(sql);
    assert.equal(outcome?.errorCode, undefined);
    assert.equal(outcome?.responseBody, '{"command":"INSERT 0 1","rows":1}');
  });
});
