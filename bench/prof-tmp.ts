import { mkdtempSync } from 'node:fs';
import { JournalWriter } from '../src/audit/journal/journal-writer.js';
import { JournalApplier } from '../src/audit/journal/journal-applier.js';
import { recordColumns } from '../src/audit/record-columns.js';
import { journalDirOf } from '../src/audit/journal/segments.js';
import { openStore } from '../src/store/open-store.js';
import { newId } from '../src/exchange/ids.js';
const dir = mkdtempSync('/tmp/mb/p');
const path = `${dir}/g.db`;
const store = await openStore({ sqlite: { path } });
await store.close();
const w = new JournalWriter(journalDirOf(path));
const columns = recordColumns();
const body = JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: 'Summarise the quarterly report in three bullet points' }] });
const answer = JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion', created: 1, model: 'demo-chat', choices: [{ index: 0, message: { role: 'assistant', content: 'Here is a demo answer with a few words in it for the bench.' }, finish_reason: 'stop' }], usage: { prompt_tokens: 9, completion_tokens: 12, total_tokens: 21 } });
const identity = { subject: 'key:bench-client', kind: 'service', method: 'api_key', credentialId: 'k1', groups: ['bench-users'] };
const decision = { effect: 'allow', rules: ['bench-users-may-chat'], reason: 'rule-allow', policyVersion: 'v1' } as any;
const N = 30000;
for (let i = 0; i < N; i += 32) {
  const exs = [];
  for (let j = 0; j < 32; j++) {
    const ex = { id: newId('ex', Date.now()), sessionId: newId('ses'), protocol: 'http', connection: 'bench', operation: 'chat.completions', startedAt: Date.now(), client: { address: '127.0.0.1' }, facts: { model: 'demo-chat', stream: false, text: 'Summarise the quarterly report in three bullet points' }, identity } as any;
    exs.push(ex);
    void w.append({ op: 'open', row: columns.opened(ex, decision, { method: 'POST', path: '/c/bench/chat/completions', headers: { 'content-type': 'application/json', 'user-agent': 'undici', 'content-length': '120' }, body, truncated: false } as any) });
  }
  for (const ex of exs) void w.append({ op: 'finish', id: ex.id, columns: columns.outcome(ex, { status: 200, complete: true, bytesIn: 120, bytesOut: 330, ttfbMs: 0.5, durationMs: 0.9, responseHeaders: { 'content-type': 'application/json' }, responseBody: answer, responseText: 'Here is a demo answer', usage: { promptTokens: 9, completionTokens: 12, totalTokens: 21 } } as any) });
  w.flush();
}
const applier = new JournalApplier(path, { chain: { writer: 'x', checkpointEvery: 1000, checkpointIntervalMs: 60000 } });
const { Session } = await import('node:inspector/promises');
const session = new Session(); session.connect();
await session.post('Profiler.enable'); await session.post('Profiler.start');
const c0 = process.cpuUsage();
applier.applyPending();
const c = process.cpuUsage(c0);
const { profile } = await session.post('Profiler.stop');
(await import('node:fs')).writeFileSync('/tmp/mb/apply.cpuprofile', JSON.stringify(profile));
console.log('apply cpu µs/exchange', ((c.user + c.system) / N).toFixed(1));
