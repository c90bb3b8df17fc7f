// SQLite full-text search with the index kept in batches (migrations 0010 and 0013,
// search-indexer.ts), by a background-priority thread in the gateway
// (search-index-thread.ts): a recorded exchange is found by its words before and after
// the indexer has run, an answer still streaming is not indexed until it ends, and
// deletes and re-edits keep the FTS5 index consistent (FTS5's own integrity check).

import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { createRecorder, GroupCommitWriter, listExchanges, startSearchIndexer, type Recorder, type SearchIndexer } from '../../src/audit/index.js';
import { startSearchIndexThread } from '../../src/audit/search-index-thread.js';
import { atNormalPriority, lowerThisThreadPriority, setThisThreadPriority } from '../../src/audit/thread-priority.js';
import { newId } from '../../src/exchange/ids.js';
import type { Decision, Exchange, ExchangeOutcome } from '../../src/exchange/index.js';
import { openStore, type Store } from '../../src/store/index.js';
import { createTestSqliteDatabase, type TestDatabase } from '../helpers/databases.js';

const allow: Decision = { effect: 'allow', rules: [], reason: 'rule-matched', policyVersion: 'pv1' };

function exchangeSaying(text: string, startedAt = Date.now()): Exchange {
  return {
    id: newId('ex'),
    sessionId: 'ses_search',
    protocol: 'http',
    connection: 'openai',
    operation: 'chat.completions',
    startedAt,
    client: { address: '127.0.0.1' },
    facts: { stream: false, text },
  };
}

const answer = (text: string): ExchangeOutcome => ({ status: 200, complete: true, bytesIn: 10, bytesOut: 20, ttfbMs: 1, durationMs: 3, responseText: text });

