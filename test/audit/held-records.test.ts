// A refusal recorded while the PostgreSQL store cannot be reached (its TCP relay is
// down): the caller was refused all the same, so its record is held and written when the
// store answers again, with its audit event; the operator is told both ways. Before, the
// write failed and the record of the refusal was gone.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import { createRecorder, getExchange, GroupCommitWriter, type HeldRecordsReport } from '../../src/audit/index.js';
import { eventFor, recordColumns } from '../../src/audit/record-columns.js';
import { HeldRecords } from '../../src/audit/held-records.js';
import { newSpillFileId, sealLine } from '../../src/audit/held-records-file.js';
import type { Decision, ExchangeOutcome, RecordedRequest } from '../../src/exchange/index.js';
import { openStore, tryFileLock } from '../../src/store/index.js';
import { createTestPostgresDatabase } from '../helpers/databases.js';
import { sampleExchange } from '../helpers/exchanges.js';
import { startTcpRelay } from '../helpers/tcp-relay.js';
import { heldRecordsFileOf } from '../helpers/store-relay.js';

const database = await createTestPostgresDatabase();

const deny: Decision = { effect: 'deny', rules: ['no-embeddings'], reason: 'rule-matched', message: 'not for you', policyVersion: 'pv1' };
const request: RecordedRequest = { method: 'POST', path: '/v1/embeddings', headers: { 'content-type': 'application/json' }, body: '{"input":"x"}', truncated: false };
const refused: ExchangeOutcome = { status: 403, complete: true, bytesIn: 13, bytesOut: 0, ttfbMs: undefined, durationMs: 1, errorCode: 'policy_denied' };

test('a refusal recorded while the PostgreSQL store is away is written when it is back', { skip: 'skip' in database ? database.skip : undefined }, async () => {
  const db = database as { url: string; drop(): Promise<void> };
  const target = new URL(db.url);
  const relay = await startTcpRelay(Number(target.port || 5432), target.hostname);
  target.hostname = '127.0.0.1';
  target.port = String(relay.port);
  const store = await openStore({ postgres: { url: target.toString() } });
  const reports: HeldRecordsReport[] = [];
  const recorder = createRecorder(store.db, { onHeldRecords: (report) => reports.push(report) });
  try {
    await relay.down();
    const exchange = sampleExchange();
    await assert.rejects(recorder.refuse(exchange, deny, request, refused));
    assert.deepEqual(reports.map((r) => [r.held, r.written]), [[1, undefined]]);
    await relay.up();
    for (let i = 0; i < 100 && !reports.some((r) => r.written); i++) await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(reports.at(-1), { held: 0, written: 1, lost: undefined, error: undefined });
    const row = await getExchange(store.db, exchange.id);
    assert.equal(row?.errorCode, 'policy_denied');
    const events = await store.db.selectFrom('audit_events').select('kind').where('target', '=', exchange.id).execute();
    assert.deepEqual(events.map((e) => e.kind), ['exchange.refused']);
  } finally {
    await recorder.close();
    await store.close();
    await relay.close();
    await db.drop();
  }
});

test('over 10,000 held records the oldest are dropped, said once a retry with how many, not once a record; stopping says how many were never written', async () => {
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
  // A store that stays away: every write fails as pg fails it.
  const away = { record: () => Promise.reject(refused) } as unknown as GroupCommitWriter;
  const reports: HeldRecordsReport[] = [];
  const held = new HeldRecords(away, (report) => reports.push(report));
  for (let i = 0; i < 10_050; i++) held.holdIfUnreachable(refused, () => ({ event: { kind: 'test', actor: null, target: `t${i}` } }));
  assert.deepEqual(reports, [{ held: 1, error: refused.message }]);
  assert.equal(held.size, 10_000);
  for (let i = 0; i < 50 && reports.length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 100));
  assert.deepEqual(reports[1], { held: 10_000, written: undefined, lost: 50, error: 'more than 10000 records held: the oldest were dropped' });
  await held.close();
  assert.deepEqual(reports.at(-1), { held: 0, lost: 10_000, error: 'the gateway stopped before the store answered again' });
  assert.equal(reports.length, 3);
});

const spillDatabase = await createTestPostgresDatabase();

/** A pid that no process has now: a child that has exited. */
function deadPid(): number {
  return Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
}

/** The key a gateway derives from its audit signing key for its spill files. */
const spillKey = randomBytes(32);

