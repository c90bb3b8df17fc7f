// How long `audit prune` blocks recording beside it: `fill CONFIG N` records N events
// (N/2 exchanges, opened and finished) into the config's store; `append CONFIG SECONDS`
// appends an audit event every 20 ms for SECONDS and prints the slowest append and
// the failures; `prune CONFIG` prunes everything before now and prints how long it took.
// Run `append` beside `prune` (or `gatehouse audit prune`) on the same store.
// node --import tsx bench/prune-stall.ts fill|append|prune CONFIG N|SECONDS

import { openAuditTrail, createRecorder, pruneBefore } from '../src/audit/index.js';
import { loadConfig } from '../src/config/index.js';
import { newId } from '../src/exchange/ids.js';
import type { Decision, Exchange } from '../src/exchange/index.js';
import { openStore } from '../src/store/index.js';

const [mode, file, arg] = process.argv.slice(2);
const config = loadConfig(file!);
const store = await openStore(config.store);
const trail = openAuditTrail(store.db, config.audit, { createKey: true, withSinks: false, sqlitePath: store.sqlitePath });
const allow: Decision = { effect: 'allow', rules: ['r'], reason: 'rule-matched', policyVersion: 'pv' };

if (mode === 'fill') {
  const recorder = createRecorder(store.db, { writer: trail.writer });
  const exchanges = Number(arg) / 2;
  for (let done = 0; done < exchanges; done += 500) {
    await Promise.all(Array.from({ length: Math.min(500, exchanges - done) }, async () => {
      const ex: Exchange = { id: newId('ex'), sessionId: 'ses', protocol: 'http', connection: 'demo', operation: 'chat.completions', startedAt: Date.now(), client: { address: '127.0.0.1' }, facts: { stream: false, text: 'hello' }, identity: { subject: 'key:bench', kind: 'service', groups: ['ml'], method: 'api_key', credentialId: 'c' } };
      await recorder.open(ex, allow, { method: 'POST', path: '/chat/completions', headers: {}, body: '{}', truncated: false });
      await recorder.finish(ex, { status: 200, complete: true, bytesIn: 2, bytesOut: 5, ttfbMs: 1, durationMs: 2, responseText: 'hi' });
    }));
  }
  await recorder.drain();
  console.log(`filled ${exchanges * 2} events`);
} else if (mode === 'prune') {
  // The longest single transaction is how long an append beside the prune can wait.
  const write = trail.writer.write.bind(trail.writer);
  let longest = 0;
  trail.writer.write = async (w) => {
    const at = performance.now();
    await write(w);
    longest = Math.max(longest, performance.now() - at);
  };
  const started = performance.now();
  const result = await pruneBefore(trail.writer, Date.now() + 1000, 'bench', { breaks: [] });
  console.log(`pruned ${JSON.stringify(result)} in ${(performance.now() - started).toFixed(0)} ms, longest transaction ${longest.toFixed(0)} ms`);
} else {
  const until = Date.now() + Number(arg) * 1000;
  let slowest = 0;
  let failures = 0;
  let count = 0;
  while (Date.now() < until) {
    const started = performance.now();
    await trail.log.event({ kind: 'key.created', actor: 'bench', target: 'key:x', details: {} }).catch(() => failures++);
    slowest = Math.max(slowest, performance.now() - started);
    count++;
    await new Promise((r) => setTimeout(r, 20));
  }
  console.log(`appends ${count}, slowest ${slowest.toFixed(0)} ms, failures ${failures}`);
}
await trail.close();
await store.close();
