// What the database keeps when policy refuses a statement in the middle of a pipeline
// or a Query: the client is told ERROR, and the database must have done what an error
// there means (the batch's implicit transaction rolled back, later statements up to Sync
// not run, an explicit block aborted). The refusal's bogus Bind goes in the statement's
// place, before the batch's Sync: checked here on the table's contents.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type pg from 'pg';
import { cstring, int16, int32, message, type Frame } from '../../../src/protocols/postgres/codec.js';
import { rawLogin, type RawClient } from '../../helpers/pg-raw.js';
import { startTestProxy, withProxyClients, type TestProxy } from '../../helpers/postgres-proxy.js';

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

const statement = (sql: string) => [
  message('P', Buffer.concat([cstring(''), cstring(sql), int16(0)])),
  message('B', Buffer.concat([cstring(''), cstring(''), int16(0), int16(0), int16(0)])),
  message('E', Buffer.concat([cstring(''), int32(0)])),
];
const sync = () => message('S');
const query = (sql: string) => message('Q', cstring(sql));
const types = (frames: Frame[]) => frames.map((f) => f.type).join('');
const text = (frames: Frame[]) => frames.map((f) => f.body.toString('utf8')).join(' ');
const status = (frames: Frame[]) => String.fromCharCode(frames.filter((f) => f.type === 'Z').at(-1)!.body[0]!);

describe('PostgreSQL proxy: a statement policy refuses mid-pipeline takes its transaction with it', { skip }, () => {
  const proxy = proxyOrSkip as TestProxy;
  let direct: pg.Client;
  withProxyClients(proxy, 'create table notes (id int)', (clients) => {
    direct = clients.direct;
  });

  const notes = async () => (await direct.query<{ id: number }>('select id from notes order by id')).rows.map((r) => r.id);

  const session = async (run: (raw: RawClient) => Promise<void>) => {
    await direct.query('truncate notes');
    const raw = await rawLogin(proxy.port, 'agent', proxy.database, proxy.token);
    try {
      await run(raw);
    } finally {
      raw.close();
    }
  };

  test('extended: an INSERT before the refused statement in the same batch is rolled back, one after it does not run', async () => {
    await session(async (raw) => {
      raw.write(...statement('insert into notes values (1)'), ...statement('drop table notes'), ...statement('insert into notes values (2)'), sync());
      const frames = await raw.untilReady(1);
      assert.equal(types(frames), '12CEZ', text(frames));
      assert.match(text(frames), /no drops/);
      assert.equal(status(frames), 'I');
    });
    assert.deepEqual(await notes(), []);
  });

  test('extended, in a transaction block: the block is aborted, and COMMIT rolls it back', async () => {
    await session(async (raw) => {
      raw.write(query('begin'), ...statement('insert into notes values (3)'), ...statement('drop table notes'), ...statement('insert into notes values (4)'), sync());
      const frames = await raw.untilReady(2);
      assert.equal(status(frames), 'E');
      raw.write(query('commit'));
      assert.match(text(await raw.untilReady(1)), /ROLLBACK/);
    });
    assert.deepEqual(await notes(), []);
  });

  test('simple Query: no statement of a Query with a refused one runs', async () => {
    await session(async (raw) => {
      raw.write(query('insert into notes values (5); drop table notes; insert into notes values (6)'));
      const frames = await raw.untilReady(1);
      assert.equal(types(frames), 'EZ', text(frames));
      assert.equal(status(frames), 'I');
    });
    assert.deepEqual(await notes(), []);
  });
});
