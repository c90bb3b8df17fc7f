import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Kysely } from 'kysely';
import { createRecorder, getExchange, GroupCommitWriter, listExchanges, type ExchangeFilter, type Recorder } from '../../src/audit/index.js';
import type { Decision, Exchange, ExchangeOutcome, RecordedRequest } from '../../src/exchange/index.js';
import { openStore, type Database, type Store } from '../../src/store/index.js';
import { testDialects, type TestDatabase } from '../helpers/databases.js';
import { sampleExchange, sampleStartedAt } from '../helpers/exchanges.js';

const start = sampleStartedAt;
const makeExchange = sampleExchange;

const allow: Decision = { effect: 'allow', rules: ['allow-ml'], reason: 'rule-matched', policyVersion: 'pv1' };
const deny: Decision = { effect: 'deny', rules: ['no-embeddings'], reason: 'rule-matched', message: 'not for you', policyVersion: 'pv1' };

const request: RecordedRequest = {
  method: 'POST',
  path: '/v1/chat/completions',
  headers: { 'content-type': 'application/json', 'user-agent': 'test-agent' },
  body: '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"What is 2+2?"}]}',
  truncated: false,
};

const outcome: ExchangeOutcome = {
  status: 200,
  complete: true,
  bytesIn: 81,
  bytesOut: 5_000_000_123,
  ttfbMs: 12.4,
  durationMs: 250.6,
  responseHeaders: { 'content-type': 'text/event-stream' },
  responseBody: 'data: {"choices":[]}\n\ndata: [DONE]\n\n',
  responseTruncated: true,
  responseText: '4',
  usage: { promptTokens: 9, completionTokens: 1, totalTokens: 10 },
};

