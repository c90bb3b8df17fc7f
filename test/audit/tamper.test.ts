// Tampering beyond editing a row, on both stores: `verifyChain` must name each.
//   - the search index edited so a text search no longer finds an exchange (SQLite's
//     FTS5 index and its queue, PostgreSQL's generated `search` column);
//   - two events' bodies swapped (each event's hash covers its seq and predecessor);
//   - two exchanges' seq swapped, which reorders listings (seq is not in the digest);
//   - the newest checkpoints deleted and the head's record of them rolled back, which
//     unfixed the events they had fixed (a rewritten tail then verified).

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { sql } from 'kysely';
import { createRecorder, listExchanges, openAuditTrail, verifyChain, type AuditTrail, type Recorder } from '../../src/audit/index.js';
import type { ExchangeState } from '../../src/audit/exchange-state.js';
import { eventFor, recordColumns } from '../../src/audit/record-columns.js';
import type { AuditConfig } from '../../src/config/audit-schema.js';
import { newId } from '../../src/exchange/ids.js';
import type { Decision, Exchange, RecordedRequest } from '../../src/exchange/index.js';
import { openStore, type Store } from '../../src/store/index.js';
import { testDialects, type TestDatabase } from '../helpers/databases.js';

const allow: Decision = { effect: 'allow', rules: ['allow-ml'], reason: 'rule-matched', policyVersion: 'pv1' };
const request: RecordedRequest = { method: 'POST', path: '/v1/chat/completions', headers: {}, body: '{}', truncated: false };

function exchange(text: string): Exchange {
  return {
    id: newId('ex'),
    sessionId: 'ses_1',
    protocol: 'http',
    connection: 'openai',
    operation: 'chat.completions',
    startedAt: Date.now(),
    client: { address: '127.0.0.1' },
    facts: { stream: false, text },
    identity: { subject: 'key:ci-bot', kind: 'service', groups: ['ml'], method: 'api_key', credentialId: 'c1' },
  };
}

function tamperAuditConfig(dir: string, overrides: Partial<AuditConfig> = {}): AuditConfig {
  return {
    writerId: 'test-writer',
    signingKey: undefined,
    keyFile: join(dir, 'audit-signing-key.pem'),
    previousPublicKeys: [],
    checkpoint: { every: 4, interval: 3_600_000 },
    progress: { interval: 250, bytes: 65_536 },
    sinks: [],
    alerts: { failedAuthThenSuccess: false, bulkRequests: false },
    raw: { enabled: false, key: undefined, revealGroups: [] },
    ...overrides,
  };
}

