// The record journal's open line, which leaves out the columns at their default
// (src/audit/journal/journal-lines.ts), and the writer's batch buffer. What recording
// relies on: the applier gets from each line exactly the row the full line gave it
// before, whatever the values hold.

import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { createRawSealer, recordableHeaders, recordedColumns } from '../../src/audit/index.js';
import { defaultState, rowWithDefaults, type ExchangeState } from '../../src/audit/exchange-state.js';
import { openLine } from '../../src/audit/journal/journal-lines.js';
import { JournalWriter } from '../../src/audit/journal/journal-writer.js';
import { recordColumns } from '../../src/audit/record-columns.js';
import type { Decision, RecordedRequest } from '../../src/exchange/index.js';
import { sampleExchange, sampleStartedAt } from '../helpers/exchanges.js';

/** Strings JSON.stringify escapes or that look like JSON, and plain ones. */
const awkward = ['', 'plain', '{"model":"m","messages":[]}', 'quote " and back\\slash', 'line\nbreak\ttab\u0000nul\u001f', 'é ü 中文', 'emoji 😀', 'lone \ud800 surrogate', 'sep \u2028\u2029', '</script>'];
const numbers = [0, 1, -1, 1.5, 200, 1795480631766, -0, 2 ** 53];
/** Written as JSON.stringify writes them (null for a non-finite number). */
const odd: unknown[] = [Number.NaN, Number.POSITIVE_INFINITY, true, false];
/** Not written out: the line comes from JSON.stringify. */
const objects = [{ a: 1 }, [1, 2]];

const pick = <T,>(xs: readonly T[], k: number): T => xs[Math.abs(k) % xs.length]!;

/** The row the applier ends up with for an open line. */
const applied = (line: string): ExchangeState => {
  assert.ok(line.endsWith('\n') && !line.slice(0, -1).includes('\n'), 'one line');
  const op = JSON.parse(line) as { op: string; row: Record<string, unknown> };
  assert.equal(op.op, 'open');
  return rowWithDefaults(op.row);
};

describe('record journal lines', () => {
  test('an open line leaves out the default columns and applies as the opened row', () => {
    const raw = createRawSealer(Buffer.alloc(32, 7).toString('hex'));
    for (let round = 0; round < 120; round++) {
      const columns = recordColumns({ raw: round % 3 === 0 ? raw : undefined, reexecutionOf: round % 4 === 0 ? () => `ex_${round}` : undefined });
      const exchange = sampleExchange({ startedAt: sampleStartedAt + round, ...(round % 5 === 0 ? { identity: undefined } : {}) });
      const decision: Decision | undefined =
        round % 7 === 0 ? undefined : { effect: pick(['allow', 'deny', 'require_approval'] as const, round), rules: round % 2 ? [] : [pick(awkward, round), 'r2'], reason: pick(awkward, round + 1), policyVersion: 'pv1', ...(round % 6 === 0 ? { obligations: { maxResponseBytes: 10 } } : {}) };
      const request: RecordedRequest | undefined =
        round % 9 === 0 ? undefined : { method: 'POST', path: pick(awkward, round + 2), headers: { 'content-type': pick(awkward, round + 3) }, body: round % 2 ? undefined : pick(awkward, round + 4), truncated: round % 3 === 1 };
      const row = columns.opened({ ...exchange, facts: { ...exchange.facts, text: pick([undefined, ...awkward], round), stream: round % 2 === 0 } }, decision, request);
      const line = openLine(row);
      assert.deepEqual(applied(line), row);
      const written = Object.keys(JSON.parse(line).row as object);
      for (const [column, value] of Object.entries(defaultState)) assert.equal(written.includes(column), row[column as keyof ExchangeState] !== value, column);
    }
  });

  test('an open line applies as the full line did, whatever the columns hold', () => {
    const values: unknown[] = [null, ...awkward, ...numbers, ...Object.values(defaultState), ...odd, ...objects, undefined];
    for (let round = 0; round < 300; round++) {
      const row = Object.fromEntries(recordedColumns.map((column, i) => [column, pick(values, i * 7 + round * 13 + ((round * i) % 5))])) as ExchangeState;
      assert.deepEqual(applied(openLine(row)), applied(`${JSON.stringify({ op: 'open', row })}\n`));
    }
    // Every column at its default: only the columns without one are written.
    const bare = { ...defaultState, id: 'ex_1', session_id: 'ex_1', protocol: 'http', connection: 'c', operation: 'o', started_at: 1, decision: 'deny' } as ExchangeState;
    assert.equal(openLine(bare), '{"op":"open","row":{"id":"ex_1","session_id":"ex_1","protocol":"http","connection":"c","operation":"o","started_at":1,"decision":"deny"}}\n');
    assert.deepEqual(applied(openLine(bare)), bare);
  });

  test('a row read from a line gets every missing column at its default, and keeps what the line holds', () => {
    const full = Object.fromEntries(recordedColumns.map((column) => [column, column])) as unknown as ExchangeState;
    assert.deepEqual(rowWithDefaults(full), full);
    assert.deepEqual(Object.keys(rowWithDefaults({})), [...recordedColumns]);
    const short = { id: 'ex_1', session_id: 'ex_1', protocol: 'http', connection: 'c', operation: 'o', started_at: 1, decision: 'allow', groups: null, complete: null, bytes_in: 5 };
    assert.deepEqual(rowWithDefaults(short), { ...defaultState, ...short });
  });
});

