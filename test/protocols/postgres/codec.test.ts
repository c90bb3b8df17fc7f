import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { dataRow, FrameReader, message, parseBind, ProtocolViolation, cstring, int16, int32 } from '../../../src/protocols/postgres/codec.js';
import { maskDataRow, planMasking } from '../../../src/protocols/postgres/mask-rows.js';
import { entityMasking } from '../../../src/protocols/postgres/entity-masking.js';
import { MaskPlanner } from '../../../src/mask/index.js';

describe('frame reader', () => {
  test('cuts frames across chunk boundaries', () => {
    const reader = new FrameReader(1024);
    const bytes = Buffer.concat([message('Q', cstring('select 1')), message('S')]);
    for (const b of bytes) reader.push(Buffer.from([b]));
    assert.equal(reader.next(false)!.body.toString(), 'select 1\0');
    assert.equal(reader.next(false)!.type, 'S');
    assert.equal(reader.next(false), undefined);
  });

  test('security: a declared length beyond the limit is refused before the body arrives', () => {
    const reader = new FrameReader(1024);
    reader.push(Buffer.concat([Buffer.from('Q'), int32(1025)]));
    assert.throws(() => reader.next(false), new ProtocolViolation('message length 1025 exceeds the limit of 1024 bytes'));
  });

  test('security: a length below 4 is refused', () => {
    const reader = new FrameReader(1024);
    reader.push(Buffer.concat([Buffer.from('Q'), int32(3)]));
    assert.throws(() => reader.next(false), new ProtocolViolation('invalid message length 3'));
  });

  test('Bind fields are bounds-checked', () => {
    const body = Buffer.concat([cstring(''), cstring('s1'), int16(0), int16(2), int32(2), Buffer.from('42'), int32(-1), int16(0)]);
    assert.deepEqual(parseBind(body), { portal: '', statement: 's1', params: ['42', null], binary: undefined, resultFormats: [] });
    assert.throws(() => parseBind(body.subarray(0, body.length - 4)), ProtocolViolation);
  });

  test('Bind: binary values are a marker in params, and kept as sent in `binary` (approvals bind to them)', () => {
    const body = Buffer.concat([cstring('p'), cstring(''), int16(2), int16(0), int16(1), int16(2), int32(1), Buffer.from('7'), int32(4), int32(42), int16(0)]);
    const bind = parseBind(body);
    assert.deepEqual(bind.params, ['7', '<binary 4 bytes>']);
    assert.deepEqual([...bind.binary!], [[1, int32(42)]]);
  });
});

describe('DataRow masking', () => {
  const columns = [
    { name: 'id', typeOid: 23, format: 0 },
    { name: 'email', typeOid: 25, format: 0 },
    { name: 'ssn', typeOid: 1043, format: 0 },
    { name: 'born', typeOid: 1082, format: 0 },
    { name: 'note', typeOid: 25, format: 0 },
  ];
  const row = dataRow([Buffer.from('7'), Buffer.from('ann@example.com'), Buffer.from('123-45-6789'), Buffer.from('1990-01-02'), Buffer.from('call ann@example.com')]);

  test('column rules keep values valid for their types; masking profiles scan the other values', () => {
    const profiles = new MaskPlanner([{ name: 'pii', operator: 'redact', keepLast: 4, applyTo: 'response' }]).plan(['pii'], 'response')!;
    const plan = planMasking(columns, { columns: new Map([['email', 'redact'], ['ssn', 'partial'], ['born', 'redact']]), entities: entityMasking(profiles) })!;
    const counts = {};
    const masked = maskDataRow(row, row.subarray(5), plan, counts);
    assert.deepEqual(masked, dataRow([Buffer.from('7'), Buffer.from('[EMAIL]'), Buffer.from('*******6789'), null, Buffer.from('call [EMAIL]')]));
    assert.deepEqual(counts, { EMAIL: 1 });
  });

  test('no rule and no hook: no plan, the row is untouched', () => {
    assert.equal(planMasking(columns, { columns: new Map() }), undefined);
  });
});