test('a spill file left by a crash: its records are written once, and one already written before the crash is not written again', { skip: 'skip' in spillDatabase ? spillDatabase.skip : undefined }, async () => {
  const db = spillDatabase as { url: string; drop(): Promise<void> };
  const store = await openStore({ postgres: { url: db.url } });
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-held-'));
  // What a killed gateway (a pid no process has) left.
  const path = join(dir, `held-records-${deadPid()}.jsonl`);
  const writer = new GroupCommitWriter(store.db);
  try {
    const columns = recordColumns();
    const [done, pending] = [sampleExchange(), sampleExchange()];
    const write = (exchange: typeof done) => {
      const row = { ...columns.opened(exchange, deny, request), ...columns.outcome(exchange, refused) };
      return { exchange: { insert: row }, event: eventFor('exchange.refused', row, true) };
    };
    // The first reached the store just before the process was killed; the file still has both, and half a line.
    await writer.record(write(done));
    const fileId = newSpillFileId();
    writeFileSync(path, `${sealLine(spillKey, fileId, 1, write(done))}${sealLine(spillKey, fileId, 2, write(pending))}h1 ${fileId} 3 {"exchange":{"ins`, { mode: 0o600 });
    const reports: HeldRecordsReport[] = [];
    const held = new HeldRecords(writer, (report) => reports.push(report), { dir, key: spillKey });
    // What the start found: the log of the run that wrote the file said how many lines it had.
    assert.deepEqual(reports[0], { held: 2, recovered: 2, found: [{ file: basename(path), fileId, lines: 2 }] });
    for (let i = 0; i < 50 && !reports.some((r) => r.written); i++) await new Promise((resolve) => setTimeout(resolve, 100));
    await held.close();
    const events = await store.db.selectFrom('audit_events').select('target').where('kind', '=', 'exchange.refused').orderBy('seq').execute();
    assert.deepEqual(events.map((e) => e.target), [done.id, pending.id], 'each once');
    assert.deepEqual(readdirSync(dir), [], 'its file, and this process\'s, removed once written');
  } finally {
    await writer.close();
    await store.close();
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('held records are spilled to a file of mode 0600, and past its bound held in memory only, said once', async () => {
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
  const away = { record: () => Promise.reject(refused) } as unknown as GroupCommitWriter;
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-held-'));
  const reports: HeldRecordsReport[] = [];
  const held = new HeldRecords(away, (report) => reports.push(report), { dir: join(dir, 'data'), key: spillKey, maxBytes: 2_000 });
  try {
    for (let i = 0; i < 40; i++) held.holdIfUnreachable(refused, () => ({ event: { kind: 'test', actor: null, target: `t${i}` } }));
    const path = join(dir, 'data', heldRecordsFileOf(join(dir, 'data'), process.pid)!);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.ok(statSync(path).size <= 2_000);
    assert.equal(reports.filter((r) => r.notSpilled).length, 1);
    assert.match(reports.find((r) => r.notSpilled)!.notSpilled!, /reached its bound \(2000 bytes\)/);
    assert.equal(held.size, 40, 'still held in memory');
  } finally {
    await held.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

const tamperDatabase = await createTestPostgresDatabase();

test('a spill file whose lines were edited, added or removed: only the lines that verify are written, each other chained as recording.held_rejected or held_missing, in their place', { skip: 'skip' in tamperDatabase ? tamperDatabase.skip : undefined }, async () => {
  const db = tamperDatabase as { url: string; drop(): Promise<void> };
  const store = await openStore({ postgres: { url: db.url } });
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-held-'));
  const name = `held-records-${deadPid()}.jsonl`;
  const writer = new GroupCommitWriter(store.db);
  try {
    const columns = recordColumns();
    const exchanges = [sampleExchange(), sampleExchange(), sampleExchange(), sampleExchange(), sampleExchange()];
    const write = (exchange: (typeof exchanges)[number]) => {
      const row = { ...columns.opened(exchange, deny, request), ...columns.outcome(exchange, refused) };
      return { exchange: { insert: row }, event: eventFor('exchange.refused', row, true) };
    };
    const fileId = newSpillFileId();
    const lines = exchanges.map((exchange, i) => sealLine(spillKey, fileId, i + 1, write(exchange)));
    // Line 1 and 2 edited (their answer's status), line 3 removed, a line added in the
    // format of earlier builds (plain JSON), and one sealed under another key.
    lines[0] = lines[0]!.replace('"status":403', '"status":200');
    lines[1] = lines[1]!.replace('"status":403', '"status":200');
    lines.splice(2, 1);
    lines.push(`${JSON.stringify(write(sampleExchange()))}\n`, sealLine(randomBytes(32), fileId, 6, write(sampleExchange())));
    writeFileSync(join(dir, name), lines.join(''), { mode: 0o600 });
    const reports: HeldRecordsReport[] = [];
    const held = new HeldRecords(writer, (report) => reports.push(report), { dir, key: spillKey });
    assert.match(reports[0]?.rejected ?? '', new RegExp(`^${name} line 1: its authentication does not match .*; line 2: its authentication does not match .*; line 3: 1 line\\(s\\) before it removed; line 5: not an authenticated line .*; line 6: its authentication does not match .*: not written .* the file is kept as ${name}\\.rejected$`));
    assert.deepEqual(reports[1], { held: 7, recovered: 2, found: [{ file: name, fileId, lines: 6 }] });
    for (let i = 0; i < 50 && !reports.some((r) => r.written); i++) await new Promise((resolve) => setTimeout(resolve, 100));
    await held.close();
    const events = await store.db.selectFrom('audit_events').select(['kind', 'target', 'details']).orderBy('seq').execute();
    assert.deepEqual(
      events.map((e) => [e.kind, e.target ?? (JSON.parse(e.details) as { line: number }).line]),
      [['recording.held_rejected', 1], ['recording.held_rejected', 2], ['recording.held_missing', 3], ['exchange.refused', exchanges[3]!.id], ['exchange.refused', exchanges[4]!.id], ['recording.held_rejected', 5], ['recording.held_rejected', 6]],
    );
    assert.deepEqual(JSON.parse(events[1]!.details), { file: name, line: 2, reason: 'its authentication does not match (edited, or written under another audit signing key)', keptAs: `${name}.rejected` });
    assert.deepEqual(readdirSync(dir), [`${name}.rejected`], 'the file as it was found is kept aside; nothing is left to be read again');
    assert.equal(readFileSync(join(dir, `${name}.rejected`), 'utf8'), lines.join(''));
  } finally {
    await writer.close();
    await store.close();
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("security: a start takes over only the spill file of a gateway that is gone (its lock free), never a running one's, whatever its pid", async () => {
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
  const away = { record: () => Promise.reject(refused), write: () => Promise.reject(refused) } as unknown as GroupCommitWriter;
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-held-'));
  // Both in this process, so both files have this pid, as two containers' pid 1 have.
  const running = new HeldRecords(away, undefined, { dir, key: spillKey });
  let next: HeldRecords | undefined;
  let after: HeldRecords | undefined;
  try {
    running.holdIfUnreachable(refused, () => ({ event: { kind: 'test', actor: null, target: 't1' } }));
    const name = readdirSync(dir).find((n) => n.endsWith('.jsonl'))!;
    const reports: HeldRecordsReport[] = [];
    next = new HeldRecords(away, (report) => reports.push(report), { dir, key: spillKey });
    assert.deepEqual(reports, [], 'the running one\'s file is not taken over');
    assert.ok(readdirSync(dir).includes(name), 'and is left in place');
    // It stops with the store still away: its file is kept, its lock released.
    await running.close();
    const taken: HeldRecordsReport[] = [];
    after = new HeldRecords(away, (report) => taken.push(report), { dir, key: spillKey });
    assert.deepEqual(taken[0]?.found?.map((f) => f.file), [name]);
    assert.equal(after.size, 1);
    assert.ok(!readdirSync(dir).includes(name), 'taken over: its records are in the new file');
    assert.ok(!readdirSync(dir).includes(name.replace(/\.jsonl$/, '.lock')), 'its lock file removed with it');
  } finally {
    await running.close();
    await next?.close();
    await after?.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a lock file left without its spill file (a kill between removing the one and the other) is removed by a start, unless its lock is held', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-held-'));
  const stale = join(dir, `held-records-${deadPid()}-${newSpillFileId()}.lock`);
  const held = join(dir, `held-records-${deadPid()}-${newSpillFileId()}.lock`);
  writeFileSync(stale, '', { mode: 0o600 });
  const lock = tryFileLock(held)!;
  const records = new HeldRecords({} as GroupCommitWriter, undefined, { dir, key: spillKey });
  try {
    assert.deepEqual(readdirSync(dir), [basename(held)], 'the free one is removed, the held one kept');
  } finally {
    await records.close();
    lock.release();
    rmSync(dir, { recursive: true, force: true });
  }
});
