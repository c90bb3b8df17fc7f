// Measures whether `audit prune` on a PostgreSQL store with many rows stalls recording
// beside it. Seeds a fresh database with BENCH_PRUNE_ROWS exchanges (refusals: one row
// and one chained event each, a signed checkpoint every 1000 events, as a gateway's
// defaults), then records one refusal every 20 ms from a second writer (another
// gateway) while pruneBefore deletes everything but the last checkpoint's span, and
// reports each recording's latency during the prune against those before it.
//
//   npx tsx bench/prune-postgres.ts          (BENCH_PRUNE_ROWS=100000 by default)

import { generateKeyPairSync } from 'node:crypto';
import pg from 'pg';
import { createRecorder, GroupCommitWriter, pruneBefore } from '../src/audit/index.js';
import { signerFromPem } from '../src/audit/signing-key.js';
import type { Decision, ExchangeOutcome, RecordedRequest } from '../src/exchange/index.js';
import { openStore } from '../src/store/index.js';
import { createTestPostgresDatabase } from '../test/helpers/databases.js';
import { sampleExchange } from '../test/helpers/exchanges.js';

const rows = Number(process.env['BENCH_PRUNE_ROWS'] ?? 100_000);
const deny: Decision = { effect: 'deny', rules: ['r'], reason: 'rule-matched', message: 'no', policyVersion: 'pv1' };
const request: RecordedRequest = { method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body: '{"model":"m","messages":[{"role":"user","content":"hello there"}]}', truncated: false };
const outcome: ExchangeOutcome = { status: 403, complete: true, bytesIn: 64, bytesOut: 0, ttfbMs: undefined, durationMs: 1, errorCode: 'policy_denied' };

const database = await createTestPostgresDatabase();
if ('skip' in database) throw new Error(database.skip);
const store = await openStore({ postgres: { url: database.url } });
const { privateKey } = generateKeyPairSync('ed25519');
const signer = signerFromPem(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
const chain = (writer: string) => ({ writer, signer, checkpointEvery: 1000, checkpointIntervalMs: Number.POSITIVE_INFINITY });
const seedWriter = new GroupCommitWriter(store.db, { chain: chain('seed'), maxBatch: 512 });
const seeder = createRecorder(store.db, { writer: seedWriter });

const t0 = Date.now();
for (let done = 0; done < rows; ) {
  const n = Math.min(2_000, rows - done);
  await Promise.all(Array.from({ length: n }, () => seeder.refuse(sampleExchange(), deny, request, outcome)));
  done += n;
}
console.log(`seeded ${rows} exchanges + events in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
const cutoff = Date.now() + 1;
await new Promise((resolve) => setTimeout(resolve, 5));

// The other gateway: one refusal every 20 ms, each one's time to durable.
const gatewayStore = await openStore({ postgres: { url: database.url } }, { migrate: false });
const gatewayRecorder = createRecorder(gatewayStore.db, { writer: new GroupCommitWriter(gatewayStore.db, { chain: chain('gateway') }) });
let phase: 'before' | 'prune' | 'after' = 'before';
const latencies: Record<string, number[]> = { before: [], prune: [], after: [] };
let probing = true;
const probe = (async () => {
  while (probing) {
    const at = performance.now();
    const during = phase;
    await gatewayRecorder.refuse(sampleExchange(), deny, request, outcome);
    latencies[during]!.push(performance.now() - at);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
})();
await new Promise((resolve) => setTimeout(resolve, 2_000));
phase = 'prune';
const p0 = Date.now();
const pruneWriter = new GroupCommitWriter(store.db, { chain: chain('cli') });
const result = await pruneBefore(pruneWriter, cutoff, 'bench', { breaks: [] });
const pruneMs = Date.now() - p0;
phase = 'after';
await new Promise((resolve) => setTimeout(resolve, 2_000));
probing = false;
await probe;

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]?.toFixed(1);
  return `n=${s.length} p50=${q(0.5)} ms p99=${q(0.99)} ms max=${s.at(-1)?.toFixed(1)} ms`;
};
console.log(`prune: ${result.events} events, ${result.exchanges} exchanges, ${result.checkpoints} checkpoints in ${(pruneMs / 1000).toFixed(1)} s`);
for (const phaseName of ['before', 'prune', 'after']) console.log(`recording ${phaseName.padEnd(6)} ${stats(latencies[phaseName]!)}`);
const admin = new pg.Client(database.url);
await admin.connect();
console.log(`rows left: ${(await admin.query('select count(*) from exchanges')).rows[0].count} exchanges`);
await admin.end();
await gatewayStore.close();
await store.close();
await database.drop();
