// A/B of what recording costs, by thread, between builds: `bench:recording`'s three
// measures (append on the relaying thread, apply on the journal worker, the full-text
// index) for each build's dist/, each run in a child process of its own, the builds
// alternated round by round (ABAB…, the order reversed every other round), medians and
// the median of the per-round ratios to the first build. A paired ratio stays usable on
// a machine other work is loading.
//
//   npm run build && cp -r dist /tmp/old-dist      # before a change
//   node --import tsx bench/recording-ab.ts --dist /tmp/old-dist --dist dist --rounds 7
//
// Options: --dist DIR (repeatable; default dist; 'DIR::SQL' runs SQL on the store
// before recording, for schema experiments), --rounds N (5), --exchanges N (20000).
// BENCH_AB_INDEX_BATCH: rows per indexing transaction (the indexer's default, 200).
// Every child checks its store ends with N complete rows and a verified chain.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

interface Measure {
  readonly append: number;
  readonly apply: number;
  readonly index: number;
}

const argv = process.argv.slice(2);
const flag = (name: string): string[] => argv.flatMap((arg, i) => (arg === name && argv[i + 1] !== undefined ? [argv[i + 1]!] : []));

if (argv[0] === '--child') await child(resolve(argv[1]!), Number(argv[2]));
else driver();

function driver(): void {
  const dists = flag('--dist').length > 0 ? flag('--dist') : ['dist'];
  const rounds = Number(flag('--rounds')[0] ?? 5);
  const exchanges = Number(flag('--exchanges')[0] ?? 20_000);
  const results: Measure[][] = dists.map(() => []);
  for (let round = 0; round < rounds; round += 1) {
    const order = dists.map((_, i) => i);
    if (round % 2 === 1) order.reverse();
    for (const i of order) {
      // 'DIR::SQL': that build with SQL run on its store first (a schema experiment).
      const [dist, experiment] = dists[i]!.split('::');
      const env = { ...process.env, BENCH_AB_SQL: experiment ?? '' };
      const out = execFileSync(process.execPath, ['--import', 'tsx', new URL(import.meta.url).pathname, '--child', dist!, String(exchanges)], { encoding: 'utf8', env });
      const measure = JSON.parse(out.trim().split('\n').pop()!) as Measure;
      results[i]!.push(measure);
      console.log(`round ${round + 1} ${dists[i]}: append ${measure.append.toFixed(1)}, apply ${measure.apply.toFixed(1)}, index ${measure.index.toFixed(1)} µs/exchange`);
    }
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  console.log(`\n${exchanges} exchanges, ${rounds} rounds; medians (CPU µs per exchange), × = median of per-round ratios to ${dists[0]}`);
  for (const [i, dist] of dists.entries()) {
    const cell = (key: keyof Measure) => {
      const ratio = median(results[i]!.map((m, r) => m[key] / results[0]![r]![key]));
      return `${median(results[i]!.map((m) => m[key])).toFixed(1)} (×${ratio.toFixed(2)})`;
    };
    console.log(`${dist.padEnd(28)} append ${cell('append')}  apply ${cell('apply')}  index ${cell('index')}`);
  }
}

async function child(dist: string, total: number): Promise<void> {
  const load = (path: string) => import(pathToFileURL(join(dist, path)).href);
  const auditModule = await load('audit/index.js');
  const { parseConfig } = await load('config/index.js');
  const { newId } = await load('exchange/ids.js');
  const { openStore } = await load('store/index.js');
  const audit = parseConfig('{}', join(tmpdir(), 'gatehouse.yaml')).audit;
  const chain = { writer: 'bench', checkpointEvery: 1000, checkpointIntervalMs: 60_000 };
  // The shapes of the http bench's plain chat completion (as bench/recording.ts).
  const body = JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: 'Summarise the quarterly report in three bullet points' }] });
  const answer = JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion', created: 1, model: 'demo-chat', choices: [{ index: 0, message: { role: 'assistant', content: 'Here is a demo answer with a few words in it for the bench.' }, finish_reason: 'stop' }], usage: { prompt_tokens: 9, completion_tokens: 12, total_tokens: 21 } });
  const decision = { effect: 'allow', rules: ['bench-users-may-chat'], reason: 'rule-matched', policyVersion: 'v1' };
  const request = { method: 'POST', path: '/c/bench/chat/completions', headers: { 'content-type': 'application/json', 'user-agent': 'undici', 'content-length': String(body.length) }, body, truncated: false };
  const outcome = { status: 200, complete: true, bytesIn: body.length, bytesOut: answer.length, ttfbMs: 0.5, durationMs: 0.9, responseHeaders: { 'content-type': 'application/json' }, responseBody: answer, unreadAnswer: 'openai-json' };
  const exchange = () => ({
    id: newId('ex'),
    sessionId: newId('ses'),
    protocol: 'http',
    connection: 'bench',
    operation: 'chat.completions',
    startedAt: Date.now(),
    client: { address: '127.0.0.1' },
    facts: { model: 'demo-chat', stream: false, text: 'Summarise the quarterly report in three bullet points' },
    identity: { subject: 'key:bench-client', kind: 'service', method: 'api_key', credentialId: 'c0ffee', groups: ['bench-users'] },
  });
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-recording-ab-'));
  try {
    const path = join(dir, 'journal.db');
    const store = await openStore({ sqlite: { path } });
    // BENCH_AB_SQL: statements run on the migrated store before recording (schema experiments).
    if (process.env.BENCH_AB_SQL) await import('better-sqlite3').then(({ default: SQLite }) => {
      const db = new SQLite(path);
      db.exec(process.env.BENCH_AB_SQL!);
      db.close();
    });
    const journal = await auditModule.startJournalRecorder({ sqlitePath: path, audit, intervalMs: 3_600_000, searchIndexIntervalMs: 3_600_000 });
    const cpu = () => {
      const used = process.cpuUsage();
      return used.user + used.system;
    };
    let start = cpu();
    for (let done = 0; done < total; done += 32) {
      const batch = Array.from({ length: Math.min(32, total - done) }, exchange);
      await Promise.all(batch.map((e) => journal.open(e, decision, request)));
      await Promise.all(batch.map((e) => journal.finish(e, outcome)));
    }
    const append = (cpu() - start) / total;
    const applier = new auditModule.JournalApplier(path, { chain });
    start = cpu();
    applier.applyPending();
    const apply = (cpu() - start) / total;
    const indexer = auditModule.startSearchIndexer(path, { intervalMs: 3_600_000, batch: Number(process.env.BENCH_AB_INDEX_BATCH) || undefined });
    start = cpu();
    while (indexer.runOnce() > 0);
    const index = (cpu() - start) / total;
    indexer.close();
    applier.close();
    await journal.close();
    const { n } = await store.db.selectFrom('exchanges').select((eb: any) => eb.fn.countAll().as('n')).where('complete', '=', 1).executeTakeFirstOrThrow();
    const report = await auditModule.verifyChain(store.db);
    if (Number(n) !== total || !report.ok) throw new Error(`${n} complete rows of ${total}, chain ${report.ok ? 'verified' : JSON.stringify(report.problems.slice(0, 3))}`);
    await store.close();
    console.log(JSON.stringify({ append, apply, index }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
