// require_approval on a PostgreSQL connection, in process against the machine's real
// PostgreSQL: the statement is held, the client gets a NoticeResponse with the review
// URL, and a reviewer's vote (through the approvals service, as the admin API calls it)
// lets it run or refuses it. Timeout, cancel, re-run, parameters and the session
// staying usable are each checked. The policy asks for approval for DELETE and
// TRUNCATE; the approvals config is the parsed `approvals:` section.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import type { Identity } from '../../../src/exchange/index.js';
import { startTestProxy, type TestProxy } from '../../helpers/postgres-proxy.js';
import { approveWrites, testApprovals, reviewerAlice } from '../../helpers/pg-approvals.js';

// approve-truncate: a short hold, for the timeout cases.
const approvals = testApprovals({ rules: { 'approve-truncate': { holdFor: 400 } } });

const proxyOrSkip = await startTestProxy({ policy: approveWrites, approvals });
const skip = 'skip' in proxyOrSkip ? proxyOrSkip.skip : undefined;

const alice = reviewerAlice;

describe('PostgreSQL statements held for approval', { skip }, () => {
  const proxy = proxyOrSkip as TestProxy;
  const service = () => proxy.approvals!.service;
  const clients: pg.Client[] = [];

  async function connect(): Promise<{ client: pg.Client; notices: string[] }> {
    const client = new pg.Client(proxy.clientConfig());
    client.on('error', () => undefined);
    const notices: string[] = [];
    client.on('notice', (n) => notices.push(n.message ?? ''));
    await client.connect();
    clients.push(client);
    return { client, notices };
  }

  /** The review id the NoticeResponse named, once it has come. */
  async function heldReview(notices: string[], index = 0): Promise<string> {
    for (let i = 0; i < 200 && notices.length <= index; i++) await new Promise((r) => setTimeout(r, 25));
    const match = /review (rv_[0-9a-z]+), (\S+)$/.exec(notices[index] ?? '');
    assert.ok(match, `a NoticeResponse naming the review, got ${JSON.stringify(notices)}`);
    assert.equal(match[2], `https://gatehouse-admin.example/api/reviews/${match[1]}`);
    return match[1]!;
  }

  const count = async (c: pg.Client) => (await c.query('select count(*)::int as n from held_rows')).rows[0].n as number;

  before(async () => {
    const direct = new pg.Client({ connectionString: proxy.directUrl });
    await direct.connect();
    await direct.query('create table held_rows (id int primary key, note text); insert into held_rows select g, \'row \' || g from generate_series(1, 20) g');
    await direct.end();
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    await proxy.close();
  });

  test('approved while held: the statement runs and answers; the NoticeResponse carried the review URL; the record names the review', async () => {
    const { client, notices } = await connect();
    const running = client.query('delete from held_rows where id = 1 returning note');
    const id = await heldReview(notices);
    assert.equal((await service().get(id))!.state, 'pending');
    assert.match(notices[0]!, /^This statement needs approval \(rule: approve-deletes\): review rv_/);
    await service().vote(id, alice, 'approve', { via: 'api' });
    const result = await running;
    assert.deepEqual(result.rows, [{ note: 'row 1' }]);
    assert.equal((await service().get(id))!.state, 'executed');
    assert.equal(await count(client), 19);
    await new Promise((r) => setTimeout(r, 100));
    const recorded = proxy.observed.find((o) => o.exchange.approval?.reviewId === id);
    assert.equal(recorded?.exchange.operation, 'sql.delete');
    assert.deepEqual(recorded?.exchange.approval, { reviewId: id, via: 'held' });
    assert.equal(recorded?.outcome.errorCode, undefined);
  });

  test('approved after a wait: the record of the statement ends after the approval (its duration counts the hold), for a Query and an Execute', async () => {
    const { client, notices } = await connect();
    const simple = client.query('delete from held_rows where id = 3');
    const first = await heldReview(notices);
    await new Promise((r) => setTimeout(r, 400));
    const votedAt = Date.now();
    await service().vote(first, alice, 'approve', { via: 'api' });
    await simple;
    const extended = client.query('delete from held_rows where id = $1', [4]);
    const second = await heldReview(notices, 1);
    await new Promise((r) => setTimeout(r, 400));
    const secondVotedAt = Date.now();
    await service().vote(second, alice, 'approve', { via: 'api' });
    await extended;
    await new Promise((r) => setTimeout(r, 100));
    for (const [id, voted] of [[first, votedAt], [second, secondVotedAt]] as const) {
      const recorded = proxy.observed.find((o) => o.exchange.approval?.reviewId === id && o.outcome.errorCode === undefined);
      assert.ok(recorded, `the record of the statement approved by ${id}`);
      assert.ok(recorded.outcome.durationMs >= 400, `duration ${recorded.outcome.durationMs} ms counts the hold`);
      assert.ok(recorded.exchange.startedAt + recorded.outcome.durationMs >= voted, 'the record ends after the approval');
    }
    await client.query("insert into held_rows values (3, 'row 3'), (4, 'row 4')"); // as the tests after this one expect
  });

  test('security: a DELETE inside a WITH (a SELECT on the outside) is held as a DELETE, in a Query and at Execute', async () => {
    const { client, notices } = await connect();
    const simple = client.query('with d as (delete from held_rows where id = 7 returning id) select * from d');
    const first = await heldReview(notices);
    assert.equal((await service().get(first))!.operation, 'sql.delete');
    await service().vote(first, alice, 'deny', { via: 'api' });
    await assert.rejects(simple, { code: '42501' });
    const extended = client.query('with d as (delete from held_rows where id = $1 returning id) select * from d', [7]);
    const second = await heldReview(notices, 1);
    await service().vote(second, alice, 'deny', { via: 'api' });
    await assert.rejects(extended, { code: '42501' });
    assert.deepEqual((await client.query('select count(*)::int as n from held_rows where id = 7')).rows, [{ n: 1 }], 'nothing was deleted');
  });

  test('denied: ErrorResponse 42501 naming the review, nothing run, the session goes on', async () => {
    const { client, notices } = await connect();
    const running = client.query('delete from held_rows where id = 2');
    const id = await heldReview(notices);
    await service().vote(id, alice, 'deny', { via: 'api', comment: 'not today' });
    await assert.rejects(running, (error: pg.DatabaseError) => {
      assert.equal(error.code, '42501');
      assert.equal(error.message, `Review ${id} was denied by key:alice: the statement was not run (review ${id}, https://gatehouse-admin.example/api/reviews/${id}). (rule: approve-deletes)`);
      return true;
    });
    assert.equal(await count(client), 19);
    assert.deepEqual((await client.query('select 1 as still')).rows, [{ still: 1 }]);
  });

  test('not approved in time: 57014; run again, it waits on the same review, and a late approval is used', async () => {
    const { client, notices } = await connect();
    await assert.rejects(client.query('truncate held_rows'), (error: pg.DatabaseError) => {
      assert.equal(error.code, '57014');
      assert.match(error.message, /^The statement was not approved in time \(review rv_[0-9a-z]+, https:\/\/gatehouse-admin\.example\/api\/reviews\/rv_[0-9a-z]+ is still pending\); it was not run\. Run it again to wait on the same review\.$/);
      return true;
    });
    const id = await heldReview(notices);
    assert.equal(await count(client), 19, 'nothing was truncated');
    assert.deepEqual((await client.query('select 2 as usable')).rows, [{ usable: 2 }]);
    // Approved after the hold ended; the re-run uses it (same session, same statement).
    await service().vote(id, alice, 'approve', { via: 'api' });
    await client.query('truncate held_rows');
    assert.equal(await count(client), 0);
    assert.equal((await service().get(id))!.state, 'executed');
    assert.equal(await heldReview(notices, 0), id);
    // Refill for the tests after this one.
    await client.query("insert into held_rows select g, 'row ' || g from generate_series(1, 20) g");
  });

  test('not approved in time inside BEGIN: the message says the block failed (ROLLBACK, then run the transaction again), not "run it again"; so done, the late approval is used', async () => {
    const { client, notices } = await connect();
    await client.query('begin');
    await assert.rejects(client.query('truncate held_rows'), (error: pg.DatabaseError) => {
      assert.equal(error.code, '57014');
      assert.match(error.message, /^The statement was not approved in time \(review rv_[0-9a-z]+, \S+ is still pending\); it was not run\. Its transaction block has failed with it: ROLLBACK, then run the transaction again to wait on the same review\.$/);
      return true;
    });
    const id = await heldReview(notices);
    await client.query('rollback');
    await service().vote(id, alice, 'approve', { via: 'api' });
    await client.query('begin');
    await client.query('truncate held_rows');
    await client.query('rollback');
    assert.equal((await service().get(id))!.state, 'executed');
    assert.equal(await count(client), 20);
  });

  test('extended protocol: held at Execute; the approval is bound to the parameter values', async () => {
    const { client, notices } = await connect();
    const first = client.query('delete from held_rows where id = $1 returning id', [5]);
    const id = await heldReview(notices);
    // The reviewer sees which row: the parameter values are in the review's preview.
    assert.equal((await service().get(id))!.promptPreview, "delete from held_rows where id = $1 returning id\n-- parameters: $1 = '5'");
    await service().vote(id, alice, 'approve', { via: 'api' });
    assert.deepEqual((await first).rows, [{ id: 5 }]);
    // Another value is another review.
    const second = client.query('delete from held_rows where id = $1 returning id', [6]);
    const other = await heldReview(notices, 1);
    assert.notEqual(other, id);
    await service().vote(other, alice, 'deny', { via: 'api' });
    await assert.rejects(second, { code: '42501' });
    assert.deepEqual((await client.query('select count(*)::int as n from held_rows where id in (5, 6)')).rows, [{ n: 1 }]);
  });

  test('a CancelRequest ends the hold with 57014; the session goes on', async () => {
    const { client, notices } = await connect();
    const started = Date.now();
    const running = client.query('delete from held_rows where id = 7');
    await heldReview(notices);
    await new Promise<void>((resolve, reject) => {
      const con = new (pg as unknown as { Connection: new () => { connect(port: number, host: string): void; on(e: string, f: () => void): void; cancel(pid: number, key: number): void; end(): void } }).Connection();
      con.on('connect', () => {
        const keys = client as unknown as { processID: number; secretKey: number };
        con.cancel(keys.processID, keys.secretKey);
        con.end();
        resolve();
      });
      con.on('error', reject);
      con.connect(proxy.port, '127.0.0.1');
    });
    await assert.rejects(running, (error: pg.DatabaseError) => {
      assert.equal(error.code, '57014');
      assert.match(error.message, /^The statement was cancelled while it waited for approval \(review rv_/);
      return true;
    });
    assert.ok(Date.now() - started < 10_000, 'well before holdFor (20 s)');
    assert.deepEqual((await client.query('select count(*)::int as n from held_rows where id = 7')).rows, [{ n: 1 }]);
  });

  test('in a Query of several statements, each that needs approval is held; one denial refuses the whole Query', async () => {
    const { client, notices } = await connect();
    const running = client.query('select 1; delete from held_rows where id = 8; delete from held_rows where id = 9');
    const first = await heldReview(notices);
    await service().vote(first, alice, 'approve', { via: 'api' });
    const second = await heldReview(notices, 1);
    await service().vote(second, alice, 'deny', { via: 'api' });
    await assert.rejects(running, { code: '42501' });
    assert.deepEqual((await client.query('select count(*)::int as n from held_rows where id in (8, 9)')).rows, [{ n: 2 }]);
  });

  test('a review cancelled while its statement is held: 42501 saying the statement was not run; run again, a new review', async () => {
    const { client, notices } = await connect();
    const held = client.query('delete from held_rows where id = 10');
    const id = await heldReview(notices);
    const requester: Identity = { subject: 'key:agent', groups: ['dba'], kind: 'agent', method: 'api_key', credentialId: 'agent' };
    await service().cancel(id, requester);
    await assert.rejects(held, (error: pg.DatabaseError) => {
      assert.equal(error.code, '42501');
      assert.equal(error.message, `Review ${id} was cancelled: the statement was not run (review ${id}, https://gatehouse-admin.example/api/reviews/${id}). Run it again to ask again. (rule: approve-deletes)`);
      return true;
    });
    const again = client.query('delete from held_rows where id = 10');
    const next = await heldReview(notices, 1);
    assert.notEqual(next, id);
    await service().vote(next, alice, 'deny', { via: 'api' });
    await assert.rejects(again, { code: '42501' });
    assert.deepEqual((await client.query('select count(*)::int as n from held_rows where id = 10')).rows, [{ n: 1 }]);
  });

  test('a client that leaves while held ends the hold; nothing runs', async () => {
    const { client, notices } = await connect();
    const running = client.query('delete from held_rows where id = 10').catch(() => undefined);
    const id = await heldReview(notices);
    (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    await running;
    await new Promise((r) => setTimeout(r, 300));
    await service().vote(id, alice, 'approve', { via: 'api' });
    const { client: other } = await connect();
    assert.deepEqual((await other.query('select count(*)::int as n from held_rows where id = 10')).rows, [{ n: 1 }]);
    const refused = proxy.observed.find((o) => o.exchange.approval?.reviewId === id);
    assert.equal(refused?.outcome.errorCode, 'client_closed');
  });

  test('in a failed transaction block a statement that needs approval is refused with 25P02 at once: no review, no approval spent on a statement that could not run', async () => {
    const { client, notices } = await connect();
    const before = (await service().list({ state: 'pending' })).items.length;
    await client.query('begin');
    await assert.rejects(client.query('select 1 / 0'), { code: '22012' });
    await assert.rejects(client.query('delete from held_rows where id = 12'), (error: pg.DatabaseError) => {
      assert.equal(error.code, '25P02');
      assert.equal(error.detail, 'gatehouse code: transaction_aborted');
      assert.match(error.message, /^current transaction is aborted, commands ignored until end of transaction block: the statement was not held for approval/);
      return true;
    });
    // Extended: the database refuses the Parse itself (25P02); the Execute is not held either.
    await assert.rejects(client.query('delete from held_rows where id = $1', [12]), { code: '25P02' });
    assert.deepEqual(notices, []);
    assert.equal((await service().list({ state: 'pending' })).items.length, before);
    await client.query('rollback');
    // A ROLLBACK TO SAVEPOINT in the same Query leaves the failed state: held as usual.
    await client.query('begin');
    await client.query('savepoint s');
    await assert.rejects(client.query('select 1 / 0'), { code: '22012' });
    const held = client.query('rollback to savepoint s; delete from held_rows where id = 12');
    const id = await heldReview(notices);
    await service().vote(id, alice, 'approve', { via: 'api' });
    await held;
    await client.query('rollback');
    assert.deepEqual((await client.query('select count(*)::int as n from held_rows where id = 12')).rows, [{ n: 1 }]);
    const recorded = proxy.observed.filter((o) => o.outcome.errorCode === 'transaction_aborted');
    assert.ok(recorded.length >= 1, 'the refusal is recorded');
  });

  test('a client that left while held, back in a new session: the approval given meanwhile runs the statement once, with no notice that it waits', async () => {
    // An agent that crashed (or timed out) mid-hold reconnects and runs the same
    // statement: it must not be told "needs approval … waits" for a review already approved.
    const { client, notices } = await connect();
    const running = client.query('delete from held_rows where id = 11').catch(() => undefined);
    const id = await heldReview(notices);
    (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    await running;
    await service().vote(id, alice, 'approve', { via: 'api' });
    const { client: back, notices: backNotices } = await connect();
    const result = await back.query('delete from held_rows where id = 11');
    assert.equal(result.rowCount, 1);
    assert.deepEqual(backNotices, []);
    assert.equal((await service().get(id))!.state, 'executed');
    // Used once: the same statement again is held on a new review.
    const again = back.query('delete from held_rows where id = 11');
    const next = await heldReview(backNotices);
    assert.notEqual(next, id);
    await service().vote(next, alice, 'deny', { via: 'api' });
    await assert.rejects(again, { code: '42501' });
  });
});
