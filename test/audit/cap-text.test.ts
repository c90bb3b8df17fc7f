// The recorded prompt text is capped at recording.maxBodyBytes of UTF-8, never inside a character.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { capUtf8 } from '../../src/audit/record-columns.js';

test('text within the cap is kept as it is', () => {
  assert.equal(capUtf8('hello', 5), 'hello');
  assert.equal(capUtf8(undefined, 5), undefined);
  assert.equal(capUtf8('ééé', 6), 'ééé');
});

test('text over the cap is cut at a character boundary, at most the cap in bytes', () => {
  for (const [text, max, expected] of [
    ['ééé', 5, 'éé'],
    ['aé', 2, 'a'],
    ['a😀b', 4, 'a'],
    ['a😀b', 5, 'a😀'],
    ['abcdef', 3, 'abc'],
  ] as const) {
    const cut = capUtf8(text, max)!;
    assert.equal(cut, expected, `${text} at ${max}`);
    assert.ok(Buffer.byteLength(cut) <= max);
  }
});

test('a replacement character that was in the text is kept', () => {
  assert.equal(capUtf8('ab\ufffdcd', 5), 'ab\ufffd');
});
