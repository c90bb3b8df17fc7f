// require_approval and COPY … FROM STDIN: the COPY (or another statement of its Query or
// batch that needs approval) is held like any statement, and its rows reach the
// database only after the approval, also when the client sends them at once behind the
// Query (before any CopyInResponse): the session reads no client message while a
// statement is held. Denied, nothing of the Query or batch runs, and the rows the client
// sent early are dropped by the database (CopyData outside COPY is ignored).
// Regression: in the extended protocol, a Sync the client sent after its CopyDone (the
// data sent at once, or buffered while the Execute was held) was taken for one the
// database ignores in COPY mode, and its ReadyForQuery then ended the session (08006);
// so did a Sync after a CopyInResponse that came after the client's CopyDone.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type pg from 'pg';
import type { DecisionPolicy } from '../../../src/policy/index.js';
import { bindMessage, cstring, flushMessage, int16, int32, message, parseNoticeFields, syncMessage, type Frame } from '../../../src/protocols/postgres/codec.js';
import { copy } from '../../helpers/pg-copy.js';
import { rawLogin, type RawClient } from '../../helpers/pg-raw.js';
import { startTestProxy, withProxyClients, type TestProxy } from '../../helpers/postgres-proxy.js';
import { testApprovals, reviewerAlice } from '../../helpers/pg-approvals.js';

/** DELETE, and COPY into `staged`, need approval; COPY into `items` does not. */
function approveCopies(base: DecisionPolicy): DecisionPolicy {
  return {
    version: `${base.version}+copy-approvals`,
    decide(exchange) {
      const decision = base.decide(exchange);
      const held = exchange.operation === 'sql.delete' || (exchange.operation === 'sql.copy' && exchange.facts.sql?.tables.includes('staged'));
      if (decision.effect !== 'allow' || !held) return decision;
      return { effect: 'require_approval', rules: ['approve-loads'], reason: 'rule-require-approval', policyVersion: decision.policyVersion };
    },
  };
}

const approvals = testApprovals();
const alice = reviewerAlice;

const proxyOrSkip = await startTestProxy({ policy: approveCopies, approvals });
const skip = 'skip' in proxyOrSkip ? proxyOrSkip.skip : undefined;

const query = (sql: string) => message('Q', cstring(sql));
const parse = (sql: string) => message('P', Buffer.concat([cstring(''), cstring(sql), int16(0)]));
const execute = message('E', Buffer.concat([cstring(''), int32(0)]));
const copyData = (rows: string) => message('d', Buffer.from(rows));
const copyDone = message('c');
const errors = (frames: Frame[]) => frames.filter((f) => f.type === 'E').map((f) => parseNoticeFields(f.body).get('C'));

