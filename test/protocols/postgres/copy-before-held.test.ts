// Regression: an extended-protocol COPY (FROM STDIN with its data, or TO STDOUT) followed
// in the same batch by a statement held for approval. The database sends an Execute's
// answer only at Sync or Flush, and the gateway held the Sync's way with the statement:
// the COPY never completed for the client while the review was open, its statement
// timer ran on, and once past limits.statementTimeout the gateway's cancel rolled the
// COPY's rows back after reporting it complete (and the approved statement then failed,
// 34000 portal "" does not exist). Now the COPY completes before the hold, and the held
// statement waits for its review as a lone statement does.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type pg from 'pg';
import { bindMessage, cstring, int16, int32, message, parseNoticeFields, syncMessage, type Frame } from '../../../src/protocols/postgres/codec.js';
import { rawLogin, type RawClient } from '../../helpers/pg-raw.js';
import { startTestProxy, withProxyClients, type TestProxy } from '../../helpers/postgres-proxy.js';
import { approveDeletes, testApprovals, reviewerAlice } from '../../helpers/pg-approvals.js';

const approvals = testApprovals();
const alice = reviewerAlice;
const statementTimeoutMs = 400;

const proxyOrSkip = await startTestProxy({ policy: approveDeletes, approvals, statementTimeoutMs });
const skip = 'skip' in proxyOrSkip ? proxyOrSkip.skip : undefined;

const parse = (sql: string) => message('P', Buffer.concat([cstring(''), cstring(sql), int16(0)]));
const execute = message('E', Buffer.concat([cstring(''), int32(0)]));
const run = (sql: string) => [parse(sql), bindMessage('', ''), execute];
const types = (frames: Frame[]) => frames.map((f) => f.type).join('');
const errors = (frames: Frame[]) => frames.filter((f) => f.type === 'E').map((f) => `${parseNoticeFields(f.body).get('C')} ${parseNoticeFields(f.body).get('M')}`);
const reviewIn = (frames: Frame[]) => /review (rv_[0-9a-z]+)/.exec(parseNoticeFields(frames.find((f) => f.type === 'N')?.body ?? Buffer.alloc(0)).get('M') ?? '')?.[1];

describe('PostgreSQL proxy: an extended COPY before a statement held for approval', { skip }, () => {
  const proxy = proxyOrSkip as TestProxy;
  let direct: pg.Client;
  withProxyClients(proxy, 'create table items (id int)', (clients) => {
    direct = clients.direct;
  });
  const ids = async () => (await direct.query<{ id: number }>('select id from items order by id')).rows.map((r) => r.id);

  /** Reads until the COPY's CommandComplete (the held DELETE's review notice on the way), then waits past statementTimeout and approves. */
  async function completesThenApprove(raw: RawClient): Promise<Frame[]> {
    const upToCopy = await raw.until('C');
    assert.equal(upToCopy.at(-1)?.type, 'C', `the COPY completes while the DELETE is held, got ${types(upToCopy)} ${errors(upToCopy).join('; ')}`);
    const id = reviewIn(upToCopy) ?? reviewIn(await raw.until('N'));
    assert.ok(id, 'a NoticeResponse names the review');
    // The review stays open longer than limits.statementTimeout: only running statements count.
    await new Promise((r) => setTimeout(r, statementTimeoutMs * 3));
    await proxy.approvals!.service.vote(id, alice, 'approve', { via: 'api' });
    return [...upToCopy, ...(await raw.untilReady(1))];
  }

  test('COPY FROM STDIN with its data, then a held DELETE in the same batch: the COPY completes, the DELETE waits for its review, both are committed', async () => {
    await direct.query('truncate items; insert into items values (1)');
    const raw = await rawLogin(proxy.port, 'agent', proxy.database, proxy.token);
    try {
      raw.write(...run('copy items from stdin'), message('d', Buffer.from('7\n8\n')), message('c'), ...run('delete from items where id = 1'), syncMessage());
      const frames = await completesThenApprove(raw);
      assert.deepEqual(errors(frames), []);
      assert.match(types(frames), /12GC.*12CZ$/);
      assert.deepEqual(await ids(), [7, 8]);
      raw.write(message('Q', cstring('select 1')));
      assert.deepEqual(errors(await raw.untilReady(1)), []);
    } finally {
      raw.close();
    }
  });

  test('COPY TO STDOUT, then a held DELETE in the same batch: the rows reach the client before the DELETE waits for its review', async () => {
    await direct.query('truncate items; insert into items values (1), (2)');
    const raw = await rawLogin(proxy.port, 'agent', proxy.database, proxy.token);
    try {
      raw.write(...run('copy items to stdout'), ...run('delete from items where id = 1'), syncMessage());
      const frames = await completesThenApprove(raw);
      assert.deepEqual(errors(frames), []);
      assert.equal(frames.filter((f) => f.type === 'd').map((f) => f.body.toString()).join(''), '1\n2\n');
      assert.deepEqual(await ids(), [2]);
    } finally {
      raw.close();
    }
  });
});