for (const dialect of await testDialects()) {
  describe(`recorder on ${dialect.name}`, { skip: dialect.skip }, () => {
    let database: TestDatabase;
    let store: Store;
    let recorder: Recorder;
    let writer: GroupCommitWriter;

    beforeEach(async () => {
      database = await dialect.create();
      store = await openStore(database.config);
      // SQLite records take the prepared-statement path, PostgreSQL the Kysely one.
      writer = new GroupCommitWriter(store.db, { sqlitePath: store.sqlitePath });
      recorder = createRecorder(store.db, { writer });
    });
    afterEach(async () => {
      await recorder.drain();
      await writer.close();
      await store.close();
      await database.cleanup();
    });

    const count = async () => Number((await store.db.selectFrom('exchanges').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);

    test('open then finish: one row with the request, the decision and the outcome, complete', async () => {
      const exchange = makeExchange();
      await recorder.open(exchange, allow, request);

      const opened = await getExchange(store.db, exchange.id);
      assert.ok(opened);
      assert.equal(opened.complete, false, 'open alone is not complete');
      assert.equal(opened.status, null);

      await recorder.finish(exchange, outcome);
      assert.equal(await count(), 1);
      assert.deepEqual(await getExchange(store.db, exchange.id), {
        id: exchange.id,
        sessionId: 'ses_test',
        startedAt: new Date(start).toISOString(),
        connection: 'openai',
        operation: 'chat.completions',
        subject: 'key:ci-bot',
        identityKind: 'service',
        decision: 'allow',
        rules: ['allow-ml'],
        status: 200,
        errorCode: null,
        model: 'gpt-4o-mini',
        stream: true,
        complete: true,
        durationMs: 251,
        endedAt: new Date(start + 251).toISOString(),
        authMethod: 'api_key',
        credentialId: '0123456789abcdef',
        groups: ['ml', 'ops'],
        clientAddress: '10.0.0.7',
        reason: 'rule-matched',
        policyVersion: 'pv1',
        obligations: null,
        errorDetail: null,
        request: { method: 'POST', path: '/v1/chat/completions', headers: request.headers, body: request.body, truncated: false, promptText: 'What is 2+2?' },
        response: {
          headers: { 'content-type': 'text/event-stream' },
          body: outcome.responseBody,
          truncated: true,
          text: '4',
          usage: { promptTokens: 9, completionTokens: 1, totalTokens: 10 },
        },
        bytesIn: 81,
        bytesOut: 5_000_000_123,
        ttfbMs: 12,
        approval: null,
        maskCounts: null,
        reviewId: null,
        reexecutionOf: null,
        chunkTimings: null,
        rawRecorded: false,
      });

      const { items, next } = await listExchanges(store.db, {});
      assert.equal(next, undefined);
      assert.deepEqual(items.map((i) => [i.id, i.complete, i.status]), [[exchange.id, true, 200]]);
    });

    test('open without finish leaves a row marked incomplete', async () => {
      const exchange = makeExchange({ identity: undefined, facts: { stream: false } });
      await recorder.open(exchange, allow, request);
      const detail = await getExchange(store.db, exchange.id);
      assert.ok(detail);
      assert.equal(detail.complete, false);
      assert.equal(detail.endedAt, null);
      assert.equal(detail.status, null);
      assert.equal(detail.durationMs, null);
      assert.equal(detail.subject, null);
      assert.deepEqual(detail.groups, []);
      assert.equal(detail.stream, false);
      assert.equal(detail.model, null);
      assert.equal(detail.bytesIn, 0);
      assert.deepEqual(detail.response, { headers: null, body: null, truncated: false, text: null, usage: null });
      assert.deepEqual((await listExchanges(store.db, {})).items.map((i) => i.complete), [false]);
    });

    test('a finish that reports an incomplete answer stays incomplete', async () => {
      const exchange = makeExchange();
      await recorder.open(exchange, allow, request);
      await recorder.finish(exchange, { status: 200, complete: false, bytesIn: 81, bytesOut: 10, ttfbMs: 5, durationMs: 40, errorCode: 'client_closed', errorDetail: 'socket closed' });
      const detail = await getExchange(store.db, exchange.id);
      assert.equal(detail?.complete, false);
      assert.equal(detail?.errorCode, 'client_closed');
      assert.equal(detail?.errorDetail, 'socket closed');
      assert.equal(detail?.endedAt, new Date(start + 40).toISOString());
    });

    test('refuse writes one row with the denial, its status and error code', async () => {
      const exchange = makeExchange({ operation: 'embeddings' });
      await recorder.refuse(exchange, deny, request, {
        status: 403,
        complete: true,
        bytesIn: 0,
        bytesOut: 0,
        ttfbMs: undefined,
        durationMs: 3,
        errorCode: 'access_denied',
        errorDetail: 'rule no-embeddings',
      });
      assert.equal(await count(), 1);
      const detail = await getExchange(store.db, exchange.id);
      assert.ok(detail);
      assert.equal(detail.decision, 'deny');
      assert.deepEqual(detail.rules, ['no-embeddings']);
      assert.equal(detail.status, 403);
      assert.equal(detail.errorCode, 'access_denied');
      assert.equal(detail.errorDetail, 'rule no-embeddings');
      assert.equal(detail.complete, true);
      assert.equal(detail.ttfbMs, null);
      assert.equal(detail.request.path, '/v1/chat/completions');

      // a refusal before any decision (e.g. a bad credential) is recorded as a deny too
      const anonymous = makeExchange({ identity: undefined });
      await recorder.refuse(anonymous, undefined, undefined, { status: 401, complete: true, bytesIn: 0, bytesOut: 0, ttfbMs: undefined, durationMs: 1, errorCode: 'invalid_credential' });
      const second = await getExchange(store.db, anonymous.id);
      assert.equal(second?.decision, 'deny');
      assert.deepEqual(second?.rules, []);
      assert.equal(second?.status, 401);
      assert.equal(second?.errorCode, 'invalid_credential');
      assert.equal(second?.subject, null);
      assert.equal(second?.request.method, null);
      assert.equal(second?.request.headers, null);
    });

    test('getExchange of an unknown id is undefined', async () => {
      assert.equal(await getExchange(store.db, 'ex_nope'), undefined);
    });

    test('500 concurrent opens are group-committed in a few transactions and all appear', async () => {
      let transactions = 0;
      const counting = Object.create(store.db) as Kysely<Database>;
      counting.transaction = () => {
        transactions++;
        return store.db.transaction();
      };
      const grouped = createRecorder(counting);
      const exchanges = Array.from({ length: 500 }, (_, i) => makeExchange({ startedAt: start + i }));
      await Promise.all(exchanges.map((e) => grouped.open(e, allow, request)));
      assert.ok(transactions >= 1 && transactions <= 5, `${transactions} transactions for 500 writes`);

      // committed: visible through a separate store instance (another connection / pool)
      const reader = await openStore(database.config, { migrate: false });
      try {
        const rows = await reader.db.selectFrom('exchanges').select('id').execute();
        assert.equal(rows.length, 500);
        assert.deepEqual(new Set(rows.map((r) => r.id)), new Set(exchanges.map((e) => e.id)));
      } finally {
        await reader.close();
      }

      await Promise.all(exchanges.map((e) => grouped.finish(e, outcome)));
      const incomplete = await store.db.selectFrom('exchanges').select('id').where('complete', '=', 0).execute();
      assert.deepEqual(incomplete, []);

      // one more row, and the page size is capped at 500
      await grouped.refuse(makeExchange(), deny, request, { status: 403, complete: true, bytesIn: 0, bytesOut: 0, ttfbMs: undefined, durationMs: 1, errorCode: 'access_denied' });
      const page = await listExchanges(store.db, { limit: 10_000 });
      assert.equal(page.items.length, 500);
      assert.notEqual(page.next, undefined);
      const rest = await listExchanges(store.db, { limit: 10_000, before: page.next });
      assert.equal(rest.items.length, 1);
      assert.equal(rest.next, undefined);
      assert.equal(rest.items[0]!.id, exchanges[0]!.id, 'the oldest comes last');
    });

    test('drain resolves once queued writes are committed', async () => {
      const exchanges = Array.from({ length: 20 }, () => makeExchange());
      const pending = exchanges.map((e) => recorder.open(e, allow, request));
      await recorder.drain();
      assert.equal(await count(), 20);
      await Promise.all(pending);
    });

    test('filters and cursor paging return exactly the right rows, newest first, without duplicates', async () => {
      const connections = ['openai', 'anthropic', 'local'];
      const subjects = ['key:alice', 'key:bob', 'key:carol', undefined];
      const operations = ['chat.completions', 'embeddings'];
      const recorded: Array<{ exchange: Exchange; decision: 'allow' | 'deny' }> = [];
      const writes: Promise<void>[] = [];
      for (let i = 0; i < 47; i++) {
        const subject = subjects[i % 4];
        const exchange = makeExchange({
          connection: connections[i % 3]!,
          operation: operations[Math.floor(i / 2) % 2]!,
          startedAt: start + i * 1000,
          identity: subject === undefined ? undefined : { subject, kind: 'human', groups: [], method: 'api_key', credentialId: `cred${i}` },
        });
        if (i % 5 === 0) {
          writes.push(recorder.refuse(exchange, deny, request, { status: 403, complete: true, bytesIn: 0, bytesOut: 0, ttfbMs: undefined, durationMs: 1, errorCode: 'access_denied' }));
          recorded.push({ exchange, decision: 'deny' });
        } else {
          writes.push(recorder.open(exchange, allow, request));
          recorded.push({ exchange, decision: 'allow' });
        }
      }
      await Promise.all(writes);

      const expected = (filter: ExchangeFilter) =>
        recorded
          .filter(({ exchange: e, decision }) =>
            (!filter.connection || e.connection === filter.connection) &&
            (!filter.subject || e.identity?.subject === filter.subject) &&
            (!filter.decision || decision === filter.decision) &&
            (!filter.operation || e.operation === filter.operation) &&
            (filter.since === undefined || e.startedAt >= filter.since) &&
            (filter.until === undefined || e.startedAt <= filter.until),
          )
          .map(({ exchange }) => exchange.id)
          .reverse();

      const filters: ExchangeFilter[] = [
        {},
        { connection: 'anthropic' },
        { subject: 'key:alice' },
        { decision: 'deny' },
        { decision: 'allow' },
        { operation: 'embeddings' },
        { since: start + 10_000 },
        { until: start + 10_000 },
        { since: start + 10_000, until: start + 30_000 },
        { connection: 'openai', operation: 'chat.completions', decision: 'allow' },
        { subject: 'key:bob', since: start + 5_000, until: start + 40_000 },
      ];
      const selectNothing: ExchangeFilter[] = [{ connection: 'nowhere' }, { since: start + 100_000 }, { until: start - 1 }];
      for (const filter of [...filters, ...selectNothing]) {
        const want = expected(filter);
        const label = JSON.stringify(filter);
        const empty = selectNothing.includes(filter);
        assert.equal(want.length === 0, empty, `${label} ${empty ? 'selects nothing' : 'selects something'}`);
        if (!empty && Object.keys(filter).length > 0) assert.ok(want.length < recorded.length, `${label} leaves something out`);

        const all = await listExchanges(store.db, { ...filter, limit: 500 });
        assert.deepEqual(all.items.map((i) => i.id), want, `${label} in one page`);
        assert.equal(all.next, undefined);

        for (const limit of [1, 7, want.length || 1]) {
          const seen: string[] = [];
          let before: number | undefined;
          let pages = 0;
          for (;;) {
            const page = await listExchanges(store.db, { ...filter, limit, before });
            assert.ok(page.items.length <= limit);
            seen.push(...page.items.map((i) => i.id));
            pages++;
            assert.ok(pages <= want.length + 1, `${label} limit ${limit}: paging terminates`);
            if (page.next === undefined) break;
            assert.equal(page.items.length, limit, 'only the last page is short');
            assert.equal(typeof page.next, 'number');
            if (before !== undefined) assert.ok(page.next < before, 'the cursor moves back');
            before = page.next;
          }
          assert.deepEqual(seen, want, `${label} paged by ${limit}`);
          assert.equal(new Set(seen).size, seen.length, 'no duplicates across pages');
          assert.equal(pages, Math.max(1, Math.ceil(want.length / limit)), `${label} limit ${limit}: no empty trailing page`);
        }
      }

      const summary = (await listExchanges(store.db, { decision: 'deny', limit: 1 })).items[0]!;
      const last = recorded.filter((r) => r.decision === 'deny').at(-1)!.exchange;
      assert.equal(summary.id, last.id);
      assert.equal(summary.startedAt, new Date(last.startedAt).toISOString());
      assert.equal(summary.status, 403);
      assert.equal(summary.errorCode, 'access_denied');
    });

    test('a failed write in a batch rejects only itself; its neighbours commit and the writer keeps going', async () => {
      const first = makeExchange();
      await recorder.open(first, allow, request);

      // Queued in the same turn: one batch. The duplicate id fails the batch's
      // transaction; each write is then retried alone, so only the bad one is rejected.
      const neighbourBefore = makeExchange();
      const neighbourAfter = makeExchange();
      const results = await Promise.allSettled([
        recorder.open(neighbourBefore, allow, request),
        recorder.open(first, allow, request),
        recorder.open(neighbourAfter, allow, request),
      ]);
      assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
      assert.equal((await getExchange(store.db, neighbourBefore.id))?.id, neighbourBefore.id);
      assert.equal((await getExchange(store.db, neighbourAfter.id))?.id, neighbourAfter.id);
      assert.equal(await count(), 3);

      // not wedged: later writes, single and grouped, commit
      const later = makeExchange();
      await recorder.open(later, allow, request);
      await recorder.finish(first, outcome);
      const burst = Array.from({ length: 30 }, () => makeExchange());
      await Promise.all(burst.map((e) => recorder.open(e, allow, request)));
      await recorder.drain();
      assert.equal(await count(), 34);
      assert.equal((await getExchange(store.db, first.id))?.complete, true);
      assert.equal((await getExchange(store.db, later.id))?.complete, false);

      // a failure in a refuse() is the same story
      await assert.rejects(recorder.refuse(later, deny, request, { status: 403, complete: true, bytesIn: 0, bytesOut: 0, ttfbMs: undefined, durationMs: 1 }));
      const after = makeExchange();
      await recorder.open(after, allow, request);
      assert.equal(await count(), 35);
    });
  });
}
