import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BodyCapture, captureWhole, isTextual } from '../../../src/protocols/http/body-capture.js';

describe('BodyCapture', () => {
  test('under the limit: everything kept, not truncated', () => {
    const capture = new BodyCapture(100);
    capture.push(Buffer.from('hello '));
    capture.push(Buffer.from('world'));
    assert.equal(capture.text(), 'hello world');
    assert.equal(capture.truncated, false);
  });

  test('exactly at the limit is not truncated', () => {
    const capture = new BodyCapture(10);
    capture.push(Buffer.from('12345'));
    capture.push(Buffer.from('67890'));
    assert.equal(capture.text(), '1234567890');
    assert.equal(capture.truncated, false);
    capture.push(Buffer.alloc(0));
    assert.equal(capture.truncated, false, 'an empty chunk past the limit is not a truncation');
  });

  test('a chunk crossing the limit is cut and flagged', () => {
    const capture = new BodyCapture(8);
    capture.push(Buffer.from('12345'));
    capture.push(Buffer.from('67890'));
    assert.equal(capture.text(), '12345678');
    assert.equal(capture.truncated, true);
  });

  test('chunks after the limit are dropped and flagged', () => {
    const capture = new BodyCapture(5);
    capture.push(Buffer.from('12345'));
    assert.equal(capture.truncated, false);
    capture.push(Buffer.from('6'));
    assert.equal(capture.text(), '12345');
    assert.equal(capture.truncated, true);
  });

  test('a limit of 0 keeps nothing', () => {
    const capture = new BodyCapture(0);
    assert.equal(capture.truncated, false);
    capture.push(Buffer.from('x'));
    assert.equal(capture.text(), '');
    assert.equal(capture.truncated, true);
  });

  test('a multi-byte character cut at the limit decodes to U+FFFD, never throws', () => {
    const capture = new BodyCapture(2);
    capture.push(Buffer.from('€')); // 3 bytes
    assert.equal(capture.truncated, true);
    assert.equal(capture.text(), '\uFFFD');
  });
});

describe('captureWhole', () => {
  test('at or under the limit: whole', () => {
    assert.deepEqual(captureWhole(Buffer.from('abc'), 3), { text: 'abc', truncated: false });
    assert.deepEqual(captureWhole(Buffer.alloc(0), 0), { text: '', truncated: false });
  });

  test('over the limit: cut and flagged', () => {
    assert.deepEqual(captureWhole(Buffer.from('abcdef'), 4), { text: 'abcd', truncated: true });
  });
});

describe('isTextual', () => {
  const textual = [
    undefined,
    '',
    '  ',
    'text/plain',
    'text/event-stream',
    'text/html; charset=utf-8',
    'application/json',
    'application/json; charset=utf-8',
    'APPLICATION/JSON',
    'application/problem+json',
    'application/vnd.api+json',
    'application/x-ndjson',
    'application/xml',
    'application/atom+xml',
    'application/x-www-form-urlencoded',
    'application/javascript',
    'application/yaml',
    'application/x-yaml',
  ];
  const binary = ['application/octet-stream', 'image/png', 'audio/mpeg', 'multipart/form-data; boundary=x', 'application/zip', 'application/gzip', 'application/x-protobuf', 'video/mp4'];
  for (const type of textual) test(`${JSON.stringify(type) ?? 'undefined'} is textual`, () => assert.equal(isTextual(type), true));
  for (const type of binary) test(`${JSON.stringify(type)} is not textual`, () => assert.equal(isTextual(type), false));
});
