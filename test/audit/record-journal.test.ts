// The record journal (src/audit/journal/): records appended on the relaying thread and
// applied to the SQLite store in batches. What a user relies on: every record reaches
// the store exactly once with the same content the direct recorder writes, the chain
// verifies, a dead gateway's journal is applied by whoever opens the store next, and a
// damaged line is skipped and put on record instead of stopping the rest.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { applyJournalOnce, createRecorder, getExchange, GroupCommitWriter, JournalApplier, journalDirOf, startJournalRecorder, verifyChain, type JournalRecorder } from '../../src/audit/index.js';
import { eventFor, recordColumns } from '../../src/audit/record-columns.js';
import { SqliteBatch } from '../../src/audit/sqlite-batch.js';
import { JournalWriter } from '../../src/audit/journal/journal-writer.js';
import { segmentName } from '../../src/audit/journal/segments.js';
import { parseConfig } from '../../src/config/index.js';
import type { Decision, Exchange, ExchangeOutcome, RecordedRequest } from '../../src/exchange/index.js';
import { openStore, type Store } from '../../src/store/index.js';
import { sampleExchange, sampleStartedAt } from '../helpers/exchanges.js';

const audit = parseConfig('{}', join(tmpdir(), 'gatehouse.yaml')).audit;
const chain = { writer: 'test', checkpointEvery: Number.POSITIVE_INFINITY, checkpointIntervalMs: Number.POSITIVE_INFINITY };
const allow: Decision = { effect: 'allow', rules: ['allow-ml'], reason: 'rule-matched', policyVersion: 'pv1' };
const request: RecordedRequest = {
  method: 'POST',
  path: '/v1/chat/completions',
  headers: { 'content-type': 'application/json' },
  body: '{"model":"m","messages":[{"role":"user","content":"What is 2+2?"}]}',
  truncated: false,
};
const outcome: ExchangeOutcome = { status: 200, complete: true, bytesIn: 70, bytesOut: 120, ttfbMs: 3, durationMs: 9, responseBody: '{"ok":true}', responseText: '4', usage: { promptTokens: 3, completionTokens: 1, totalTokens: 4 } };

const makeExchange = (startedAt = sampleStartedAt): Exchange => sampleExchange({ startedAt });

/** A pid that no process has now: a child that has exited. */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout as unknown as number;
}