for (const dialect of await testDialects()) {
  describe(`tampering verify names, on ${dialect.name}`, { skip: dialect.skip }, () => {
    let database: TestDatabase;
    let store: Store;
    let trail: AuditTrail;
    let recorder: Recorder;
    let dir: string;
    const ids: string[] = [];

    beforeEach(async () => {
      dir = mkdtempSync(join(tmpdir(), 'gatehouse-tamper-'));
      database = await dialect.create();
      store = await openStore(database.config);
      trail = openAuditTrail(store.db, tamperAuditConfig(dir), { createKey: true, withSinks: false, sqlitePath: store.sqlitePath });
      recorder = createRecorder(store.db, { writer: trail.writer });
      ids.length = 0;
      for (const word of ['alpha', 'bravo', 'charlie']) {
        const ex = exchange(`the plan for ${word}`);
        ids.push(ex.id);
        await recorder.open(ex, allow, request);
        await recorder.finish(ex, { status: 200, complete: true, bytesIn: 10, bytesOut: 20, ttfbMs: 3, durationMs: 9, responseText: `${word} answered` });
      }
      if (store.dialect === 'sqlite') {
        // What the indexer does (search-indexer.ts): queued rows move into the index.
        await sql`insert into exchanges_fts(rowid, prompt_text, response_text) select seq, prompt_text, response_text from exchanges where seq in (select seq from exchanges_fts_pending) and id <> ${ids[2]!}`.execute(store.db);
        await sql`delete from exchanges_fts_pending where seq in (select seq from exchanges where id <> ${ids[2]!})`.execute(store.db);
      }
    });
    afterEach(async () => {
      await trail.close();
      await store.close();
      await database.cleanup();
      rmSync(dir, { recursive: true, force: true });
    });

    const verify = () => verifyChain(store.db, { publicKeyPem: trail.signer!.publicKeyPem });
    const found = async (text: string) => (await listExchanges(store.db, { text, limit: 10 })).items.map((e) => e.id);

    test('an untouched store verifies, indexed and queued rows alike', async () => {
      assert.deepEqual((await verify()).problems, []);
      assert.deepEqual(await found('bravo'), [ids[1]]);
      assert.deepEqual(await found('charlie'), [ids[2]], 'a queued row is found too');
    });

    test('security: an exchange removed from the search index, so a text search hides it, is named', async () => {
      if (store.dialect === 'sqlite') {
        await sql`insert into exchanges_fts(exchanges_fts, rowid, prompt_text, response_text) select 'delete', seq, prompt_text, response_text from exchanges where id = ${ids[1]!}`.execute(store.db);
        // A queued row taken out of the queue is neither indexed nor matched directly.
        await sql`delete from exchanges_fts_pending where seq = (select seq from exchanges where id = ${ids[2]!})`.execute(store.db);
      } else {
        // A generated column cannot be written: the expression is dropped first.
        await sql`alter table exchanges alter column search drop expression`.execute(store.db);
        await sql`update exchanges set search = null where id in (${ids[1]!}, ${ids[2]!})`.execute(store.db);
      }
      assert.deepEqual(await found('bravo'), [], 'the attack works: a search no longer finds it');
      assert.deepEqual(await found('charlie'), []);
      const report = await verify();
      assert.equal(report.ok, false);
      const messages = report.problems.map((p) => p.message);
      const hidden = store.dialect === 'sqlite' ? (id: string) => `exchange ${id} is missing from the search index: a text search does not find it (the index was edited)` : (id: string) => `exchange ${id} has a search column that does not match its text: a text search finds it by the wrong words, or not at all (the column was edited)`;
      assert.ok(messages.includes(hidden(ids[1]!)), messages.join('\n'));
      assert.ok(messages.includes(hidden(ids[2]!)), messages.join('\n'));
      if (store.dialect === 'postgres') assert.ok(messages.includes('the search column of exchanges is no longer generated from the text: exchanges written from now on may not be found by a text search'), messages.join('\n'));
      assert.ok(!messages.some((m) => m.includes(ids[0]!)), 'the untouched exchange is not blamed');
    });

    test('security: an exchange indexed under other words (found by the wrong search) is named', async () => {
      if (store.dialect === 'sqlite') {
        await sql`insert into exchanges_fts(exchanges_fts, rowid, prompt_text, response_text) select 'delete', seq, prompt_text, response_text from exchanges where id = ${ids[1]!}`.execute(store.db);
        await sql`insert into exchanges_fts(rowid, prompt_text, response_text) select seq, 'nothing to see', 'here' from exchanges where id = ${ids[1]!}`.execute(store.db);
      } else {
        await sql`alter table exchanges alter column search drop expression`.execute(store.db);
        await sql`update exchanges set search = to_tsvector('simple', 'nothing to see here') where id = ${ids[1]!}`.execute(store.db);
      }
      assert.deepEqual(await found('bravo'), []);
      const messages = (await verify()).problems.map((p) => p.message);
      const wrong = store.dialect === 'sqlite' ? `exchange ${ids[1]} is indexed with other words than its text: a text search finds it by the wrong words (the index was edited)` : `exchange ${ids[1]} has a search column that does not match its text: a text search finds it by the wrong words, or not at all (the column was edited)`;
      assert.ok(messages.includes(wrong), messages.join('\n'));
    });

    test('security: indexing switched off for exchanges written from now on is named', async () => {
      if (store.dialect === 'sqlite') await sql`drop trigger exchanges_fts_queue`.execute(store.db);
      else await sql`alter table exchanges alter column search drop expression`.execute(store.db);
      const ex = exchange('the plan for delta');
      await recorder.open(ex, allow, request);
      assert.deepEqual(await found('delta'), [], 'the attack works: a new exchange is never found');
      const messages = (await verify()).problems.map((p) => p.message);
      const off = store.dialect === 'sqlite' ? 'the search index trigger exchanges_fts_queue is missing: exchanges written from now on may not be found by a text search' : 'the search column of exchanges is no longer generated from the text: exchanges written from now on may not be found by a text search';
      assert.ok(messages.includes(off), messages.join('\n'));
    });

    test('security: checkpoints deleted, with the head rolled back to an older one, are named by their cadence', async () => {
      // Enough events that a run without a checkpoint exceeds checkpoint.every (4) and the slack (1024).
      await Promise.all(Array.from({ length: 1100 }, (_, i) => trail.log.event({ kind: 'policy.changed', actor: 'cli:alice', target: `policy:v${i}`, details: {} })));
      const untouched = await verifyChain(store.db, { publicKeyPem: trail.signer!.publicKeyPem, checkpointEvery: 4 });
      assert.deepEqual(untouched.problems, []);
      const first = Number((await store.db.selectFrom('audit_checkpoints').select('seq').orderBy('seq').limit(1).executeTakeFirstOrThrow()).seq);
      await store.db.deleteFrom('audit_checkpoints').where('seq', '>', first).execute();
      await store.db.updateTable('audit_head').set({ checkpoint_seq: first }).where('id', '=', 1).execute();
      const report = await verifyChain(store.db, { publicKeyPem: trail.signer!.publicKeyPem, checkpointEvery: 4 });
      assert.equal(report.ok, false);
      const gap = first + 4 + 1024 + 1;
      const id = (await store.db.selectFrom('audit_events').select('id').where('seq', '=', gap).executeTakeFirstOrThrow()).id;
      assert.deepEqual(report.problems.map((p) => [p.seq, p.eventId, p.message]), [
        [gap, id, `event seq ${gap} is more than 1028 events past the checkpoint at seq ${first} with no checkpoint between (audit.checkpoint.every is 4): checkpoints were deleted, or every was larger when these events were appended`],
      ]);
      // Every checkpoint deleted, and the head's record of them zeroed.
      await store.db.deleteFrom('audit_checkpoints').execute();
      await store.db.updateTable('audit_head').set({ checkpoint_seq: 0 }).where('id', '=', 1).execute();
      const none = await verifyChain(store.db, { publicKeyPem: trail.signer!.publicKeyPem, checkpointEvery: 4 });
      assert.match(none.problems[0]!.message, /^event seq 1029 is more than 1028 events past the start of the chain with no checkpoint between/);
    });

    test('security: two exchanges with their seq (their order in listings) swapped are named', async () => {
      const listed = async () => (await listExchanges(store.db, { limit: 10 })).items.map((e) => e.id);
      assert.deepEqual(await listed(), [ids[2], ids[1], ids[0]]);
      const seqOf = async (id: string) => Number((await store.db.selectFrom('exchanges').select('seq').where('id', '=', id).executeTakeFirstOrThrow()).seq);
      const [a, b] = [await seqOf(ids[0]!), await seqOf(ids[1]!)];
      // As someone with write access to the file or database would: the ids keep their rows.
      await sql`update exchanges set seq = -1 where seq = ${a}`.execute(store.db);
      await sql`update exchanges set seq = ${a} where seq = ${b}`.execute(store.db);
      await sql`update exchanges set seq = ${b} where seq = -1`.execute(store.db);
      assert.deepEqual(await listed(), [ids[2], ids[0], ids[1]], 'the attack works: the listing order changed');
      const report = await verify();
      assert.equal(report.ok, false);
      const moved = report.problems.filter((p) => p.message.endsWith("the exchanges' seq (their order) was changed"));
      assert.equal(moved.length, 1, report.problems.map((p) => p.message).join('\n'));
      assert.equal(moved[0]!.exchangeId, ids[0]);
      assert.match(moved[0]!.message, new RegExp(`^exchange ${ids[0]} \\(seq ${b}, first recorded by event seq \\d+\\) is listed after exchange ${ids[1]} \\(seq ${a}, inserted by event seq \\d+\\)`));
      assert.ok(!report.problems.some((p) => p.message.includes(ids[2]!)), 'the exchange left in place is not blamed');
    });

    test('rows chained out of their seq order by an earlier build (no inserting mark) still verify on PostgreSQL; with the mark they are named', async () => {
      // Before this build a PostgreSQL transaction took a row's seq before the head's lock,
      // so two gateways could chain two rows in the other order than their seqs. No build
      // did so on SQLite (one transaction, in order, under the write lock): named there.
      const rows = [exchange('x'), exchange('y')].map((ex) => recordColumns().opened(ex, allow, request));
      const [x, y] = rows as [ExchangeState, ExchangeState];
      await Promise.all([
        trail.writer.record({ exchange: { insert: x }, event: eventFor('exchange.opened', y) }),
        trail.writer.record({ exchange: { insert: y }, event: eventFor('exchange.opened', x) }),
      ]);
      if (dialect.name === 'sqlite') {
        const named = (await verify()).problems.map((p) => p.message);
        assert.equal(named.length, 1, named.join('\n'));
        assert.match(named[0]!, new RegExp(`^exchange ${y.id} .* is listed after exchange ${x.id} `));
      } else assert.deepEqual((await verify()).problems, []);
      const [v, w] = [exchange('v'), exchange('w')].map((ex) => recordColumns().opened(ex, allow, request)) as [ExchangeState, ExchangeState];
      await Promise.all([
        trail.writer.record({ exchange: { insert: v }, event: eventFor('exchange.opened', w, true) }),
        trail.writer.record({ exchange: { insert: w }, event: eventFor('exchange.opened', v, true) }),
      ]);
      const messages = (await verify()).problems.map((p) => p.message).filter((m) => !m.startsWith(`exchange ${y.id} `));
      assert.equal(messages.length, 1, messages.join('\n'));
      assert.match(messages[0]!, new RegExp(`^exchange ${w.id} .* is listed after exchange ${v.id} `));
    });

    test(`security: two exchanges recorded by an earlier build (no inserting mark) with their seq swapped: ${dialect.name === 'sqlite' ? 'named (on SQLite every build inserted rows in chain order)' : 'not named (earlier PostgreSQL builds did not: docs/security.md)'}`, async () => {
      const [x, y] = [exchange('x'), exchange('y')].map((ex) => recordColumns().opened(ex, allow, request)) as [ExchangeState, ExchangeState];
      // As an earlier build chained them: no `inserted` in the event.
      await trail.writer.record({ exchange: { insert: x }, event: eventFor('exchange.opened', x) });
      await trail.writer.record({ exchange: { insert: y }, event: eventFor('exchange.refused', y) });
      assert.deepEqual((await verify()).problems, []);
      const seqOf = async (id: string) => Number((await store.db.selectFrom('exchanges').select('seq').where('id', '=', id).executeTakeFirstOrThrow()).seq);
      const [a, b] = [await seqOf(x.id), await seqOf(y.id)];
      await sql`update exchanges set seq = -1 where seq = ${a}`.execute(store.db);
      await sql`update exchanges set seq = ${a} where seq = ${b}`.execute(store.db);
      await sql`update exchanges set seq = ${b} where seq = -1`.execute(store.db);
      const messages = (await verify()).problems.map((p) => p.message);
      if (dialect.name === 'postgres') return assert.deepEqual(messages, []);
      assert.equal(messages.length, 1, messages.join('\n'));
      assert.match(messages[0]!, new RegExp(`^exchange ${x.id} \\(seq ${b}, first recorded by event seq \\d+\\) is listed after exchange ${y.id} \\(seq ${a}, inserted by event seq \\d+\\): the exchanges' seq \\(their order\\) was changed$`));
    });

    test('security: two events with their bodies swapped are both named', async () => {
      const [a, b] = await store.db.selectFrom('audit_events').selectAll().where('seq', 'in', [2, 4]).orderBy('seq').execute();
      await store.db.updateTable('audit_events').set({ kind: b!.kind, target: b!.target, details: b!.details, hash: b!.hash }).where('seq', '=', 2).execute();
      await store.db.updateTable('audit_events').set({ kind: a!.kind, target: a!.target, details: a!.details, hash: a!.hash }).where('seq', '=', 4).execute();
      const report = await verify();
      assert.equal(report.ok, false);
      const messages = report.problems.map((p) => p.message);
      assert.ok(messages.includes(`event seq 2 (${a!.id}) was altered: its hash does not match its content`), messages.join('\n'));
      assert.ok(messages.includes(`event seq 4 (${b!.id}) was altered: its hash does not match its content`), messages.join('\n'));
    });
  });
}
