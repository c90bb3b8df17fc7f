// Pure pieces of the audit: the canonical form hashes are computed over, bounded chunk
// timings, and the AES-256-GCM sealing of raw content.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalJson, canonicalState, ChunkTimings, createRawSealer, eventHash, genesisHash, recordedColumns, sha256Hex, stateDigest, stateValues } from '../../src/audit/index.js';
import { defaultState, type ExchangeState } from '../../src/audit/exchange-state.js';
import { eventFor } from '../../src/audit/record-columns.js';

describe('canonical JSON', () => {
  test('keys sorted at every depth, no whitespace, undefined members dropped', () => {
    assert.equal(canonicalJson({ b: 1, a: { d: [3, { z: null, y: 'é"' }], c: true }, u: undefined }), '{"a":{"c":true,"d":[3,{"y":"é\\"","z":null}]},"b":1}');
  });
  test('keys sort by UTF-16 code units (RFC 8785), not by locale', () => {
    assert.equal(canonicalJson({ 'é': 1, z: 2, Z: 3, '€': 4 }), '{"Z":3,"z":2,"é":1,"€":4}');
  });
  test('a non-finite number is refused rather than hashed as null', () => {
    assert.throws(() => canonicalJson({ n: Number.NaN }), /non-finite/);
  });
  test('an event hash is SHA-256 over the canonical event without its hash', () => {
    const event = { seq: 1, id: 'evt_1', at: 5, writer: 'w', kind: 'key.created', actor: 'cli:a', target: 'key:1', details: { b: 2, a: 1 }, prevHash: genesisHash };
    assert.equal(eventHash(event), sha256Hex(`{"actor":"cli:a","at":5,"details":{"a":1,"b":2},"id":"evt_1","kind":"key.created","prevHash":"${genesisHash}","seq":1,"target":"key:1","writer":"w"}`));
  });
  test('an event hash with awkward strings and null actor/target equals the generic canonical form', () => {
    const event = { seq: 9007199254740991, id: 'evt_"\\\u2028', at: 0, writer: 'h\u00e9/1', kind: 'k', actor: null, target: null, details: { z: [1, 'é'], a: { y: null } }, prevHash: 'f'.repeat(64) };
    const { seq, id, at, writer, kind, actor, target, details, prevHash } = event;
    assert.equal(eventHash(event), sha256Hex(canonicalJson({ seq, id, at, writer, kind, actor, target, details, prevHash })));
  });
  test('a row state digest equals SHA-256 over the canonical row, whatever the column values', () => {
    const values = [null, undefined, 0, -1, 1.5, 'x', '', 'é"\\\n', '{"a":1}', 12345678901234];
    for (let round = 0; round < 50; round++) {
      const row: Record<string, unknown> = {};
      recordedColumns.forEach((column, i) => (row[column] = values[(i * 7 + round * 3) % values.length]));
      const canonicalRow: Record<string, unknown> = {};
      for (const column of recordedColumns) canonicalRow[column] = row[column] === undefined ? null : row[column];
      assert.equal(stateDigest(row), sha256Hex(canonicalJson(canonicalRow)));
    }
  });
  test('the row literal the digest stringifies lists every column, in canonical order', () => {
    const row = Object.fromEntries(recordedColumns.map((column) => [column, column]));
    assert.deepEqual(Object.keys(canonicalState(row)!), [...recordedColumns].sort());
    assert.deepEqual(Object.values(canonicalState(row)!), [...recordedColumns].sort());
    assert.deepEqual(stateValues(row), [...recordedColumns]);
    assert.deepEqual(stateValues({}), recordedColumns.map(() => null));
    // A value the literal cannot write canonically (an object, a bigint, NaN) takes the generic form.
    for (const odd of [{ b: 1, a: 2 }, 10n, Number.NaN]) assert.equal(canonicalState({ ...row, usage: odd }), undefined);
    assert.equal(stateDigest({ ...row, usage: { b: 1, a: 2 } }), sha256Hex(canonicalJson({ ...row, usage: { a: 2, b: 1 } })));
    assert.throws(() => stateDigest({ ...row, usage: Number.NaN }), /non-finite/);
  });
});