describe('record journal', () => {
  let dir: string;
  let path: string;
  let store: Store;
  let recorder: JournalRecorder | undefined;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-journal-'));
    path = join(dir, 'gatehouse.db');
    store = await openStore({ sqlite: { path } });
  });
  afterEach(async () => {
    await recorder?.close();
    recorder = undefined;
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const kinds = async (id: string) => (await store.db.selectFrom('audit_events').select('kind').where('target', '=', id).orderBy('seq').execute()).map((e) => e.kind);

  test('an answer recorded unread gets its text and usage from the body on the worker, as the direct recorder reads them', async () => {
    const body = JSON.stringify({ choices: [{ message: { role: 'assistant', content: 'Paris is the capital.' } }], usage: { prompt_tokens: 7, completion_tokens: 5, total_tokens: 12 } });
    const unread: ExchangeOutcome = { status: 200, complete: true, bytesIn: 70, bytesOut: body.length, ttfbMs: 3, durationMs: 9, responseBody: body, unreadAnswer: 'openai-json' };
    recorder = await startJournalRecorder({ sqlitePath: path, audit });
    const exchange = makeExchange();
    // Open and finish in one batch: coalesced into one insert on the worker.
    await Promise.all([recorder.open(exchange, allow, request), recorder.finish(exchange, unread)]);
    await recorder.drain();
    const viaJournal = await getExchange(store.db, exchange.id);
    assert.equal(viaJournal?.response.text, 'Paris is the capital.');
    assert.deepEqual(viaJournal?.response.usage, { promptTokens: 7, completionTokens: 5, totalTokens: 12 });

    const other = await openStore({ sqlite: { path: join(dir, 'direct.db') } });
    try {
      const writer = new GroupCommitWriter(other.db, { sqlitePath: other.sqlitePath });
      const direct = createRecorder(other.db, { writer });
      await direct.open(exchange, allow, request);
      await direct.finish(exchange, unread);
      await writer.close();
      assert.deepEqual(viaJournal, await getExchange(other.db, exchange.id));
    } finally {
      await other.close();
    }
    const report = await verifyChain(store.db);
    assert.equal(report.ok, true, JSON.stringify(report.problems));
  });

  test('records reach the store with what the direct recorder writes, and the chain verifies', async () => {
    recorder = await startJournalRecorder({ sqlitePath: path, audit });
    const exchange = makeExchange();
    await recorder.open(exchange, allow, request);
    await recorder.drain();
    const opened = await getExchange(store.db, exchange.id);
    assert.equal(opened?.complete, false, 'an open record is in the store, incomplete');
    await recorder.progress(exchange, { bytesOut: 40, responseText: '4', durationMs: 5, chunkTimings: [[1, 20], [4, 20]] });
    await recorder.finish(exchange, outcome);
    await recorder.drain();
    const viaJournal = await getExchange(store.db, exchange.id);

    // The same exchange through the direct recorder, into another store.
    const other = await openStore({ sqlite: { path: join(dir, 'direct.db') } });
    try {
      const writer = new GroupCommitWriter(other.db, { sqlitePath: other.sqlitePath });
      const direct = createRecorder(other.db, { writer });
      await direct.open(exchange, allow, request);
      await direct.progress(exchange, { bytesOut: 40, responseText: '4', durationMs: 5, chunkTimings: [[1, 20], [4, 20]] });
      await direct.finish(exchange, outcome);
      await writer.close();
      assert.deepEqual(viaJournal, await getExchange(other.db, exchange.id));
    } finally {
      await other.close();
    }
    assert.deepEqual(await kinds(exchange.id), ['exchange.opened', 'exchange.progress', 'exchange.finished']);
    const report = await verifyChain(store.db);
    assert.equal(report.ok, true, JSON.stringify(report.problems));
    assert.equal(report.exchanges, 1);
  });

  test('an exchange opened and finished in one batch is one row and one event; 300 of them all verify', async () => {
    recorder = await startJournalRecorder({ sqlitePath: path, audit, intervalMs: 60_000 });
    const exchanges = Array.from({ length: 300 }, (_, i) => makeExchange(sampleStartedAt + i));
    await Promise.all(exchanges.map((e) => recorder!.open(e, allow, request)));
    await Promise.all(exchanges.map((e) => recorder!.finish(e, outcome)));
    assert.equal(await store.db.selectFrom('exchanges').select('id').executeTakeFirst(), undefined, 'nothing applied before the batch');
    assert.ok(recorder.pendingBatches() >= 2, `pending batches: ${recorder.pendingBatches()}`);
    await recorder.drain();
    assert.equal(recorder.pendingBatches(), 0);
    const rows = await store.db.selectFrom('exchanges').select(['id', 'complete', 'status']).orderBy('seq').execute();
    assert.deepEqual(rows.map((r) => r.id), exchanges.map((e) => e.id), 'each once, in the order opened');
    assert.ok(rows.every((r) => r.complete === 1 && r.status === 200));
    assert.deepEqual(await kinds(exchanges[0]!.id), ['exchange.finished']);
    const report = await verifyChain(store.db);
    assert.equal(report.ok, true, JSON.stringify(report.problems));
    assert.equal(report.exchanges, 300);
  });

  test('deleting a row recorded by a single exchange.finished event is detected', async () => {
    recorder = await startJournalRecorder({ sqlitePath: path, audit, intervalMs: 60_000 });
    const exchange = makeExchange();
    await recorder.open(exchange, allow, request);
    await recorder.finish(exchange, outcome);
    await recorder.drain();
    await store.db.deleteFrom('exchanges').where('id', '=', exchange.id).execute();
    const report = await verifyChain(store.db);
    assert.equal(report.ok, false);
    assert.ok(report.problems.some((p) => p.exchangeId === exchange.id && /has been deleted/.test(p.message)), JSON.stringify(report.problems));
  });

  test("a dead gateway's segment is applied by the next process that opens the store, once, and removed", async () => {
    const journal = journalDirOf(path);
    const columns = recordColumns();
    const exchange = makeExchange();
    const name = segmentName(Date.now(), Number(deadPid()), 1);
    // What a gateway killed mid-stream leaves: the open, some progress, and half a line it never acknowledged.
    const lines = [
      { op: 'open', row: columns.opened(exchange, allow, request) },
      { op: 'progress', id: exchange.id, columns: columns.progress({ bytesOut: 10, responseText: 'partial', durationMs: 4 }) },
    ];
    const writer = new JournalWriter(journal);
    writer.close();
    writeFileSync(join(journal, name), `${lines.map((l) => JSON.stringify(l)).join('\n')}\n{"op":"finish","id":"${exchange.id}","col`);

    applyJournalOnce(path, chain);
    const record = await getExchange(store.db, exchange.id);
    assert.equal(record?.complete, false);
    assert.equal(record?.response.text, 'partial');
    assert.equal(existsSync(join(journal, name)), false, 'the dead writer\'s segment is removed once applied');
    applyJournalOnce(path, chain);
    assert.equal((await store.db.selectFrom('exchanges').select('id').execute()).length, 1, 'applied once');
    const report = await verifyChain(store.db);
    assert.equal(report.ok, true, JSON.stringify(report.problems));
  });

  test('a damaged line is skipped and chained as recording.journal_damaged; the lines after it are applied', async () => {
    const journal = journalDirOf(path);
    const columns = recordColumns();
    const [first, second] = [makeExchange(), makeExchange()];
    const name = segmentName(Date.now(), Number(deadPid()), 1);
    const good = (e: Exchange) => `${JSON.stringify({ op: 'open', row: columns.opened(e, allow, request) })}\n`;
    const damagedAt = Buffer.byteLength(good(first));
    new JournalWriter(journal).close();
    writeFileSync(join(journal, name), good(first));
    appendFileSync(join(journal, name), '{"op":"open","row":{"id": garbage\n');
    appendFileSync(join(journal, name), good(second));

    applyJournalOnce(path, chain);
    assert.ok(await getExchange(store.db, first.id));
    assert.ok(await getExchange(store.db, second.id));
    const damaged = await store.db.selectFrom('audit_events').select('details').where('kind', '=', 'recording.journal_damaged').execute();
    assert.deepEqual(damaged.map((d) => JSON.parse(d.details)), [{ offset: damagedAt, segment: name }]);
    assert.equal((await verifyChain(store.db)).ok, true);
  });

  const missingEvents = async () => (await store.db.selectFrom('audit_events').select('details').where('kind', '=', 'recording.journal_missing').orderBy('seq').execute()).map((d) => JSON.parse(d.details) as Record<string, unknown>);

  test('security: a segment deleted before it was applied in full is chained as recording.journal_missing, once', async () => {
    const journal = journalDirOf(path);
    const columns = recordColumns();
    const [first, second] = [makeExchange(), makeExchange()];
    const line = (e: Exchange) => `${JSON.stringify({ op: 'open', row: columns.opened(e, allow, request) })}\n`;
    new JournalWriter(journal).close();
    const name = segmentName(Date.now(), Number(deadPid()), 1);
    writeFileSync(join(journal, name), line(first));
    const applier = new JournalApplier(path, { chain });
    try {
      // What a gateway's writer does as it begins a segment: from then on its deletion shows.
      applier.register(name);
      applier.applyPending();
      assert.ok(await getExchange(store.db, first.id));
      // A dead writer's segment is finished and deleted once applied: write another, delete it unapplied.
      const deletedName = segmentName(Date.now(), Number(deadPid()), 1);
      writeFileSync(join(journal, deletedName), line(second));
      applier.register(deletedName);
      rmSync(join(journal, deletedName));
      applier.applyPending();
      assert.deepEqual(await missingEvents(), [{ segment: deletedName, applied: 0 }]);
      assert.equal(await getExchange(store.db, second.id), undefined, 'the deleted record is gone: what shows is that it was');
      applier.applyPending();
      applyJournalOnce(path, chain);
      assert.equal((await missingEvents()).length, 1, 'chained once');
    } finally {
      applier.close();
    }
    assert.equal((await verifyChain(store.db)).ok, true);
  });

  test('security: a segment deleted before anything registered it shows by the numbering of the next one', async () => {
    const journal = journalDirOf(path);
    const columns = recordColumns();
    const exchange = makeExchange();
    new JournalWriter(journal).close();
    const started = Date.now();
    const pid = Number(deadPid());
    // Segment 1 never reached an applier (deleted at once); segment 2 is there.
    writeFileSync(join(journal, segmentName(started, pid, 2)), `${JSON.stringify({ op: 'open', row: columns.opened(exchange, allow, request) })}\n`);
    applyJournalOnce(path, chain);
    assert.deepEqual(await missingEvents(), [{ segment: segmentName(started, pid, 1), applied: 0 }]);
    assert.ok(await getExchange(store.db, exchange.id), 'the segment that is there is applied');
    applyJournalOnce(path, chain);
    assert.equal((await missingEvents()).length, 1);
  });

  test('a writer whose segment is deleted under it notices at its next batch and writes on in a new segment', async () => {
    const journal = journalDirOf(path);
    const opened: string[] = [];
    const unlinked: [string, number][] = [];
    const writer = new JournalWriter(journal, { linkCheckIntervalMs: 0, onSegmentOpened: (n) => opened.push(n), onSegmentUnlinked: (n, w) => unlinked.push([n, w]) });
    await writer.append({ op: 'progress', id: 'ex_a', columns: {} });
    assert.equal(opened.length, 1);
    const size = readdirSync(journal).length;
    rmSync(join(journal, opened[0]!));
    await writer.append({ op: 'progress', id: 'ex_b', columns: {} });
    assert.equal(unlinked.length, 1);
    assert.equal(unlinked[0]![0], opened[0]);
    assert.ok(unlinked[0]![1] > 0);
    assert.equal(opened.length, 2, 'a new segment');
    assert.equal(readdirSync(journal).length, size);
    assert.match(readFileSync(join(journal, opened[1]!), 'utf8'), /ex_b/, 'the later record is in the new segment, not in the deleted file');
    writer.close();
  });

  test('two appliers working the same journal while it grows apply every line exactly once, with exact digests', async () => {
    const journal = journalDirOf(path);
    const writer = new JournalWriter(journal, { maxSegmentBytes: 8 * 1024 });
    const columns = recordColumns();
    const appliers = [new JournalApplier(path, { chain }), new JournalApplier(path, { chain })];
    const exchanges: Exchange[] = [];
    try {
      for (let round = 0; round < 30; round++) {
        const batch = Array.from({ length: 5 }, (_, i) => makeExchange(sampleStartedAt + round * 10 + i));
        exchanges.push(...batch);
        for (const e of batch) void writer.append({ op: 'open', row: columns.opened(e, allow, request) });
        writer.flush();
        appliers[round % 2]!.applyPending();
        for (const e of batch) void writer.append({ op: 'progress', id: e.id, columns: columns.progress({ bytesOut: round, responseText: `r${round}`, durationMs: 1 }) });
        writer.flush();
        appliers[(round + 1) % 2]!.applyPending();
        for (const e of batch) void writer.append({ op: 'finish', id: e.id, columns: columns.outcome(e, outcome) });
        writer.flush();
        if (round % 3 === 0) appliers[round % 2]!.applyPending();
      }
      writer.close();
      appliers[0]!.applyPending();
      appliers[1]!.applyPending();
    } finally {
      for (const a of appliers) a.close();
    }
    const rows = await store.db.selectFrom('exchanges').select(['id', 'complete']).execute();
    assert.equal(rows.length, exchanges.length);
    assert.deepEqual(rows.filter((r) => r.complete !== 1).map((r) => r.id), [], 'every exchange finished');
    const report = await verifyChain(store.db);
    assert.equal(report.ok, true, JSON.stringify(report.problems.slice(0, 3)));
    assert.deepEqual(readdirSync(journal), [], 'every ended segment is removed');
  });

  test('a write that fails rolls its whole batch back, chain head included, and the next batch applies', async () => {
    const columns = recordColumns();
    const [first, second] = [makeExchange(), makeExchange()];
    const row = (e: Exchange) => columns.opened(e, allow, request);
    const batch = new SqliteBatch(path);
    try {
      batch.run([{ exchange: { insert: row(first) }, event: eventFor('exchange.opened', row(first)) }], chain);
      // The second insert of `first` breaks the primary key: `second`, its event and the head move are undone too.
      const failing = [
        { exchange: { insert: row(second) }, event: eventFor('exchange.opened', row(second)) },
        { exchange: { update: first.id, columns: { status: 200 } }, event: eventFor('exchange.progress', { ...row(first), status: 200 }) },
        { exchange: { insert: row(first) }, event: eventFor('exchange.opened', row(first)) },
      ];
      assert.throws(() => batch.run(failing, chain), /UNIQUE constraint failed: exchanges.id/);
      assert.equal(batch.connection.inTransaction, false);
      assert.deepEqual((await store.db.selectFrom('exchanges').select(['id', 'status']).execute()).map((r) => [r.id, r.status]), [[first.id, null]]);
      assert.equal((await store.db.selectFrom('audit_events').select('id').where('target', 'is not', null).execute()).length, 1);
      batch.run([failing[0]!, failing[1]!], chain);
    } finally {
      batch.close();
    }
    assert.equal((await getExchange(store.db, second.id))?.decision, 'allow');
    assert.equal((await getExchange(store.db, first.id))?.status, 200);
    const report = await verifyChain(store.db);
    assert.equal(report.ok, true, JSON.stringify(report.problems));
  });

  test('after close, a record is refused rather than lost', async () => {
    recorder = await startJournalRecorder({ sqlitePath: path, audit });
    await recorder.close();
    await assert.rejects(recorder.open(makeExchange(), allow, request), /record journal is closed/);
    recorder = undefined;
  });
});
