// What a review shows of a held statement: its text and its parameter values.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { statementPreview } from '../../../src/protocols/postgres/hold-statement.js';

describe('statementPreview', () => {
  test('parameters follow the text as SQL literals; NULL and quotes are shown as SQL writes them', () => {
    assert.equal(statementPreview('update t set a = $1 where b = $2', ["it's", null]), "update t set a = $1 where b = $2\n-- parameters: $1 = 'it''s', $2 = NULL");
    assert.equal(statementPreview('select 1', []), 'select 1');
    assert.equal(statementPreview('select 1', undefined), 'select 1');
  });

  test('a long text is cut first so the values stay within the 500 characters a review keeps', () => {
    const preview = statementPreview(`delete from t where id = $1 /* ${'x'.repeat(1000)} */`, ['42', 'y'.repeat(500)]);
    assert.ok(preview.length <= 500, String(preview.length));
    assert.match(preview, /^delete from t where id = \$1 \/\* x+…\n-- parameters: \$1 = '42', \$2 = 'y+…'$/);
  });
});
