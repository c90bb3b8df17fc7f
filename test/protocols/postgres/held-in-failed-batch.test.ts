// Regression: a statement held for approval behind one that fails, in one pipelined
// batch (Parse/Bind/Execute … Parse/Bind/Execute … Sync), or in one Query. The held
// statement is decided, held and approved before the earlier one's error comes back;
// the database then skips it. Its approval was spent (review `executed`) on a statement
// that never ran, and running it again opened a second review. Now an approval used by
// a statement the database did not run is given back: the review is `approved` again,
// and the same statement sent again runs on it at once, with no new review.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type pg from 'pg';
import { bindMessage, cstring, int16, int32, message, parseNoticeFields, syncMessage, type Frame } from '../../../src/protocols/postgres/codec.js';
import { rawLogin } from '../../helpers/pg-raw.js';
import { startTestProxy, withProxyClients, type TestProxy } from '../../helpers/postgres-proxy.js';
import { approveDeletes, testApprovals, reviewerAlice } from '../../helpers/pg-approvals.js';

const approvals = testApprovals();
const alice = reviewerAlice;

const proxyOrSkip = await startTestProxy({ policy: approveDeletes, approvals });
const skip = 'skip' in proxyOrSkip ? proxyOrSkip.skip : undefined;

const parse = (sql: string) => message('P', Buffer.concat([cstring(''), cstring(sql), int16(0)]));
const execute = message('E', Buffer.concat([cstring(''), int32(0)]));
const run = (sql: string) => [parse(sql), bindMessage('', ''), execute];
const errors = (frames: Frame[]) => frames.filter((f) => f.type === 'E').map((f) => `${parseNoticeFields(f.body).get('C')} ${parseNoticeFields(f.body).get('M')}`);
const notices = (frames: Frame[]) => frames.filter((f) => f.type === 'N').map((f) => parseNoticeFields(f.body).get('M') ?? '');
const reviewIn = (frames: Frame[]) => /review (rv_[0-9a-z]+)/.exec(notices(frames).join('\n'))?.[1];

describe('PostgreSQL: a statement approved behind one that fails in its batch keeps its approval', { skip }, () => {
  const proxy = proxyOrSkip as TestProxy;
  const service = () => proxy.approvals!.service;
  let direct: pg.Client;
  withProxyClients(proxy, 'create table items (id int)', (clients) => {
    direct = clients.direct;
  });
  const ids = async () => (await direct.query<{ id: number }>('select id from items order by id')).rows.map((r) => r.id);

  test('extended batch: an earlier Execute fails after the later DELETE was approved; the review stays approved and the DELETE sent again runs on it', async () => {
    await direct.query('truncate items; insert into items values (1), (2)');
    const raw = await rawLogin(proxy.port, 'agent', proxy.database, proxy.token);
    try {
      // The failing statement takes a moment, so its error comes after the DELETE is held.
      raw.write(...run('select pg_sleep(0.2), 1/0'), ...run('delete from items where id = 1'), syncMessage());
      const held = await raw.until('N');
      const id = reviewIn(held);
      assert.ok(id, `a NoticeResponse names the review, got ${JSON.stringify(notices(held))}`);
      await service().vote(id, alice, 'approve', { via: 'api' });
      const answer = [...held, ...(await raw.untilReady(1))];
      assert.deepEqual(errors(answer), ['22012 division by zero']);
      assert.deepEqual(await ids(), [1, 2], 'the DELETE did not run');
      assert.equal((await service().get(id))!.state, 'approved', 'the approval was not spent on a statement the database skipped');

      raw.write(...run('delete from items where id = 1'), syncMessage());
      const again = await raw.untilReady(1);
      assert.deepEqual(errors(again), []);
      assert.deepEqual(notices(again), [], 'no new review: the approval given is used');
      assert.deepEqual(await ids(), [2]);
      assert.equal((await service().get(id))!.state, 'executed');
    } finally {
      raw.close();
    }
  });

  test('a Query of several statements: an earlier one fails after the later DELETE was approved; the review stays approved', async () => {
    await direct.query('truncate items; insert into items values (1), (2)');
    const raw = await rawLogin(proxy.port, 'agent', proxy.database, proxy.token);
    try {
      raw.write(message('Q', cstring('select 1/0; delete from items where id = 2')));
      const held = await raw.until('N');
      const id = reviewIn(held);
      assert.ok(id, `a NoticeResponse names the review, got ${JSON.stringify(notices(held))}`);
      await service().vote(id, alice, 'approve', { via: 'api' });
      assert.deepEqual(errors(await raw.untilReady(1)), ['22012 division by zero']);
      assert.deepEqual(await ids(), [1, 2]);
      assert.equal((await service().get(id))!.state, 'approved');

      raw.write(message('Q', cstring('delete from items where id = 2')));
      const again = await raw.untilReady(1);
      assert.deepEqual(errors(again), []);
      assert.deepEqual(notices(again), []);
      assert.deepEqual(await ids(), [1]);
    } finally {
      raw.close();
    }
  });
});
