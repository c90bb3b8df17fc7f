// Regression: in the extended protocol the database discards every message after an
// ErrorResponse until Sync. A pipelining client (libpq pipeline mode, psycopg 3, pgx
// batches, JDBC batches) keeps sending what it had queued: when those messages reached
// the gateway after the error (`Bind('', 'nope')` flushed alone, then Parse, Bind,
// Execute, Sync), the gateway expected their answers, got only the ReadyForQuery, and
// ended the session (FATAL 08006 upstream_failed). They are now skipped as the database
// skips them: no answers, the session goes on after Sync, and what the gateway knows of
// statements and portals is as if they never ran (a Parse skipped does not replace the
// statement of its name: with column masking, that would describe the old one's rows).
// Likewise after the gateway's own error for an Execute (rows it cannot mask): an INSERT
// the client sent next, before its Sync, ran on the database while the client was told
// nothing of it (the Sync of the gateway's cancel had ended the database's skipping).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Recorder } from '../../../src/audit/index.js';
import { cstring, int16, int32, message, type Frame } from '../../../src/protocols/postgres/codec.js';
import { rawLogin, type RawClient } from '../../helpers/pg-raw.js';
import { startTestProxy, withProxyClients, type TestProxy } from '../../helpers/postgres-proxy.js';

// Recording the Execute of a statement marked `slow_record` takes a while: an error of the
// database arrives while the gateway waits for it.
const slowRecorder = (base: Recorder): Recorder => ({
  ...base,
  async open(exchange, decision, request) {
    if (request.method === 'Execute' && request.body?.includes('slow_record')) await new Promise((resolve) => setTimeout(resolve, 600));
    return base.open(exchange, decision, request);
  },
});
const proxyOrSkip = await startTestProxy({ masking: { columns: new Map([['email', 'redact']]) }, recorder: slowRecorder });
const skip = 'skip' in proxyOrSkip ? proxyOrSkip.skip : undefined;

const parse = (name: string, sql: string) => message('P', Buffer.concat([cstring(name), cstring(sql), int16(0)]));
const bind = (portal: string, statement: string) => message('B', Buffer.concat([cstring(portal), cstring(statement), int16(0), int16(0), int16(0)]));
const describePortal = (name: string) => message('D', Buffer.concat([Buffer.from('P'), cstring(name)]));
const execute = (portal: string, rows = 0) => message('E', Buffer.concat([cstring(portal), int32(rows)]));
const flush = () => message('H');
const sync = () => message('S');
const query = (sql: string) => message('Q', cstring(sql));
const types = (frames: Frame[]) => frames.map((f) => f.type).join('');
const text = (frames: Frame[]) => frames.map((f) => f.body.toString('utf8')).join(' ');

