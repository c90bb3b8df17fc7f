// Regression: when the gateway itself stops a statement the database runs (more rows
// than maxRows, rows it cannot mask), the client is told ERROR, and by PostgreSQL's rules
// everything after it up to Sync (or the rest of the Query) did not run and the implicit
// transaction was rolled back. The database had not been told: an INSERT pipelined in the
// same batch, before or after the stopped SELECT, was committed (its Sync, or the end of
// its Query, had reached the database before the gateway saw the rows), so the table
// held rows the client had been told were never written. Checked here on the table's
// contents, read directly from the database.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type pg from 'pg';
import { cstring, int16, int32, message, type Frame } from '../../../src/protocols/postgres/codec.js';
import { rawLogin, type RawClient } from '../../helpers/pg-raw.js';
import { startTestProxy, withProxyClients, type TestProxy } from '../../helpers/postgres-proxy.js';

const proxyOrSkip = await startTestProxy({ maxRows: 3, masking: { columns: new Map([['email', 'redact']]) } });
const skip = 'skip' in proxyOrSkip ? proxyOrSkip.skip : undefined;

const parse = (sql: string) => message('P', Buffer.concat([cstring(''), cstring(sql), int16(0)]));
const bind = () => message('B', Buffer.concat([cstring(''), cstring(''), int16(0), int16(0), int16(0)]));
const describePortal = () => message('D', Buffer.concat([Buffer.from('P'), cstring('')]));
const execute = () => message('E', Buffer.concat([cstring(''), int32(0)]));
const sync = () => message('S');
const query = (sql: string) => message('Q', cstring(sql));
/** Parse, Bind, Describe, Execute of one statement (what a driver sends for a query). */
const statement = (sql: string) => [parse(sql), bind(), describePortal(), execute()];
const types = (frames: Frame[]) => frames.map((f) => f.type).join('');
const text = (frames: Frame[]) => frames.map((f) => f.body.toString('utf8')).join(' ');
/** The transaction status of the last ReadyForQuery: I idle, T in a block, E failed block. */
const status = (frames: Frame[]) => String.fromCharCode(frames.filter((f) => f.type === 'Z').at(-1)!.body[0]!);

