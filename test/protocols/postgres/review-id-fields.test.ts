// The review of a held statement in a field of its own: the NoticeResponse that says the
// statement is held, and the ErrorResponse when it is not approved in time, denied or
// cancelled, carry `gatehouse review: <id> <url>` in their hint (H) field, beside
// `gatehouse code: <code>` in the detail of the error. The id used to be only inside the
// message text, which a client or an agent had to pick out of a sentence.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import pg from 'pg';
import { startTestProxy, type TestProxy } from '../../helpers/postgres-proxy.js';
import { approveWrites, testApprovals, reviewerAlice } from '../../helpers/pg-approvals.js';

const approvals = testApprovals({ rules: { 'approve-truncate': { holdFor: 300 } } });
const alice = reviewerAlice;
const proxyOrSkip = await startTestProxy({ policy: approveWrites, approvals });
const reviewHint = /^gatehouse review: (rv_[0-9a-z]+) (https:\/\/gatehouse-admin\.example\/api\/reviews\/rv_[0-9a-z]+)$/;

describe('PostgreSQL: the review of a held statement in the hint field', { skip: 'skip' in proxyOrSkip ? proxyOrSkip.skip : undefined }, () => {
  const proxy = proxyOrSkip as TestProxy;
  after(() => proxy.close());

  /** A session with table `held`, and the NoticeResponses it gets from then on. */
  async function connect(): Promise<{ client: pg.Client; notices: { message?: string | undefined; hint?: string | undefined }[] }> {
    const client = new pg.Client(proxy.clientConfig());
    await client.connect();
    await client.query('create table if not exists held (id int)');
    const notices: { message?: string | undefined; hint?: string | undefined }[] = [];
    client.on('notice', (n) => notices.push(n));
    return { client, notices };
  }

  test('not approved in time: the notice and the 57014 error name the same review in their hint', async () => {
    const { client, notices } = await connect();
    try {
      const error = (await client.query('truncate held').catch((e: unknown) => e)) as pg.DatabaseError;
      assert.equal(error.code, '57014');
      const held = reviewHint.exec(notices[0]?.hint ?? '');
      assert.ok(held, `the notice's hint names the review: ${JSON.stringify(notices[0])}`);
      assert.match(notices[0]!.message!, new RegExp(`review ${held[1]}, `));
      assert.equal(error.hint, notices[0]!.hint);
      assert.equal(error.detail, 'gatehouse code: approval_required');
      assert.equal((await proxy.approvals!.service.get(held[1]!))!.state, 'pending');
    } finally {
      await client.end();
    }
  });

  test('denied: the 42501 error names the review in its hint', async () => {
    const { client, notices } = await connect();
    try {
      const running = client.query('delete from held where id = $1', [7]).catch((e: unknown) => e);
      for (let i = 0; i < 200 && notices.length === 0; i++) await new Promise((r) => setTimeout(r, 25));
      const held = reviewHint.exec(notices[0]?.hint ?? '');
      assert.ok(held, `the notice's hint names the review: ${JSON.stringify(notices[0])}`);
      await proxy.approvals!.service.vote(held[1]!, alice, 'deny', { via: 'api' });
      const error = (await running) as pg.DatabaseError;
      assert.equal(error.code, '42501');
      assert.equal(error.hint, `gatehouse review: ${held[1]} ${held[2]}`);
      assert.equal(error.detail, 'gatehouse code: approval_denied');
    } finally {
      await client.end();
    }
  });
});
