// Fail closed on recording: a statement whose record cannot be written is refused
// (recording_failed, SQLSTATE 58000) and never reaches the database; the session goes on.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import pg from 'pg';
import { startTestProxy } from '../../helpers/postgres-proxy.js';

const proxyOrSkip = await startTestProxy({
  recorder: (base) => ({
    ...base,
    open: (exchange, decision, request) =>
      exchange.facts.text?.includes('unrecordable') ? Promise.reject(new Error('disk full')) : base.open(exchange, decision, request),
  }),
});
const skip = 'skip' in proxyOrSkip ? proxyOrSkip.skip : undefined;

describe('PostgreSQL statements whose recording fails', { skip }, () => {
  const proxy = proxyOrSkip as Exclude<typeof proxyOrSkip, { skip: string }>;
  after(() => proxy.close());

  test('simple and extended query: refused with 58000, not run, and the session goes on', async () => {
    const direct = new pg.Client({ connectionString: proxy.directUrl });
    await direct.connect();
    await direct.query('create table unrecordable_rows (id int)');
    const client = new pg.Client(proxy.clientConfig());
    await client.connect();
    try {
      for (const run of [() => client.query('insert into unrecordable_rows values (1)'), () => client.query('insert into unrecordable_rows values ($1)', [2])]) {
        await assert.rejects(run(), (error: pg.DatabaseError) => {
          assert.equal(error.code, '58000');
          assert.equal(error.message, 'The exchange could not be recorded, so it was not forwarded.');
          return true;
        });
        assert.deepEqual((await client.query('select 1 as one')).rows, [{ one: 1 }]);
      }
      assert.deepEqual((await direct.query('select count(*)::int as n from unrecordable_rows')).rows, [{ n: 0 }]);
      const failed = proxy.observed.filter((o) => o.outcome.errorCode === 'recording_failed');
      assert.equal(failed.length, 2);
      assert.deepEqual(failed.map((o) => o.exchange.operation), ['sql.insert', 'sql.insert']);
    } finally {
      await client.end();
      await direct.end();
    }
  });
});
