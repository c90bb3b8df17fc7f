import assert from 'node:assert/strict';
import { test } from 'node:test';
import { duplicateKey } from '../../../src/protocols/http/duplicate-keys.js';

test('finds a key given twice in one object, at any depth, also when escaped differently', () => {
  assert.equal(duplicateKey('{"model":"gpt-4","model":"m"}'), 'model');
  assert.equal(duplicateKey('{"messages":[{"role":"user","content":"a","content":"b"}]}'), 'content');
  assert.equal(duplicateKey('{"model":"a","mod\\u0065l":"b"}'), 'model');
  assert.equal(duplicateKey('{"a":{"x":1},"b":[{"y":{"z":[1,{"k":1,"k":2}]}}]}'), 'k');
});

test('the same key in different objects, keys inside strings, and escapes are not duplicates', () => {
  assert.equal(duplicateKey('{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]}'), undefined);
  assert.equal(duplicateKey('{"a":"\\"a\\":1,","b":{"a":2},"c":["a","a"]}'), undefined);
  assert.equal(duplicateKey('{"a":"x\\\\","b":"y"}'), undefined);
  assert.equal(duplicateKey('[1,2,{"a":1}]'), undefined);
  assert.equal(duplicateKey('{}'), undefined);
});

test('deep nesting is scanned without recursion', () => {
  const depth = 100_000;
  assert.equal(duplicateKey(`${'{"a":'.repeat(depth)}{"b":1,"b":2}${'}'.repeat(depth)}`), 'b');
});