describe('PostgreSQL proxy: messages pipelined after an error, before Sync', { skip }, () => {
  const proxy = proxyOrSkip as TestProxy;
  withProxyClients(proxy, `create table users (id int, name text, email text);
      insert into users values (1, 'Ann', 'ann@example.com'), (2, 'Bob', 'bob@example.com')`, () => undefined);

  /** The session still answers. */
  const usable = async (raw: RawClient) => {
    raw.write(query('select 41 + 1 as answer'));
    const frames = await raw.untilReady(1);
    assert.equal(types(frames), 'TDCZ', text(frames));
    assert.match(text(frames), /42/);
  };

  test('messages sent after the error reached the client are skipped, and the session goes on', async () => {
    const raw = await rawLogin(proxy.port, 'agent', proxy.database, proxy.token);
    try {
      raw.write(bind('', 'nope'), flush());
      const error = await raw.until('E');
      assert.match(text(error), /26000/);
      raw.write(parse('', 'select 1'), bind('', ''), execute(''), sync());
      const frames = await raw.untilReady(1);
      assert.equal(types(frames), 'Z', text(frames));
      await usable(raw);
    } finally {
      raw.close();
    }
  });

  test('a batch in one write with an error in its second statement', async () => {
    const raw = await rawLogin(proxy.port, 'agent', proxy.database, proxy.token);
    try {
      const statement = (sql: string) => [parse('', sql), bind('', ''), describePortal(''), execute('')];
      raw.write(...statement('select 1'), ...statement('select 1 / 0'), ...statement('select 3'), sync());
      const frames = await raw.untilReady(1);
      assert.equal(types(frames), '12TDC1EZ', text(frames));
      assert.match(text(frames), /division by zero/);
      await usable(raw);
    } finally {
      raw.close();
    }
  });

  test('named statements and portals skipped stay as they were, and masked', async () => {
    const raw = await rawLogin(proxy.port, 'agent', proxy.database, proxy.token);
    try {
      raw.write(parse('', 'select email as e from users order by id'), parse('kept', 'select email as e from users order by id'), sync());
      assert.equal(types(await raw.untilReady(1)), '11Z');
      raw.write(bind('', 'nope'), flush());
      assert.match(text(await raw.until('E')), /26000/);
      // Skipped: the unnamed and "kept" statements are still the email ones, "fresh" is never made.
      raw.write(parse('', 'select name as e from users order by id'), parse('kept', 'select name as e from users order by id'), parse('fresh', 'select 1'), bind('p', 'kept'), describePortal('p'), execute('p'), flush());
      raw.write(sync());
      assert.equal(types(await raw.untilReady(1)), 'Z');
      for (const statement of ['', 'kept']) {
        raw.write(bind('', statement), describePortal(''), execute(''), sync());
        const answer = text(await raw.untilReady(1));
        assert.ok(!/example\.com/.test(answer), answer);
        assert.match(answer, /\[EMAIL\]/);
      }
      raw.write(bind('', 'fresh'), execute(''), sync());
      assert.match(text(await raw.untilReady(1)), /26000/);
      // Portal "p" was never bound: its Execute is the database's error, not rows.
      raw.write(execute('p'), sync());
      const answer = text(await raw.untilReady(1));
      assert.ok(!/example\.com/.test(answer), answer);
      assert.match(answer, /34000/);
      await usable(raw);
    } finally {
      raw.close();
    }
  });

  test('an Execute still being recorded when the error arrives is skipped too', async () => {
    const raw = await rawLogin(proxy.port, 'agent', proxy.database, proxy.token);
    try {
      raw.write(parse('', 'select 1 / (id - 1) from users, pg_sleep(0.2) where id = 1'), bind('', ''), execute(''), flush());
      await new Promise((resolve) => setTimeout(resolve, 50));
      raw.write(parse('late', 'select 42 as slow_record'), bind('', 'late'), execute(''), sync());
      const frames = await raw.untilReady(1);
      assert.equal(types(frames), '12EZ', text(frames));
      assert.match(text(frames), /division by zero/);
      raw.write(bind('', 'late'), sync());
      assert.match(text(await raw.untilReady(1)), /26000/);
      await usable(raw);
      const skipped = proxy.observed.find((o) => o.exchange.facts.sql?.text === 'select 42 as slow_record');
      assert.equal(skipped?.outcome.errorCode, 'not_executed');
    } finally {
      raw.close();
    }
  });

  test("after the gateway's own error for an Execute, what the client sends until Sync does not run", async () => {
    const raw = await rawLogin(proxy.port, 'agent', proxy.database, proxy.token);
    try {
      // No Describe: the rows cannot be masked, the gateway stops the Execute with its error.
      raw.write(parse('', 'select email from users'), bind('', ''), execute(''), flush());
      assert.match(text(await raw.until('E')), /Rows cannot be masked without their description/);
      raw.write(parse('', "insert into users values (9, 'Skipped', 'skipped@example.com')"), bind('', ''), execute(''), sync());
      const frames = await raw.untilReady(1);
      assert.equal(types(frames), 'Z', text(frames));
      raw.write(query("select count(*) from users where name = 'Skipped'"));
      assert.match(text(await raw.untilReady(1)), /\b0\b/);
      await usable(raw);
    } finally {
      raw.close();
    }
  });
});
