// A statement still running can change the client encoding (set_config) before the
// database reads the next message, which it then converts from that encoding: SQL the
// gateway inspected as UTF-8 must not reach it pipelined behind such a statement. In
// SJIS the UTF-8 bytes of "ā" (C4 81) followed by a backslash are two characters, the
// backslash eaten, so E'ā\'; drop table victim; --' ends its literal at the quote.
// The same with standard_conforming_strings off: `'a\''; drop table victim; --'` is one
// literal to the gateway's parser and a SELECT then a DROP to the database (a denied
// statement, or `select email as e`, ran unseen and unmasked).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { cstring, int32, message } from '../../../src/protocols/postgres/codec.js';
import { rawLogin } from '../../helpers/pg-raw.js';
import { startTestProxy, type TestProxy } from '../../helpers/postgres-proxy.js';

const proxyOrSkip = await startTestProxy({
  policy: (base) => ({
    version: `${base.version}+deny-drop`,
    decide(exchange) {
      const decision = base.decide(exchange);
      if (decision.effect === 'allow' && exchange.operation === 'sql.drop') return { effect: 'deny', rules: ['deny-drop'], reason: 'rule-deny', message: 'no drops (rule: deny-drop)', policyVersion: decision.policyVersion };
      return decision;
    },
  }),
});
const skip = 'skip' in proxyOrSkip ? proxyOrSkip.skip : undefined;

const setSjis = "select set_config('client_encoding', 'SJIS', false)";
const hidden = Buffer.concat([Buffer.from("select E'"), Buffer.from([0xc4, 0x81]), Buffer.from("\\'; drop table victim; --'")]);

describe('PostgreSQL proxy: client encoding changed by a statement pipelined before SQL', { skip }, () => {
  const proxy = proxyOrSkip as TestProxy;
  const direct = () => new pg.Client({ connectionString: proxy.directUrl });

  before(async () => {
    const c = direct();
    await c.connect();
    await c.query('create table victim (x int)');
    await c.end();
  });
  after(() => proxy.close());

  async function victimExists(): Promise<boolean> {
    const c = direct();
    await c.connect();
    const { rows } = await c.query("select to_regclass('victim') is not null as present");
    await c.end();
    return rows[0].present as boolean;
  }

  test('simple Query: the second Query waits for the first to end, and the encoding change ends the session', async () => {
    const client = await rawLogin(proxy.port, 'agent', proxy.database, proxy.token);
    client.write(message('Q', cstring(setSjis)), message('Q', Buffer.concat([hidden, Buffer.from([0])])));
    const frames = await client.untilReady(2, 3000);
    client.close();
    const errors = frames.filter((f) => f.type === 'E').map((f) => f.body.toString('latin1'));
    assert.ok(errors.some((e) => e.includes('0A000') && e.includes('SJIS')), errors.join(' | '));
    assert.equal(await victimExists(), true);
  });

  test('extended batch: non-ASCII Parse behind an Execute with no Sync yet is refused; ASCII and non-ASCII SQL still work', async () => {
    const client = await rawLogin(proxy.port, 'agent', proxy.database, proxy.token);
    const parse = (text: Buffer) => message('P', Buffer.concat([cstring(''), text, Buffer.from([0]), Buffer.from([0, 0])]));
    const bind = message('B', Buffer.concat([cstring(''), cstring(''), Buffer.from([0, 0, 0, 0, 0, 0])]));
    const execute = message('E', Buffer.concat([cstring(''), int32(0)]));
    const sync = message('S', Buffer.alloc(0));
    client.write(parse(Buffer.from(setSjis)), bind, execute, parse(hidden), bind, execute, sync);
    const frames = await client.untilReady(1, 3000);
    const errors = frames.filter((f) => f.type === 'E').map((f) => f.body.toString('utf8'));
    assert.ok(errors.some((e) => e.includes('0A000') && e.includes('send Sync first')), errors.join(' | '));
    client.close();
    assert.equal(await victimExists(), true);

    // Without an encoding change, non-ASCII SQL pipelined behind a Query still runs.
    const c = await rawLogin(proxy.port, 'agent', proxy.database, proxy.token);
    c.write(message('Q', cstring('select pg_sleep(0.1)')), message('Q', cstring("select 'café' as v")));
    const answers = await c.untilReady(2, 3000);
    assert.equal(answers.filter((f) => f.type === 'E').length, 0);
    assert.ok(answers.some((f) => f.type === 'D' && f.body.toString('utf8').includes('café')));
    c.close();
  });

  test('standard_conforming_strings off is refused by SET, and ends the session when set otherwise', async () => {
    const smuggled = "select 'a\\''; drop table victim; --'";
    const c = new pg.Client(proxy.clientConfig());
    await c.connect();
    try {
      await assert.rejects(c.query('set standard_conforming_strings = off'), { code: '0A000', message: /standard_conforming_strings must stay on/ });
      await assert.rejects(c.query('set session standard_conforming_strings to 0'), { code: '0A000' });
      await c.query('set standard_conforming_strings = on');
      await c.query('reset standard_conforming_strings');
      assert.deepEqual((await c.query({ text: smuggled, rowMode: 'array' })).rows, [["a\\'; drop table victim; --"]]);
      assert.equal((await c.query('show standard_conforming_strings')).rows[0].standard_conforming_strings, 'on');
    } finally {
      await c.end();
    }
    assert.equal(await victimExists(), true);

    // set_config, with the smuggling Query pipelined behind it: it waits, and the change ends the session.
    const client = await rawLogin(proxy.port, 'agent', proxy.database, proxy.token);
    client.write(message('Q', cstring("select set_config('standard_conforming_strings', 'off', false)")), message('Q', cstring(smuggled)));
    const frames = await client.untilReady(2, 3000);
    client.close();
    const errors = frames.filter((f) => f.type === 'E').map((f) => f.body.toString('utf8'));
    assert.ok(errors.some((e) => e.includes('0A000') && e.includes('standard_conforming_strings was changed to off')), errors.join(' | '));
    assert.equal(await victimExists(), true);

    // In an extended batch, a backslash behind an Execute with no Sync yet is refused.
    const x = await rawLogin(proxy.port, 'agent', proxy.database, proxy.token);
    const parse = (text: string) => message('P', Buffer.concat([cstring(''), cstring(text), Buffer.from([0, 0])]));
    const bind = message('B', Buffer.concat([cstring(''), cstring(''), Buffer.from([0, 0, 0, 0, 0, 0])]));
    const execute = message('E', Buffer.concat([cstring(''), int32(0)]));
    x.write(parse("select set_config('standard_conforming_strings', 'off', false)"), bind, execute, parse(smuggled), bind, execute, message('S', Buffer.alloc(0)));
    const answers = await x.untilReady(1, 3000);
    x.close();
    assert.ok(answers.some((f) => f.type === 'E' && f.body.toString('utf8').includes('send Sync first')), answers.map((f) => f.type).join(''));
    assert.equal(await victimExists(), true);

    // A database whose default is off: the gateway's login asks for on.
    const d = direct();
    await d.connect();
    await d.query(`alter database "${proxy.database}" set standard_conforming_strings = off`);
    const s = new pg.Client(proxy.clientConfig());
    try {
      await s.connect();
      assert.equal((await s.query('show standard_conforming_strings')).rows[0].standard_conforming_strings, 'on');
      await s.query(smuggled);
    } finally {
      await s.end();
      await d.query(`alter database "${proxy.database}" reset standard_conforming_strings`);
      await d.end();
    }
    assert.equal(await victimExists(), true);
  });
});