describe('recorded columns', () => {
  test('an operation holding a credential is redacted every time; a clean one is kept as it is', () => {
    const columns = recordColumns();
    const key = 'sk-live-4eC39HqLyjWDarjtT1zdp7dc';
    for (let i = 0; i < 3; i++) {
      assert.equal(columns.opened(sampleExchange({ operation: 'chat.completions' }), undefined, undefined).operation, 'chat.completions');
      assert.equal(columns.opened(sampleExchange({ operation: `http.GET /users/${key}` }), undefined, undefined).operation, 'http.GET /users/[OPENAI_KEY]');
    }
    // Past the remembered few hundred, still right.
    for (let i = 0; i < 600; i++) assert.equal(columns.opened(sampleExchange({ operation: `http.GET /items/${i}` }), undefined, undefined).operation, `http.GET /items/${i}`);
    assert.equal(columns.opened(sampleExchange({ operation: `http.GET /users/${key}` }), undefined, undefined).operation, 'http.GET /users/[OPENAI_KEY]');
  });

  test('recordable headers: names in any case are kept in lower case, and only those on the list', () => {
    assert.deepEqual(recordableHeaders({ 'Content-Type': 'application/json', accept: ['a', 'b'], Authorization: 'Bearer x', 'x-api-key': 'k', Cookie: 'c', 'USER-AGENT': 'u', date: undefined }), {
      'content-type': 'application/json',
      accept: 'a, b',
      'user-agent': 'u',
    });
  });
});

describe('record journal writer', () => {
  test('lines of any size and script are written whole and in order, one batch per flush', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-journal-writer-'));
    try {
      const writer = new JournalWriter(dir);
      const big = `${'é😀"x'.repeat(40_000)}`;
      const lines = ['{"a":1}\n', `${JSON.stringify({ big })}\n`, '{"b":"ü"}\n', `${JSON.stringify({ big: big.slice(0, 70_000) })}\n`];
      for (const line of lines) void writer.appendLine(line);
      writer.flush();
      // After a batch larger than the buffer, the next small batch still lands after it.
      void writer.append({ op: 'progress', id: 'ex_1', columns: { bytes_out: 1 } });
      writer.flush();
      writer.close();
      const [segment] = readdirSync(dir);
      const text = readFileSync(join(dir, segment!), 'utf8');
      assert.equal(text, `${lines.join('')}{"op":"progress","id":"ex_1","columns":{"bytes_out":1}}\n{"op":"end"}\n`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
