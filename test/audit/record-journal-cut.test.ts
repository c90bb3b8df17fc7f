// security: the unapplied end of a dead writer's record journal segment, cut off before
// the next applier finishes the segment. A segment is not hashed until it is applied, so
// while its applier is behind (the writer has written more than it has applied) the chain
// is told how far the writer had written (recording.journal_written); if the writer then
// dies and the end is cut off, the segment's journal_applied falls short of that, and
// `audit verify` names it. The applier being behind is made here by a line its second
// transaction cannot apply (it rolls back): the writer's death leaves the segment there.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, test } from 'node:test';
import { applyJournalOnce, getExchange, JournalApplier, journalDirOf, verifyChain } from '../../src/audit/index.js';
import { recordColumns } from '../../src/audit/record-columns.js';
import { JournalWriter } from '../../src/audit/journal/journal-writer.js';
import { segmentName } from '../../src/audit/journal/segments.js';
import type { Decision, RecordedRequest } from '../../src/exchange/index.js';
import { openStore, type Store } from '../../src/store/index.js';
import { sampleExchange } from '../helpers/exchanges.js';

const chain = { writer: 'test', checkpointEvery: Number.POSITIVE_INFINITY, checkpointIntervalMs: Number.POSITIVE_INFINITY };
const allow: Decision = { effect: 'allow', rules: ['allow-ml'], reason: 'rule-matched', policyVersion: 'pv1' };
const request: RecordedRequest = { method: 'POST', path: '/v1/chat/completions', headers: {}, body: '{}', truncated: false };

function deadPid(): number {
  return Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
}

let dir: string;
let path: string;
let store: Store;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-journal-cut-'));
  path = join(dir, 'gatehouse.db');
  store = await openStore({ sqlite: { path } });
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

test('security: the unapplied end of a dead writer\'s segment cut off, after its applier was told how far it was written, is named by verify', async () => {
  const journal = journalDirOf(path);
  const columns = recordColumns();
  const exchanges = [sampleExchange(), sampleExchange(), sampleExchange()];
  const open = (i: number) => `${JSON.stringify({ op: 'open', row: columns.opened(exchanges[i]!, allow, request) })}\n`;
  new JournalWriter(journal).close();
  const name = segmentName(Date.now(), deadPid(), 1);
  // Two lines applied in the first transaction; the third (an exchange opened twice) fails the second one.
  const appliedEnd = Buffer.byteLength(open(0) + open(1));
  writeFileSync(join(journal, name), open(0) + open(1) + open(0) + open(2));
  const written = Buffer.byteLength(open(0) + open(1) + open(0) + open(2));
  const applier = new JournalApplier(path, { chain, maxOpsPerTransaction: 2 });
  try {
    assert.throws(() => applier.applyPending(), /UNIQUE/);
  } finally {
    applier.close();
  }
  assert.ok(await getExchange(store.db, exchanges[1]!.id), 'the first transaction is applied');
  const witnessed = await store.db.selectFrom('audit_events').select('details').where('kind', '=', 'recording.journal_written').execute();
  assert.deepEqual(witnessed.map((e) => JSON.parse(e.details)), [{ segment: name, bytes: written }]);

  // The attacker cuts off what was not applied; the next applier finishes the segment.
  truncateSync(join(journal, name), appliedEnd);
  applyJournalOnce(path, chain);
  const applied = await store.db.selectFrom('audit_events').select(['seq', 'details']).where('kind', '=', 'recording.journal_applied').execute();
  assert.deepEqual(applied.map((e) => JSON.parse(e.details)), [{ segment: name, bytes: appliedEnd, ended: false }], 'finished off without its end line: its writer died');

  const report = await verifyChain(store.db);
  assert.equal(report.ok, false);
  const witnessSeq = (await store.db.selectFrom('audit_events').select('seq').where('kind', '=', 'recording.journal_written').executeTakeFirstOrThrow()).seq;
  assert.deepEqual(report.problems.map((p) => p.message).filter((m) => m.startsWith('record journal')), [
    `record journal segment ${name} was applied through byte ${appliedEnd}, but its writer had written through byte ${written} (event seq ${witnessSeq}): the end of the segment not yet applied was cut off, and its records are lost`,
  ]);
});

test('a segment applied in full after its applier caught up verifies, and one its writer ended says so', async () => {
  const journal = journalDirOf(path);
  const columns = recordColumns();
  const exchanges = [sampleExchange(), sampleExchange(), sampleExchange()];
  const open = (i: number) => `${JSON.stringify({ op: 'open', row: columns.opened(exchanges[i]!, allow, request) })}\n`;
  new JournalWriter(journal).close();
  const name = segmentName(Date.now(), deadPid(), 1);
  writeFileSync(join(journal, name), `${open(0)}${open(1)}${open(2)}{"op":"end"}\n`);
  const applier = new JournalApplier(path, { chain, maxOpsPerTransaction: 2 });
  try {
    applier.applyPending();
  } finally {
    applier.close();
  }
  const kinds = (await store.db.selectFrom('audit_events').select(['kind', 'details']).where('kind', 'like', 'recording.journal_%').orderBy('seq').execute()).map((e) => [e.kind, JSON.parse(e.details)]);
  assert.deepEqual(kinds, [
    ['recording.journal_begun', { segment: name }],
    ['recording.journal_written', { segment: name, bytes: Buffer.byteLength(open(0) + open(1) + open(2)) + 13 }],
    ['recording.journal_applied', { segment: name, bytes: Buffer.byteLength(open(0) + open(1) + open(2)) + 13, ended: true }],
  ]);
  const report = await verifyChain(store.db);
  assert.equal(report.ok, true, JSON.stringify(report.problems));
});
