// `npm run bench:recording`: what recording one exchange costs, by thread, on SQLite.
//
// 1. relaying thread, record journal: open + finish of N exchanges, 32 in flight, through
//    the gateway's SQLite recorder (startJournalRecorder) with its worker told to wait,
//    so the process's CPU time is the relaying thread's: building the row, one JSON line
//    per operation, one write(2) per event-loop turn;
// 2. journal worker: applying those N exchanges to the store (rows, chained events,
//    positions) as the worker does, timed on its own; then the full-text indexer
//    (its own background-priority thread in the gateway) indexing them, timed apart;
// 3. for comparison, the direct recorder (what PostgreSQL stores use; what SQLite used
//    before the journal): group commit into the store on the relaying thread.
// Every run checks that the store ends with N complete rows and that the chain verifies.
//
// Options (environment): BENCH_RECORDING_EXCHANGES (default 20000).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRecorder, GroupCommitWriter, JournalApplier, startJournalRecorder, startSearchIndexer, verifyChain, type Recorder } from '../src/audit/index.js';
import { parseConfig } from '../src/config/index.js';
import { newId } from '../src/exchange/ids.js';
import type { Decision, Exchange, ExchangeOutcome, RecordedRequest } from '../src/exchange/index.js';
import { openStore, type Store } from '../src/store/index.js';

const total = Number(process.env.BENCH_RECORDING_EXCHANGES ?? 20_000);
const inFlight = 32;
const audit = parseConfig('{}', join(tmpdir(), 'gatehouse.yaml')).audit;
const chain = { writer: 'bench', checkpointEvery: 1000, checkpointIntervalMs: 60_000 };

// The shapes of the http bench's plain chat completion.
const body = JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: 'Summarise the quarterly report in three bullet points' }] });
const answer = JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion', created: 1, model: 'demo-chat', choices: [{ index: 0, message: { role: 'assistant', content: 'Here is a demo answer with a few words in it for the bench.' }, finish_reason: 'stop' }], usage: { prompt_tokens: 9, completion_tokens: 12, total_tokens: 21 } });
const decision: Decision = { effect: 'allow', rules: ['bench-users-may-chat'], reason: 'rule-matched', policyVersion: 'v1' };
const request: RecordedRequest = { method: 'POST', path: '/c/bench/chat/completions', headers: { 'content-type': 'application/json', 'user-agent': 'undici', 'content-length': String(body.length) }, body, truncated: false };
const outcome: ExchangeOutcome = { status: 200, complete: true, bytesIn: body.length, bytesOut: answer.length, ttfbMs: 0.5, durationMs: 0.9, responseHeaders: { 'content-type': 'application/json' }, responseBody: answer, responseText: 'Here is a demo answer with a few words in it for the bench.', usage: { promptTokens: 9, completionTokens: 12, totalTokens: 21 } };

function exchange(): Exchange {
  return {
    id: newId('ex'),
    sessionId: newId('ses'),
    protocol: 'http',
    connection: 'bench',
    operation: 'chat.completions',
    startedAt: Date.now(),
    client: { address: '127.0.0.1' },
    facts: { model: 'demo-chat', stream: false, text: 'Summarise the quarterly report in three bullet points' },
    identity: { subject: 'key:bench-client', kind: 'service', method: 'api_key', credentialId: 'c0ffee', groups: ['bench-users'] },
  };
}

/** CPU µs per exchange of open + finish for every exchange, `inFlight` at a time. */
async function drive(recorder: Recorder): Promise<number> {
  const before = process.cpuUsage();
  for (let done = 0; done < total; done += inFlight) {
    const batch = Array.from({ length: Math.min(inFlight, total - done) }, exchange);
    await Promise.all(batch.map((e) => recorder.open(e, decision, request)));
    await Promise.all(batch.map((e) => recorder.finish(e, outcome)));
  }
  const used = process.cpuUsage(before);
  return (used.user + used.system) / total;
}

async function check(store: Store, what: string): Promise<void> {
  const { n } = await store.db.selectFrom('exchanges').select((eb) => eb.fn.countAll().as('n')).where('complete', '=', 1).executeTakeFirstOrThrow();
  const report = await verifyChain(store.db);
  if (Number(n) !== total || !report.ok) throw new Error(`${what}: ${n} complete rows of ${total}, chain ${report.ok ? 'verified' : JSON.stringify(report.problems.slice(0, 3))}`);
}

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-recording-'));
try {
  // 1 + 2: the journal.
  const journalPath = join(dir, 'journal.db');
  let store = await openStore({ sqlite: { path: journalPath } });
  // The worker looks only when asked (drain): its CPU stays out of the relaying thread's
  // figure; and the recorder's own full-text index thread stays idle, so that the
  // indexing timed below is all of it (and never waits for that thread's lock).
  const journal = await startJournalRecorder({ sqlitePath: journalPath, audit, intervalMs: 3_600_000, searchIndexIntervalMs: 3_600_000 });
  const relaying = await drive(journal);
  // Apply in this thread, as the worker would, to time it alone.
  const applier = new JournalApplier(journalPath, { chain });
  const before = process.cpuUsage();
  const started = performance.now();
  applier.applyPending();
  const used = process.cpuUsage(before);
  const applyMs = performance.now() - started;
  // The full-text index, which the gateway keeps on a background-priority thread.
  const indexer = startSearchIndexer(journalPath, { intervalMs: 3_600_000 });
  const beforeIndex = process.cpuUsage();
  while (indexer.runOnce() > 0);
  const indexing = process.cpuUsage(beforeIndex);
  indexer.close();
  applier.close();
  await journal.close();
  await check(store, 'journal');
  await store.close();

  // 3: the direct recorder.
  const directPath = join(dir, 'direct.db');
  store = await openStore({ sqlite: { path: directPath } });
  const writer = new GroupCommitWriter(store.db, { sqlitePath: directPath, chain });
  const direct = await drive(createRecorder(store.db, { writer }));
  await writer.close();
  await check(store, 'direct');
  await store.close();

  const row = (what: string, thread: string, us: number) => console.log(`${what.padEnd(40)} ${thread.padEnd(16)} ${us.toFixed(1).padStart(8)}`);
  console.log(`Recording ${total} plain chat exchanges (open + finish), ${inFlight} in flight, SQLite\n`);
  console.log(`${'path'.padEnd(40)} ${'thread'.padEnd(16)} ${'CPU µs/exchange'.padStart(8)}`);
  row('record journal: append', 'relaying', relaying);
  row('record journal: apply to the store', 'journal worker', (used.user + used.system) / total);
  row('full-text index', 'search indexer', (indexing.user + indexing.system) / total);
  row('direct group commit (PostgreSQL path)', 'relaying', direct);
  console.log(`\napply throughput: ${Math.round(total / (applyMs / 1000))} exchanges/s on one thread; every run: ${total} complete rows, chain verified`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