describe('PostgreSQL proxy: a statement the gateway stops takes its transaction with it', { skip }, () => {
  const proxy = proxyOrSkip as TestProxy;
  let direct: pg.Client;
  withProxyClients(proxy, `create table notes (id int);
      create table users (id int, email text);
      insert into users values (1, 'ann@example.com');
      create table deferred (id int unique deferrable initially deferred)`, (clients) => {
    direct = clients.direct;
  });

  const notes = async () => (await direct.query<{ id: number }>('select id from notes order by id')).rows.map((r) => r.id);

  const session = async (run: (raw: RawClient) => Promise<void>) => {
    await direct.query('truncate notes');
    const raw = await rawLogin(proxy.port, 'agent', proxy.database, proxy.token);
    try {
      await run(raw);
      // The session goes on, idle.
      raw.write(query('select 41 + 1'));
      const frames = await raw.untilReady(1);
      assert.equal(types(frames), 'TDCZ', text(frames));
      assert.equal(status(frames), 'I');
    } finally {
      raw.close();
    }
  };

  test('extended: an INSERT before the stopped SELECT in the same batch is rolled back', async () => {
    await session(async (raw) => {
      raw.write(...statement('insert into notes values (1)'), ...statement('select generate_series(1, 10)'), sync());
      const frames = await raw.untilReady(1);
      assert.match(text(frames), /more than 3 rows/);
      assert.equal(types(frames), '12nC12TDDDEZ', text(frames));
    });
    assert.deepEqual(await notes(), []);
  });

  test('extended: an INSERT pipelined after the stopped SELECT, before Sync, does not run', async () => {
    await session(async (raw) => {
      raw.write(...statement('select generate_series(1, 10)'), ...statement('insert into notes values (2)'), sync());
      const frames = await raw.untilReady(1);
      assert.equal(types(frames), '12TDDDEZ', text(frames));
      assert.match(text(frames), /more than 3 rows/);
    });
    assert.deepEqual(await notes(), []);
    // Its record says it ran and was rolled back.
    const insert = proxy.observed.findLast((o) => o.exchange.facts.sql?.text === 'insert into notes values (2)');
    assert.equal(insert?.outcome.errorCode, 'rolled_back');
  });

  test('extended: rows the gateway cannot mask (Execute without Describe) roll back the batch', async () => {
    await session(async (raw) => {
      raw.write(parse('insert into notes values (3)'), bind(), execute(), parse('select email from users'), bind(), execute(), ...statement('insert into notes values (4)'), sync());
      const frames = await raw.untilReady(1);
      assert.match(text(frames), /Rows cannot be masked without their description/);
      assert.equal(types(frames), '12C12EZ', text(frames));
    });
    assert.deepEqual(await notes(), []);
  });

  test('extended, in a transaction block: the block is failed, and COMMIT rolls it back', async () => {
    await session(async (raw) => {
      raw.write(query('begin'));
      await raw.untilReady(1);
      raw.write(...statement('select generate_series(1, 10)'), ...statement('insert into notes values (5)'), sync());
      const frames = await raw.untilReady(1);
      assert.match(text(frames), /more than 3 rows/);
      assert.equal(status(frames), 'E');
      raw.write(query('commit'));
      const commit = await raw.untilReady(1);
      assert.match(text(commit), /ROLLBACK/);
    });
    assert.deepEqual(await notes(), []);
  });

  test('extended: a batch the gateway lets through whole is committed', async () => {
    await session(async (raw) => {
      raw.write(...statement('insert into notes values (6)'), ...statement('select generate_series(1, 3)'), ...statement('insert into notes values (7)'), sync());
      const frames = await raw.untilReady(1);
      assert.equal(types(frames), '12nC12TDDDC12nCZ', text(frames));
    });
    assert.deepEqual(await notes(), [6, 7]);
  });

  test('simple Query: an INSERT before the stopped SELECT is rolled back', async () => {
    await session(async (raw) => {
      raw.write(query('insert into notes values (8); select generate_series(1, 10)'));
      const frames = await raw.untilReady(1);
      assert.equal(types(frames), 'CTDDDEZ', text(frames));
      assert.match(text(frames), /more than 3 rows/);
    });
    assert.deepEqual(await notes(), []);
  });

  test('simple Query: an INSERT after the stopped SELECT does not run', async () => {
    await session(async (raw) => {
      raw.write(query('select generate_series(1, 10); insert into notes values (9)'));
      const frames = await raw.untilReady(1);
      assert.equal(types(frames), 'TDDDEZ', text(frames));
    });
    assert.deepEqual(await notes(), []);
    const insert = proxy.observed.findLast((o) => o.exchange.facts.sql?.text === 'insert into notes values (9)');
    assert.equal(insert?.outcome.errorCode, 'rolled_back');
  });

  test('simple Query: INSERT … RETURNING with more rows than maxRows is not committed', async () => {
    await session(async (raw) => {
      raw.write(query('insert into notes select generate_series(10, 20) returning id'));
      const frames = await raw.untilReady(1);
      assert.equal(types(frames), 'TDDDEZ', text(frames));
    });
    assert.deepEqual(await notes(), []);
  });

  test('simple Query let through whole: committed, and the client sees no transaction of the gateway', async () => {
    await session(async (raw) => {
      raw.write(query('insert into notes values (21); select generate_series(1, 2); insert into notes values (22)'));
      const frames = await raw.untilReady(1);
      assert.equal(types(frames), 'CTDDCCZ', text(frames));
      assert.equal(status(frames), 'I');
    });
    assert.deepEqual(await notes(), [21, 22]);
  });

  test('simple Query whose commit fails (deferred constraint): the client gets the error', async () => {
    await session(async (raw) => {
      raw.write(query('insert into deferred values (1), (1) returning id'));
      const frames = await raw.untilReady(1);
      assert.match(text(frames), /23505/);
      assert.equal(types(frames).at(-2), 'E');
    });
    assert.equal((await direct.query('select count(*)::int as n from deferred')).rows[0].n, 0);
  });

  test('simple Query in the client\'s own transaction block: the block is failed, COMMIT rolls it back', async () => {
    await session(async (raw) => {
      raw.write(query('begin'));
      await raw.untilReady(1);
      raw.write(query('insert into notes values (23); select generate_series(1, 10); insert into notes values (24)'));
      const frames = await raw.untilReady(1);
      assert.match(text(frames), /more than 3 rows/);
      raw.write(query('commit'));
      const commit = await raw.untilReady(1);
      assert.match(text(commit), /ROLLBACK/);
    });
    assert.deepEqual(await notes(), []);
  });

  test('simple Queries pipelined in one write: each one is its own transaction', async () => {
    await session(async (raw) => {
      raw.write(query('insert into notes values (25); select generate_series(1, 10)'), query('insert into notes values (26); select 1'), query('begin'), query('insert into notes values (27)'), query('commit'));
      const frames = await raw.untilReady(5);
      assert.equal(types(frames), 'CTDDDEZ' + 'CTDCZ' + 'CZ' + 'CZ' + 'CZ', text(frames));
    });
    assert.deepEqual(await notes(), [26, 27]);
  });

  test('extended: COPY FROM STDIN with its Sync sent before the data (as libpq does) is not held up', async () => {
    await direct.query('truncate notes');
    const raw = await rawLogin(proxy.port, 'agent', proxy.database, proxy.token);
    try {
      raw.write(parse('copy notes from stdin'), bind(), execute(), sync());
      const copyIn = await raw.until('G');
      assert.equal(types(copyIn), '12G', text(copyIn));
      // The database ignores a Sync in COPY mode: libpq sends another after CopyDone.
      raw.write(message('d', Buffer.from('31\n32\n')), message('c'), sync());
      const frames = await raw.untilReady(1);
      assert.equal(types(frames), 'CZ', text(frames));
    } finally {
      raw.close();
    }
    assert.deepEqual(await notes(), [31, 32]);
  });
});