describe('exchange events', () => {
  test('the details chained for a record write are in canonical form, whatever the row holds', () => {
    const base: ExchangeState = { ...defaultState, id: 'ex_1', session_id: 'ses_1', protocol: 'http', connection: 'c', operation: 'chat.completions', started_at: 1, decision: 'allow' };
    const strings = ['', 'é"\\\n\u2028', 'sql.select', '{"a":1}'];
    const numbers = [0, 200, 1.5, 12345678901234, -1];
    let fast = 0;
    for (let round = 0; round < 200; round++) {
      const pick = <T,>(xs: readonly T[], k: number) => xs[(round * k) % xs.length]!;
      const row = {
        ...base,
        connection: pick(strings, 1),
        operation: pick(strings, 3),
        decision: pick(['allow', 'deny', 'hold'], 1),
        rules: pick(['[]', '["r1"]', '["b","a","é"]', '[{"z":1,"a":null}]'], 5),
        status: pick([null, ...numbers], 7),
        complete: pick([0, 1], 1),
        bytes_out: pick([...numbers, 10n] as unknown[], 11),
        error_code: pick([null, 'upstream_timeout', 'é"'] as unknown[], 13),
      } as ExchangeState;
      const input = eventFor('exchange.finished', row, round % 2 === 0);
      let generic: string | undefined;
      try {
        generic = canonicalJson(input.details);
      } catch {
        generic = undefined; // a bigint: not hashable, and not written out either
      }
      assert.equal(input.canonicalDetails, generic, JSON.stringify(input.details, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v)));
      if (input.canonicalDetails !== undefined) fast += 1;
    }
    assert.ok(fast > 100, `${fast} rows took the written-out form`);
  });
});

describe('chunk timings', () => {
  test('bounded: when full, neighbours merge, bytes are kept and time stays ordered', () => {
    const timings = new ChunkTimings(8);
    for (let i = 0; i < 100; i++) timings.add(i * 10, 5);
    const pairs = timings.toJSON();
    assert.ok(pairs.length <= 8, `${pairs.length} pairs`);
    assert.equal(pairs.reduce((sum, [, bytes]) => sum + bytes, 0), 500);
    for (let i = 1; i < pairs.length; i++) assert.ok(pairs[i]![0] > pairs[i - 1]![0]);
    assert.equal(pairs.at(-1)![0], 990);
  });
});

describe('raw content sealing', () => {
  const sealer = createRawSealer('ab'.repeat(32));
  test('round trip, with a fresh IV each time', () => {
    const a = sealer.seal('the raw prompt', 'ex_1');
    const b = sealer.seal('the raw prompt', 'ex_1');
    assert.notEqual(a, b);
    assert.ok(!a.includes('raw prompt'));
    assert.equal(sealer.open(a, 'ex_1'), 'the raw prompt');
  });
  test('a sealed value moved to another exchange does not open', () => {
    assert.throws(() => sealer.open(sealer.seal('x', 'ex_1'), 'ex_2'), /does not open with the configured key/);
  });
  test('an altered sealed value does not open', () => {
    const [v, iv, tag, ct] = sealer.seal('secret answer', 'ex_1').split('.');
    const flipped = Buffer.from(ct!, 'base64');
    flipped[0]! ^= 1;
    assert.throws(() => sealer.open([v, iv, tag, flipped.toString('base64')].join('.'), 'ex_1'), /does not open/);
  });
  test('the key must be 32 bytes, hex or base64', () => {
    assert.throws(() => createRawSealer('abcd'), /must be 32 bytes/);
    assert.equal(createRawSealer(Buffer.alloc(32, 7).toString('base64')).open(createRawSealer('07'.repeat(32)).seal('k', 'e'), 'e'), 'k');
  });
});

describe('webhook sink', () => {
  test('a batch the webhook does not take is a rejected delivery naming why', async () => {
    const { createServer } = await import('node:http');
    const { createSinks } = await import('../../src/audit/sinks.js');
    const server = createServer((req, res) => req.resume().on('end', () => { res.statusCode = 500; res.end(); }));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as import('node:net').AddressInfo).port;
    const event = (seq: number) => ({ seq, id: `evt_${seq}`, at: 1, writer: 'w', kind: 'key.created', actor: null, target: null, details: {}, prevHash: genesisHash, hash: genesisHash });
    const sinks = createSinks([{ type: 'webhook', url: `http://127.0.0.1:${port}/`, secret: 's', timeout: 5_000 }], () => undefined);
    await assert.rejects(sinks[0]!.deliver([event(7), event(8), event(9)]), /^Error: HTTP 500$/);
    await new Promise((resolve) => server.close(resolve));
    // Nobody listens any more: a network error.
    await assert.rejects(sinks[0]!.deliver([event(10)]), /ECONNREFUSED/);
    assert.match(sinks[0]!.key, /^webhook:[0-9a-f]{16}$/, 'the cursor is named without the URL');
  });
});