describe('PostgreSQL proxy: COPY FROM STDIN held for approval', { skip }, () => {
  const proxy = proxyOrSkip as TestProxy;
  const service = () => proxy.approvals!.service;
  let direct: pg.Client;
  let client: pg.Client;
  const notices: string[] = [];
  withProxyClients(proxy, 'create table items (id int); create table staged (id int)', (clients) => {
    ({ direct, client } = clients);
    client.on('notice', (n) => notices.push(n.message ?? ''));
  });
  const ids = async (table: string) => (await direct.query<{ id: number }>(`select id from ${table} order by id`)).rows.map((r) => r.id);
  const reviewIn = (text: string | undefined) => /review (rv_[0-9a-z]+)/.exec(text ?? '')?.[1];

  /** The review a raw client's NoticeResponse named; the rows of `table` checked while it is held. */
  async function heldRaw(raw: RawClient, table: string, before: number[]): Promise<string> {
    const frames = await raw.until('N');
    assert.equal(frames.at(-1)?.type, 'N', `a NoticeResponse naming the review, got ${frames.map((f) => f.type).join('')}`);
    assert.deepEqual(await ids(table), before, 'nothing reached the database while held');
    return reviewIn(parseNoticeFields(frames.at(-1)!.body).get('M'))!;
  }

  test('node-postgres COPY FROM STDIN: held, the rows land only once approved', async () => {
    const running = copy(client, 'copy staged from stdin', '1\n2\n');
    for (let i = 0; i < 200 && notices.length === 0; i++) await new Promise((r) => setTimeout(r, 25));
    const id = reviewIn(notices[0]);
    assert.ok(id, `a NoticeResponse naming the review, got ${JSON.stringify(notices)}`);
    assert.deepEqual(await ids('staged'), []);
    await service().vote(id, alice, 'approve', { via: 'api' });
    assert.equal((await running).tag, 'COPY 2');
    assert.deepEqual(await ids('staged'), [1, 2]);
  });

  test('rows sent at once behind the Query wait for the approval; denied, nothing of the Query runs and the session goes on', async () => {
    const raw = await rawLogin(proxy.port, 'agent', proxy.database, proxy.token);
    try {
      raw.write(query('insert into staged values (5); copy staged from stdin'), copyData('3\n'), copyDone);
      const denied = await heldRaw(raw, 'staged', [1, 2]);
      await service().vote(denied, alice, 'deny', { via: 'api' });
      assert.deepEqual(errors(await raw.untilReady(1)), ['42501']);
      // Another statement of the Query needs approval, the COPY not: the whole Query waits.
      raw.write(query('copy items from stdin; delete from items where id = 1'), copyData('9\n'), copyDone);
      const deleteHeld = await heldRaw(raw, 'items', []);
      await service().vote(deleteHeld, alice, 'deny', { via: 'api' });
      assert.deepEqual(errors(await raw.untilReady(1)), ['42501']);
      assert.deepEqual(await ids('staged'), [1, 2]);
      assert.deepEqual(await ids('items'), []);
      // Approved, the same Query runs with the rows sent early.
      raw.write(query('insert into staged values (5); copy staged from stdin'), copyData('3\n'), copyDone);
      const approved = await heldRaw(raw, 'staged', [1, 2]);
      await service().vote(approved, alice, 'approve', { via: 'api' });
      const done = await raw.untilReady(1);
      assert.deepEqual(errors(done), []);
      assert.deepEqual(await ids('staged'), [1, 2, 3, 5]);
    } finally {
      raw.close();
    }
  });

  test('extended protocol (a Sync before the data, as libpq): held at Execute, the rows land only once approved', async () => {
    const raw = await rawLogin(proxy.port, 'agent', proxy.database, proxy.token);
    try {
      const batch = [parse('copy staged from stdin'), bindMessage('', ''), execute, syncMessage(), copyData('7\n'), copyDone, syncMessage()];
      raw.write(...batch);
      const denied = await heldRaw(raw, 'staged', [1, 2, 3, 5]);
      await service().vote(denied, alice, 'deny', { via: 'api' });
      assert.deepEqual(errors(await raw.untilReady(2)), ['42501']);
      raw.write(...batch);
      const approved = await heldRaw(raw, 'staged', [1, 2, 3, 5]);
      await service().vote(approved, alice, 'approve', { via: 'api' });
      assert.deepEqual(errors(await raw.untilReady(1)), []);
      assert.deepEqual(await ids('staged'), [1, 2, 3, 5, 7]);
      // The data, CopyDone and a Flush sent at once; the batch's last Sync only once the COPY completed.
      raw.write(...batch.slice(0, -1), flushMessage());
      const third = await heldRaw(raw, 'staged', [1, 2, 3, 5, 7]);
      await service().vote(third, alice, 'approve', { via: 'api' });
      assert.equal((await raw.until('C')).at(-1)?.type, 'C');
      raw.write(syncMessage());
      assert.deepEqual(errors(await raw.untilReady(1)), []);
      assert.deepEqual(await ids('staged'), [1, 2, 3, 5, 7, 7]);
      raw.write(query('select 1'));
      assert.deepEqual(errors(await raw.untilReady(1)), []);
    } finally {
      raw.close();
    }
  });
});
