// The tamper-evident chain against the real databases: every exchange write and admin
// act is a chained event; `verifyChain` names the event where an edit, a deletion, a
// reordering or an insertion made directly in the database breaks it.

import { generateKeyPairSync } from 'node:crypto';
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { createRecorder, openAuditTrail, pruneBefore, PruneOverBreakError, verifyChain, type AuditTrail, type Recorder } from '../../src/audit/index.js';
import type { AuditConfig } from '../../src/config/audit-schema.js';
import { newId } from '../../src/exchange/ids.js';
import type { Decision, Exchange, ExchangeOutcome, RecordedRequest } from '../../src/exchange/index.js';
import { openStore, type Store } from '../../src/store/index.js';
import { testDialects, type TestDatabase } from '../helpers/databases.js';

export function auditConfig(dir: string, overrides: Partial<AuditConfig> = {}): AuditConfig {
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

const allow: Decision = { effect: 'allow', rules: ['allow-ml'], reason: 'rule-matched', policyVersion: 'pv1' };
const request: RecordedRequest = { method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body: '{"messages":[]}', truncated: false };

function exchange(text: string): Exchange {
  return {
    id: newId('ex'),
    sessionId: 'ses_1',
    protocol: 'http',
    connection: 'openai',
    operation: 'chat.completions',
    startedAt: Date.now(),
    client: { address: '127.0.0.1' },
    facts: { stream: true, text, model: 'gpt-4o-mini' },
    identity: { subject: 'key:ci-bot', kind: 'service', groups: ['ml'], method: 'api_key', credentialId: 'c1' },
  };
}

function outcome(text: string): ExchangeOutcome {
  return { status: 200, complete: true, bytesIn: 10, bytesOut: 20, ttfbMs: 3, durationMs: 9, responseText: text, chunkTimings: [[3, 10], [9, 10]] };
}

for (const dialect of await testDialects()) {
  describe(`audit chain on ${dialect.name}`, { skip: dialect.skip }, () => {
    let database: TestDatabase;
    let store: Store;
    let trail: AuditTrail;
    let recorder: Recorder;
    let dir: string;
    const ids: string[] = [];

    beforeEach(async () => {
      dir = mkdtempSync(join(tmpdir(), 'gatehouse-chain-'));
      database = await dialect.create();
      store = await openStore(database.config);
      // SQLite records take the prepared-statement path, PostgreSQL the Kysely one.
      trail = openAuditTrail(store.db, auditConfig(dir), { createKey: true, withSinks: false, sqlitePath: store.sqlitePath });
      recorder = createRecorder(store.db, { writer: trail.writer });
      ids.length = 0;
      // 3 exchanges (opened + progress + finished = 9 events) and 2 admin acts: 11 events.
      for (const word of ['alpha', 'bravo', 'charlie']) {
        const ex = exchange(`tell me about ${word}`);
        ids.push(ex.id);
        await recorder.open(ex, allow, request);
        await recorder.progress(ex, { bytesOut: 10, responseText: `${word} is`, durationMs: 5 });
        await recorder.finish(ex, outcome(`${word} is a word`));
      }
      await trail.log.event({ kind: 'key.created', actor: 'cli:alice', target: 'key:k1', details: { name: 'ci-bot', groups: ['ml'] } });
      await trail.log.event({ kind: 'key.revoked', actor: 'cli:alice', target: 'key:k1', details: { name: 'ci-bot' } });
    });
    afterEach(async () => {
      await trail.close();
      await store.close();
      await database.cleanup();
      rmSync(dir, { recursive: true, force: true });
    });

    const verify = () => verifyChain(store.db, { publicKeyPem: trail.signer!.publicKeyPem });
    const eventId = async (seq: number) => (await store.db.selectFrom('audit_events').select('id').where('seq', '=', seq).executeTakeFirstOrThrow()).id;

    test('an untouched chain verifies: every event, every checkpoint, every exchange row', async () => {
      const report = await verify();
      assert.deepEqual(report.problems, []);
      assert.equal(report.ok, true);
      assert.deepEqual([report.fromSeq, report.toSeq, report.events, report.exchanges], [1, 11, 11, 3]);
      assert.equal(report.checkpoints, 2, 'a checkpoint every 4 events: at seq 4 and 8');
      const kinds = (await store.db.selectFrom('audit_events').select('kind').orderBy('seq').execute()).map((r) => r.kind);
      assert.deepEqual(kinds.slice(0, 3), ['exchange.opened', 'exchange.progress', 'exchange.finished']);
      assert.deepEqual(kinds.slice(-2), ['key.created', 'key.revoked']);
    });

    test('checkpoints signed by another key than the one verifying them are named, without calling it "the configured key" (it may be --public-key)', async () => {
      const other = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
      const report = await verifyChain(store.db, { publicKeyPem: other });
      assert.equal(report.ok, false);
      assert.match(report.problems[0]!.message, /^checkpoint at seq 4 is signed by key [0-9a-f]{16}, not by the key it is verified with \([0-9a-f]{16}: audit\.signingKey or keyFile, or --public-key\); a key replaced before goes in audit\.previousPublicKeys$/);
    });

    test('an edited event is named', async () => {
      await sql`update audit_events set details = replace(details, 'ci-bot', 'someone-else') where seq = 10`.execute(store.db);
      const report = await verify();
      assert.equal(report.ok, false);
      assert.equal(report.problems[0]!.seq, 10);
      assert.equal(report.problems[0]!.message, `event seq 10 (${await eventId(10)}) was altered: its hash does not match its content`);
    });

    test('a deleted event is named', async () => {
      const next = await eventId(6);
      await sql`delete from audit_events where seq = 5`.execute(store.db);
      const report = await verify();
      assert.equal(report.ok, false);
      assert.equal(report.problems[0]!.message, `event seq 5 is missing (deleted): the chain breaks before event seq 6 (${next})`);
    });

    test('deleting every event of an exchange is named first, and its row is not blamed on an insertion alone', async () => {
      await sql`delete from audit_events where seq in (1, 2, 3)`.execute(store.db);
      const report = await verify();
      assert.equal(report.ok, false);
      const messages = report.problems.map((p) => p.message);
      assert.match(messages[0]!, /^events before seq 4 \(evt_\w+\) are missing/);
      assert.ok(messages.includes(`exchange ${ids[0]} has no audit event: inserted outside the gateway, or its events were deleted`), messages.join('\n'));
    });

    test('reordered events are named', async () => {
      await sql`update audit_events set seq = -1 where seq = 6`.execute(store.db);
      await sql`update audit_events set seq = 6 where seq = 7`.execute(store.db);
      await sql`update audit_events set seq = 7 where seq = -1`.execute(store.db);
      const report = await verify();
      assert.equal(report.ok, false);
      assert.equal(report.problems[0]!.seq, 6);
      assert.match(report.problems[0]!.message, new RegExp(`^event seq 6 \\(${await eventId(6)}\\) does not follow event seq 5`));
    });

    test('an inserted event is named', async () => {
      // Make room after seq 8 and insert a forged event that links correctly to seq 8.
      const eight = await store.db.selectFrom('audit_events').selectAll().where('seq', '=', 8).executeTakeFirstOrThrow();
      for (let seq = 11; seq >= 9; seq--) await sql`update audit_events set seq = ${seq + 1} where seq = ${seq}`.execute(store.db);
      await store.db.insertInto('audit_events').values({ ...eight, seq: 9, id: 'evt_forged', kind: 'key.created', prev_hash: eight.hash, hash: 'f'.repeat(64) }).execute();
      const report = await verify();
      assert.equal(report.ok, false);
      assert.equal(report.problems[0]!.message, 'event seq 9 (evt_forged) was altered: its hash does not match its content');
    });

    test('an exchange row edited after it was recorded is named, with the event that vouches for it', async () => {
      await sql`update exchanges set response_text = 'bravo is not a word' where id = ${ids[1]!}`.execute(store.db);
      const report = await verify();
      assert.equal(report.ok, false);
      const finished = await store.db.selectFrom('audit_events').select(['seq', 'id']).where('target', '=', ids[1]!).where('kind', '=', 'exchange.finished').executeTakeFirstOrThrow();
      assert.equal(report.problems[0]!.message, `exchange ${ids[1]} was altered after event seq ${finished.seq} (${finished.id}) recorded it`);
      assert.equal(report.problems[0]!.exchangeId, ids[1]);
    });

    test('a deleted exchange row and an inserted one are named', async () => {
      await sql`delete from exchanges where id = ${ids[2]!}`.execute(store.db);
      await sql`insert into exchanges (id, session_id, protocol, connection, operation, started_at, decision) values ('ex_forged', 's', 'http', 'openai', 'chat.completions', 1, 'allow')`.execute(store.db);
      const report = await verify();
      assert.equal(report.ok, false);
      const messages = report.problems.map((p) => p.message);
      assert.ok(messages.some((m) => m.startsWith(`exchange ${ids[2]}, recorded by event seq 7 (`) && m.endsWith('), has been deleted')), messages.join('\n'));
      assert.ok(messages.includes('exchange ex_forged has no audit event: inserted outside the gateway, or its events were deleted'), messages.join('\n'));
    });

    test('a forged checkpoint signature is refused', async () => {
      await sql`update audit_checkpoints set hash = ${'0'.repeat(64)} where seq = 4`.execute(store.db);
      const report = await verify();
      assert.equal(report.ok, false);
      assert.equal(report.problems[0]!.message, 'checkpoint at seq 4 has an invalid signature (edited)');
    });

    test('a deleted newest checkpoint is named through the head', async () => {
      await sql`delete from audit_checkpoints where seq = 8`.execute(store.db);
      const report = await verify();
      assert.equal(report.ok, false);
      assert.equal(report.problems[0]!.seq, 8);
      assert.equal(report.problems[0]!.message, `checkpoint at seq 8 is missing (deleted): the head records it as the newest checkpoint`);
    });

    test('a deleted head row is named (it is what notices events deleted from the end)', async () => {
      await sql`delete from audit_events where seq = 11`.execute(store.db);
      await sql`delete from audit_head`.execute(store.db);
      const report = await verify();
      assert.equal(report.ok, false);
      assert.equal(report.problems[0]!.message, 'the head row (audit_head) is missing (deleted): events after seq 10 may have been deleted');
    });

    test('events deleted from the end are noticed through the head', async () => {
      await sql`delete from audit_events where seq >= 10`.execute(store.db);
      const report = await verify();
      assert.equal(report.ok, false);
      assert.equal(report.problems[0]!.message, 'the chain ends at seq 9 but the head records seq 11: events after seq 9 were deleted');
    });

    test('retention prunes up to a checkpoint, and verification passes from it onwards', async () => {
      const result = await pruneBefore(trail.writer, Date.now() + 1000, 'cli:alice', { breaks: [] });
      assert.deepEqual(result, { throughSeq: 8, events: 8, exchanges: 2, checkpoints: 1 });
      const report = await verify();
      assert.deepEqual(report.problems, []);
      assert.equal(report.fromSeq, 9);
      assert.equal(report.toSeq, 12, 'the prune itself is event 12');
      const last = await store.db.selectFrom('audit_events').select(['kind', 'actor']).where('seq', '=', 12).executeTakeFirstOrThrow();
      assert.deepEqual(last, { kind: 'audit.pruned', actor: 'cli:alice' });
      // An export after the prune carries the checkpoint the retained chain starts at.
      const { exportBundle } = await import('../../src/audit/index.js');
      const { readFileSync } = await import('node:fs');
      await exportBundle(store.db, {}, join(dir, 'pruned-bundle'), trail.signer!);
      const firstEvent = JSON.parse(readFileSync(join(dir, 'pruned-bundle', 'events.jsonl'), 'utf8').split('\n')[0]!) as { seq: number; prevHash: string };
      const checkpoints = readFileSync(join(dir, 'pruned-bundle', 'checkpoints.jsonl'), 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { seq: number; hash: string });
      assert.equal(firstEvent.seq, 9);
      assert.deepEqual(checkpoints[0] && { seq: checkpoints[0].seq, hash: checkpoints[0].hash }, { seq: 8, hash: firstEvent.prevHash });
      // Deleting the first retained event is still caught: no checkpoint vouches for what is left.
      await sql`delete from audit_events where seq = 9`.execute(store.db);
      const broken = await verify();
      assert.equal(broken.ok, false);
      assert.match(broken.problems[0]!.message, /^events before seq 10 \(evt_\w+\) are missing and no valid checkpoint vouches for seq 9: event seq 9 was deleted$/);
    });

    test('retention deletes one checkpoint span per transaction, so recording beside it waits for one span at most; stopped after any of them, the chain verifies', async () => {
      // Each transaction is one span (checkpoints every 4 events: seq 1..4, then 5..8),
      // and what it leaves verifies from the checkpoint it ended at.
      const write = trail.writer.write.bind(trail.writer);
      const after: { events: number; ok: boolean; problems: string[] }[] = [];
      trail.writer.write = async (w) => {
        await write(w);
        const report = await verify();
        const { n } = await store.db.selectFrom('audit_events').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
        after.push({ events: Number(n), ok: report.ok, problems: report.problems.map((p) => p.message) });
      };
      const result = await pruneBefore(trail.writer, Date.now() + 1000, 'cli:alice', { breaks: [] });
      assert.deepEqual(result, { throughSeq: 8, events: 8, exchanges: 2, checkpoints: 1 });
      // The first transaction only reads what to prune; the prune's own event (seq 12)
      // is chained with the first deletion, so no deletion goes unrecorded.
      assert.deepEqual(after, [
        { events: 11, ok: true, problems: [] },
        { events: 12 - 4, ok: true, problems: [] },
        { events: 12 - 8, ok: true, problems: [] },
      ]);
    });

    test('security: retention over a break in the chain is refused (it would erase the evidence), unless forced, and then the break is named in audit.pruned', async () => {
      await sql`delete from audit_events where seq = 5`.execute(store.db);
      const breaks = (await verify()).problems;
      assert.match(breaks[0]!.message, /^event seq 5 is missing/);
      await assert.rejects(pruneBefore(trail.writer, Date.now() + 1000, 'cli:alice', { breaks }), (error: unknown) => error instanceof PruneOverBreakError && error.throughSeq === 8 && /event seq 5 is missing/.test(error.message));
      assert.equal((await verify()).problems[0]!.seq, 5, 'nothing was deleted: the break is still there to find');
      const forced = await pruneBefore(trail.writer, Date.now() + 1000, 'cli:alice', { breaks, force: true });
      assert.equal(forced.throughSeq, 8);
      const pruned = await store.db.selectFrom('audit_events').select(['kind', 'details']).where('kind', '=', 'audit.pruned').executeTakeFirstOrThrow();
      assert.match(String(pruned.details), /"overBreak":"event seq 5 is missing/);
    });

    test('retention is not held up by a break after the range it deletes', async () => {
      await sql`update audit_events set actor = 'key:mallory' where seq = 10`.execute(store.db);
      const breaks = (await verify()).problems;
      assert.equal(breaks[0]!.seq, 10);
      const result = await pruneBefore(trail.writer, Date.now() + 1000, 'cli:alice', { breaks });
      assert.equal(result.throughSeq, 8);
      assert.equal((await verify()).problems[0]!.seq, 10, 'the break is still found');
    });

    test('retention after a reveal or re-execution of a pruned exchange still verifies', async () => {
      // Exchange 1's record (seq 1..3) is older than the checkpoint at seq 8; it is
      // revealed and re-executed afterwards (seq 12, 13: a checkpoint at 12).
      await new Promise((resolve) => setTimeout(resolve, 5));
      await trail.log.event({ kind: 'exchange.revealed', actor: 'key:admin', target: ids[0]!, details: { groups: ['ir'] } });
      await trail.log.event({ kind: 'exchange.reexecuted', actor: 'key:admin', target: ids[0]!, details: { exchange: null, status: 200 } });
      const at12 = (await store.db.selectFrom('audit_checkpoints').select('at').where('seq', '=', 12).executeTakeFirstOrThrow()).at;
      const result = await pruneBefore(trail.writer, Number(at12), 'cli:alice', { breaks: [] });
      assert.deepEqual(result, { throughSeq: 8, events: 8, exchanges: 2, checkpoints: 1 }, 'the rows whose recorded states are all pruned go');
      const report = await verify();
      assert.deepEqual(report.problems, []);
      assert.equal(report.ok, true);
    });

    test('an unfiltered export holds every event and row, and verifies with sha256sum and openssl', async () => {
      const { exportBundle } = await import('../../src/audit/index.js');
      const { execFileSync } = await import('node:child_process');
      const { readFileSync } = await import('node:fs');
      const out = join(dir, 'bundle');
      const result = await exportBundle(store.db, {}, out, trail.signer!);
      assert.deepEqual([result.exchanges, result.events], [3, 11]);
      const seqs = readFileSync(join(out, 'events.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { seq: number }).seq);
      assert.deepEqual(seqs, Array.from({ length: 11 }, (_, i) => i + 1));
      assert.match(execFileSync('sha256sum', ['-c', 'manifest.sha256'], { cwd: out, encoding: 'utf8' }), /events\.jsonl: OK/);
      assert.match(execFileSync('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', 'public-key.pem', '-rawin', '-in', 'manifest.sha256', '-sigfile', 'manifest.sig'], { cwd: out, encoding: 'utf8' }), /Signature Verified Successfully/);
    });

    test('verify --from a checkpoint starts there', async () => {
      const report = await verifyChain(store.db, { publicKeyPem: trail.signer!.publicKeyPem, fromCheckpoint: 8 });
      assert.deepEqual([report.ok, report.fromSeq, report.toSeq, report.events], [true, 9, 11, 3]);
      const missing = await verifyChain(store.db, { publicKeyPem: trail.signer!.publicKeyPem, fromCheckpoint: 5 });
      assert.equal(missing.ok, false);
      assert.equal(missing.problems[0]!.message, 'no valid checkpoint at seq 5');
    });
  });
}

for (const dialect of await testDialects()) {
  describe(`search filters on ${dialect.name}`, { skip: dialect.skip }, () => {
    test('full text, group and rule; user input is never query syntax', async () => {
      const { listExchanges } = await import('../../src/audit/index.js');
      const database = await dialect.create();
      const store = await openStore(database.config);
      try {
        const recorder = createRecorder(store.db);
        const a = exchange('where do zebras sleep');
        const b = { ...exchange('the quarterly report'), identity: { subject: 'key:fin', kind: 'human' as const, groups: ['finance_team'], method: 'api_key' as const, credentialId: 'c2' } };
        await recorder.open(a, allow, request);
        await recorder.finish(a, outcome('zebras sleep standing up'));
        await recorder.refuse(b, { ...allow, effect: 'deny', rules: ['no-finance'] }, request, outcome('-'));
        const ids = async (filter: Record<string, string>) => (await listExchanges(store.db, filter)).items.map((i) => i.id);
        assert.deepEqual(await ids({ text: 'zebras' }), [a.id]);
        assert.deepEqual(await ids({ text: 'standing' }), [a.id], 'the answer is searchable');
        assert.deepEqual(await ids({ text: 'quarterly' }), [b.id]);
        assert.deepEqual(await ids({ group: 'finance_team' }), [b.id]);
        assert.deepEqual(await ids({ group: 'finance%' }), [], 'LIKE wildcards in a group name match literally');
        assert.deepEqual(await ids({ group: 'finance_tea' }), [], 'a group matches whole');
        assert.deepEqual(await ids({ rule: 'no-finance' }), [b.id]);
        for (const hostile of ['"', 'zebras NEAR(', 'a OR', '*', ')(', "'; drop table exchanges; --"]) {
          await listExchanges(store.db, { text: hostile });
        }
        assert.equal((await listExchanges(store.db, {})).items.length, 2);
        // Text without a word in it matched every row on SQLite (the filter was dropped).
        for (const wordless of ['*', '"', '%', '-', '()']) assert.deepEqual(await ids({ text: wordless }), [], `--text ${wordless} matches nothing`);
        await recorder.drain();
      } finally {
        await store.close();
        await database.cleanup();
      }
    });
  });
}

for (const dialect of await testDialects()) {
  describe(`several writers on one ${dialect.name} database`, { skip: dialect.skip }, () => {
    test('concurrent appenders from separate connections form one gapless chain that verifies', async () => {
      const database = await dialect.create();
      const dir = mkdtempSync(join(tmpdir(), 'gatehouse-writers-'));
      const stores = [await openStore(database.config), await openStore(database.config), await openStore(database.config)];
      // One shared key, as docs/audit.md requires for several gateways.
      const trails = stores.map((s, i) => openAuditTrail(s.db, auditConfig(dir, { writerId: `gw-${i}`, checkpoint: { every: 25, interval: 3_600_000 } }), { createKey: true, withSinks: false, sqlitePath: s.sqlitePath }));
      try {
        await Promise.all(
          trails.flatMap((trail, w) => Array.from({ length: 60 }, (_, i) => trail.log.event({ kind: 'test.appended', actor: `gw-${w}`, target: `n:${i}`, details: { w, i } }))),
        );
        const report = await verifyChain(stores[0]!.db, { publicKeyPem: trails[0]!.signer!.publicKeyPem });
        assert.deepEqual(report.problems, []);
        assert.deepEqual([report.fromSeq, report.toSeq, report.events], [1, 180, 180]);
        const writers = await stores[0]!.db.selectFrom('audit_events').select('writer').distinct().execute();
        assert.equal(writers.length, 3, 'each process is named in its events');
        // Checkpoints are taken at the end of the batch that reaches `every` (25) events.
        assert.ok(report.checkpoints >= 2, `${report.checkpoints} checkpoints`);
      } finally {
        for (const trail of trails) await trail.close();
        for (const store of stores) await store.close();
        await database.cleanup();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}

describe('evidence export and the reviews that governed an exchange', () => {
  test('a filtered bundle carries the events of the review named by an exported exchange, and no other review', async () => {
    const [dialect] = await testDialects();
    const database = await dialect!.create();
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-export-review-'));
    const store = await openStore(database.config);
    const // SQLite records take the prepared-statement path, PostgreSQL the Kysely one.
      trail = openAuditTrail(store.db, auditConfig(dir), { createKey: true, withSinks: false, sqlitePath: store.sqlitePath });
    try {
      const recorder = createRecorder(store.db, { writer: trail.writer });
      const governed = { ...exchange('drop the staging table'), approval: { reviewId: 'rv_governing', via: 'held' } } as Exchange;
      await recorder.open(governed, allow, request);
      await recorder.finish(governed, outcome('done'));
      await trail.log.event({ kind: 'review.created', actor: 'key:ci-bot', target: 'review:rv_governing', details: {} });
      await trail.log.event({ kind: 'review.approved', actor: 'key:alice', target: 'review:rv_governing', details: {} });
      await trail.log.event({ kind: 'review.created', actor: 'key:other', target: 'review:rv_unrelated', details: {} });
      const { exportBundle } = await import('../../src/audit/index.js');
      const { readFileSync } = await import('node:fs');
      const out = join(dir, 'bundle');
      const result = await exportBundle(store.db, { subject: 'key:ci-bot' }, out, trail.signer!);
      // One exchange row was exported: the review travelling with it is not an exchange.
      assert.equal(result.exchanges, 1);
      assert.match(readFileSync(join(out, 'README.md'), 'utf8'), /: 1 exchanges, 4 events/);
      const targets = readFileSync(join(out, 'events.jsonl'), 'utf8').trim().split('\n').map((line) => (JSON.parse(line) as { target: string | null }).target);
      assert.deepEqual(targets, [governed.id, governed.id, 'review:rv_governing', 'review:rv_governing']);
    } finally {
      await trail.close();
      await store.close();
      await database.cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('evidence export of many rows', () => {
  test('writing past the file buffer again and again leaves no listener behind (Node warned of a leak past ten)', async () => {
    const [dialect] = await testDialects();
    const database = await dialect!.create();
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-export-many-'));
    const store = await openStore(database.config);
    const trail = openAuditTrail(store.db, auditConfig(dir), { createKey: true, withSinks: false, sqlitePath: store.sqlitePath });
    const warnings: string[] = [];
    const onWarning = (warning: Error) => void warnings.push(`${warning.name}: ${warning.message}`);
    process.on('warning', onWarning);
    try {
      const recorder = createRecorder(store.db, { writer: trail.writer });
      // Each row is larger than a write stream's 16 KiB buffer: every write waits for a drain.
      for (let i = 0; i < 24; i++) {
        const e = exchange(`report ${i} ${'x'.repeat(20_000)}`);
        await recorder.open(e, allow, request);
        await recorder.finish(e, outcome('y'.repeat(20_000)));
      }
      const { exportBundle } = await import('../../src/audit/index.js');
      const result = await exportBundle(store.db, {}, join(dir, 'bundle'), trail.signer!);
      assert.equal(result.exchanges, 24);
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(warnings.filter((w) => w.startsWith('MaxListenersExceeded')), []);
    } finally {
      process.off('warning', onWarning);
      await trail.close();
      await store.close();
      await database.cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
