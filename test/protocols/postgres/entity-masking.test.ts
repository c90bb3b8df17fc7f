// Masking profiles over PostgreSQL values: each operator, each kind of type, text and
// binary formats, `fields` as column paths, and COPY lines that cannot be masked.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MaskPlanner, type MaskProfile } from '../../../src/mask/index.js';
import { entityMasking } from '../../../src/protocols/postgres/entity-masking.js';

const profile = (p: Partial<MaskProfile>): MaskProfile => ({ name: 'p', operator: 'redact', keepLast: 4, applyTo: 'response', ...p });
const masking = (...profiles: MaskProfile[]) => entityMasking(new MaskPlanner(profiles).plan(profiles.map((p) => p.name), 'response')!);
const column = (name: string, typeOid: number, format = 0) => ({ name, typeOid, format });

function mask(m: ReturnType<typeof masking>, col: ReturnType<typeof column>, value: Buffer | string): { out: Buffer | null | undefined; counts: Record<string, number> } {
  const counts: Record<string, number> = {};
  const apply = m.column(col);
  assert.ok(apply, `${col.name} is scanned`);
  return { out: apply(Buffer.isBuffer(value) ? value : Buffer.from(value), counts), counts };
}

describe('masking profiles over PostgreSQL values', () => {
  test('text: each operator; drop sends NULL; a value with nothing found is left as it came', () => {
    const text = column('notes', 25);
    assert.equal(mask(masking(profile({})), text, 'mail ann@example.com')!.out!.toString(), 'mail [EMAIL]');
    assert.equal(mask(masking(profile({ operator: 'partial', entities: ['US_SSN'] })), text, 'ssn 536-22-8841').out!.toString(), 'ssn ***-**-8841');
    assert.match(mask(masking(profile({ operator: 'hash', hashKey: 'k' })), text, 'ann@example.com').out!.toString(), /^\[EMAIL:[0-9a-f]{12}\]$/);
    const dropped = mask(masking(profile({ operator: 'drop' })), text, 'mail ann@example.com');
    assert.equal(dropped.out, null);
    assert.deepEqual(dropped.counts, { EMAIL: 1 });
    assert.equal(mask(masking(profile({})), text, 'nothing here').out, undefined);
  });

  test('json and jsonb (text and binary): string values masked, keys and numbers kept; fields reach into the document from the column name', () => {
    const doc = '{"email": "ann@example.com", "note": "ann@example.com", "n": 12}';
    const all = masking(profile({}));
    assert.deepEqual(JSON.parse(mask(all, column('contact', 114), doc).out!.toString()), { email: '[EMAIL]', note: '[EMAIL]', n: 12 });
    const binary = mask(all, column('contact', 3802, 1), Buffer.concat([Buffer.from([1]), Buffer.from(doc)])).out!;
    assert.equal(binary[0], 1, 'the jsonb version byte is kept');
    assert.deepEqual(JSON.parse(binary.subarray(1).toString()), { email: '[EMAIL]', note: '[EMAIL]', n: 12 });
    const onlyEmail = masking(profile({ fields: ['contact.email'] }));
    assert.deepEqual(JSON.parse(mask(onlyEmail, column('contact', 3802), doc).out!.toString()), { email: '[EMAIL]', note: 'ann@example.com', n: 12 });
    assert.equal(mask(onlyEmail, column('other', 3802), doc).out, undefined, 'another column is outside the profile');
    assert.deepEqual(JSON.parse(mask(masking(profile({ operator: 'drop' })), column('contact', 114), doc).out!.toString()), { n: 12 });
    assert.equal(mask(all, column('contact', 3802, 1), Buffer.from([2, 0x7b, 0x7d])).out, null, 'an unknown jsonb version is not sent unscanned');
  });

  test('other types: a value that carries an entity becomes NULL; binary int8 and inet are decoded to be scanned; binary values of types that hold no text are not scanned', () => {
    const m = masking(profile({}));
    assert.equal(mask(m, column('card', 20), '4111111111111111').out, null);
    assert.equal(mask(m, column('card', 20), '42').out, undefined);
    const int8 = Buffer.alloc(8);
    int8.writeBigInt64BE(4111111111111111n);
    assert.equal(mask(m, column('card', 20, 1), int8).out, null);
    assert.equal(mask(m, column('ip', 869, 1), Buffer.from([2, 32, 0, 4, 10, 1, 2, 3])).out, null);
    assert.equal(mask(m, column('ip', 869, 1), Buffer.from([3, 128, 0, 16, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])).out, null);
    assert.equal(m.column(column('at', 1184, 1)), undefined);
  });

  test('COPY lines: masked with every profile, fields ignored; a finding across a separator cannot be masked (undefined)', () => {
    const m = masking(profile({ fields: ['notes'] }));
    assert.equal(m.line('1\tmail ann@example.com\t7', {}), '1\tmail [EMAIL]\t7');
    const pem = '1\t-----BEGIN RSA PRIVATE KEY-----\tMIIEow\t2';
    assert.equal(m.line(pem, {}), undefined);
  });
});