describe('full-text search with batched indexing (SQLite)', () => {
  let database: TestDatabase;
  let store: Store;
  let writer: GroupCommitWriter;
  let recorder: Recorder;
  let indexer: SearchIndexer;

  beforeEach(async () => {
    database = await createTestSqliteDatabase();
    store = await openStore(database.config);
    writer = new GroupCommitWriter(store.db, { sqlitePath: store.sqlitePath });
    recorder = createRecorder(store.db, { writer });
    // A long interval: the test runs the passes itself.
    indexer = startSearchIndexer(store.sqlitePath!, { intervalMs: 3_600_000 });
  });
  afterEach(async () => {
    indexer.close();
    await writer.close();
    await store.close();
    await database.cleanup();
  });

  const queued = async () => Number((await sql<{ n: number }>`select count(*) as n from exchanges_fts_pending`.execute(store.db)).rows[0]!.n);
  const search = async (text: string) => (await listExchanges(store.db, { text })).items.map((item) => item.id).sort();
  const integrity = () => sql`insert into exchanges_fts(exchanges_fts) values ('integrity-check')`.execute(store.db);

  test('found by prompt and answer words before and after indexing; the index is consistent', async () => {
    const quarterly = exchangeSaying('Summarise the quarterly report for Zanzibar');
    const haiku = exchangeSaying('Write a haiku about autumn');
    for (const [exchange, reply] of [[quarterly, 'Revenue grew in Zanzibar'], [haiku, 'Leaves fall quietly']] as const) {
      await recorder.open(exchange, allow, { method: 'POST', path: '/v1/chat/completions', headers: {}, body: undefined, truncated: false });
      await recorder.finish(exchange, answer(reply));
    }
    assert.equal(await queued(), 2);
    assert.deepEqual(await search('zanzibar quarterly'), [quarterly.id]);
    assert.deepEqual(await search('quietly'), [haiku.id]);

    assert.equal(indexer.runOnce(), 2);
    assert.equal(await queued(), 0);
    assert.deepEqual(await search('zanzibar quarterly'), [quarterly.id]);
    assert.deepEqual(await search('quietly'), [haiku.id]);
    assert.deepEqual(await search('nowhere'), []);
    await integrity();
  });

  test('an answer still streaming waits; once it ends it is indexed with its final text', async () => {
    const streaming = exchangeSaying('Tell me about glaciers');
    await recorder.open(streaming, allow, undefined as never);
    await recorder.progress(streaming, { bytesOut: 5, responseText: 'Glaciers are', durationMs: 1 });
    assert.equal(indexer.runOnce(), 0, 'not indexed while it streams');
    assert.deepEqual(await search('glaciers'), [streaming.id]);
    await recorder.finish(streaming, answer('Glaciers are rivers of ice'));
    assert.equal(indexer.runOnce(), 1);
    assert.deepEqual(await search('rivers ice'), [streaming.id]);
    await integrity();
  });

  test('an exchange older than the stale limit is indexed even if it never ended (a crash)', async () => {
    const cutOff = exchangeSaying('Explain photosynthesis', Date.now() - 10 * 60_000);
    await recorder.open(cutOff, allow, undefined as never);
    assert.equal(indexer.runOnce(), 1);
    assert.deepEqual(await search('photosynthesis'), [cutOff.id]);
    await integrity();
  });

  test('a row inserted already finished (a refusal, a journal batch) is queued, and found before and after indexing', async () => {
    const refused = exchangeSaying('Dump the customer table of Tasmania');
    await recorder.refuse(refused, allow, undefined, { status: 403, complete: true, bytesIn: 10, bytesOut: 0, ttfbMs: undefined, durationMs: 1, errorCode: 'policy_denied' });
    assert.equal(await queued(), 1);
    assert.equal(indexer.queuedRows(), 1);
    assert.deepEqual(await search('tasmania customer'), [refused.id]);
    assert.equal(indexer.runOnce(), 1);
    const indexed = await sql<{ n: number }>`select count(*) as n from exchanges_fts where exchanges_fts match 'tasmania'`.execute(store.db);
    assert.equal(Number(indexed.rows[0]!.n), 1);
    assert.deepEqual(await search('tasmania customer'), [refused.id]);
    await integrity();
  });

  test('the gateway indexes on a thread of its own at the lowest priority, and catches up', async () => {
    const exchanges = Array.from({ length: 450 }, (_, i) => exchangeSaying(`report number ${i} about Ouagadougou`));
    for (const exchange of exchanges) await recorder.refuse(exchange, allow, undefined, { status: 403, complete: true, bytesIn: 1, bytesOut: 0, ttfbMs: undefined, durationMs: 1 });
    assert.equal(await queued(), 450);
    const niceBefore = threadNices();
    const thread = await startSearchIndexThread(store.sqlitePath!, { intervalMs: 20 });
    try {
      // One more thread than before, at nice 19 (at 0 only while it holds the write lock,
      // so it is looked at again if caught in a transaction); every other thread as it was.
      const moreAt19 = () => threadNices().filter((n) => n === 19).length - niceBefore.filter((n) => n === 19).length;
      for (let i = 0; i < 200 && moreAt19() !== 1; i++) await sleep(1);
      assert.equal(moreAt19(), 1, `thread nice values: ${threadNices().join(',')}`);
      assert.equal(thread.background, true);
      for (let i = 0; i < 500 && (await queued()) > 0; i++) await sleep(20);
      assert.equal(await queued(), 0, 'every queued row indexed');
      for (let i = 0; i < 100 && thread.queuedRows() > 0; i++) await sleep(20);
      assert.equal(thread.queuedRows(), 0, 'the count it publishes follows');
    } finally {
      await thread.close();
    }
    const indexed = await sql<{ n: number }>`select count(*) as n from exchanges_fts where exchanges_fts match 'ouagadougou'`.execute(store.db);
    assert.equal(Number(indexed.rows[0]!.n), 450);
    assert.equal((await listExchanges(store.db, { text: 'ouagadougou report', limit: 1000 })).items.length, 450);
    await integrity();
  });

  test('a changed indexed row is queued again, and deleted rows leave the index', async () => {
    const a = exchangeSaying('alpha bravo');
    const b = exchangeSaying('charlie delta');
    for (const exchange of [a, b]) {
      await recorder.open(exchange, allow, undefined as never);
      await recorder.finish(exchange, answer('ok'));
    }
    indexer.runOnce();
    await sql`update exchanges set prompt_text = 'echo foxtrot' where id = ${a.id}`.execute(store.db);
    assert.equal(await queued(), 1);
    assert.deepEqual(await search('foxtrot'), [a.id]);
    assert.deepEqual(await search('bravo'), []);
    // One deleted while indexed, one while queued.
    await sql`delete from exchanges`.execute(store.db);
    assert.equal(await queued(), 0);
    await integrity();
    assert.deepEqual(await search('charlie'), []);
  });
});

describe('background thread priority', () => {
  test('a background thread holds a lock at normal priority, then goes back to the lowest', (t) => {
    if (!lowerThisThreadPriority()) return t.skip('this process may not raise a thread priority back (no CAP_SYS_NICE, RLIMIT_NICE < 20): background work stays at normal priority');
    try {
      assert.equal(ownNice(), 19);
      assert.equal(atNormalPriority(() => ownNice()), 0);
      assert.equal(ownNice(), 19);
      assert.throws(() => atNormalPriority(() => { throw new Error('write failed'); }), /write failed/);
      assert.equal(ownNice(), 19, 'lowered again after a failed write');
    } finally {
      setThisThreadPriority(0);
    }
  });
});

/** The calling thread's nice value. */
function ownNice(): number {
  const stat = readFileSync('/proc/thread-self/stat', 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

/** The nice value of every thread of this process (Linux: field 19 of /proc/self/task/<tid>/stat). */
function threadNices(): number[] {
  return readdirSync('/proc/self/task').map((tid) => {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  });
}
