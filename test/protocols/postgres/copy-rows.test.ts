// Cutting and masking COPY rows (copy-rows.ts) on rows the database would not send: a
// row that cannot be cut into the described columns is not masked (undefined), so the
// session stops the statement instead of letting it leave raw.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { maskCopyRow } from '../../../src/protocols/postgres/copy-rows.js';
import type { CopyFormat } from '../../../src/protocols/postgres/copy-statement.js';
import type { ColumnPlan } from '../../../src/protocols/postgres/mask-rows.js';

const text: CopyFormat = { csv: false, delimiter: 0x09, nullString: Buffer.from('\\N'), quote: 0x22, escape: 0x22, header: false, forceQuote: [] };
const csv: CopyFormat = { ...text, csv: true, delimiter: 0x2c, nullString: Buffer.alloc(0) };
const redact: ColumnPlan = { kind: 'text', apply: () => '[EMAIL]' };
const keep: ColumnPlan = { kind: 'keep' };
const mask = (row: string, format: CopyFormat, plan: ColumnPlan[] = [keep, redact]) => maskCopyRow(Buffer.from(row), format, plan, [], {})?.toString();

describe('COPY rows cut and masked field by field', () => {
  test('rows as the database sends them are masked', () => {
    assert.equal(mask('1\tann@example.com\n', text), '1\t[EMAIL]\n');
    assert.equal(mask('1\\t2\tx\\ty\r\n', text), '1\\t2\t[EMAIL]\r\n', 'an escaped tab is not a delimiter; a Windows line end is kept');
    assert.equal(mask('"a,b",\n', csv), '"a,b",\n', 'an empty unquoted CSV field is NULL and stays NULL');
    assert.equal(mask('"a,b",""\n', csv), '"a,b",[EMAIL]\n', 'a quoted empty CSV field is a value');
    assert.equal(mask('1\t\\N\n', text), '1\t\\N\n');
  });

  test('a row that cannot be cut into the described columns is not masked', () => {
    assert.equal(mask('1\tann@example.com\textra\n', text), undefined, 'one field too many');
    assert.equal(mask('ann@example.com\n', text), undefined, 'one field too few');
    assert.equal(mask('1\tann@example.com', text), undefined, 'no line end');
    assert.equal(mask('1\tann@example.com\\\n', text), undefined, 'a backslash escaping the line end');
    assert.equal(mask('1,"ann@example.com\n', csv), undefined, 'a quote never closed');
  });
});
