import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createHash } from 'node:crypto';
import { canonicalJson, requestDigest } from '../../src/approvals/index.js';
import { GatehouseError } from '../../src/errors/index.js';
import { enforceDecision } from '../../src/policy/index.js';

describe('request digest (what an approval is bound to)', () => {
  test('the same JSON request re-encoded (key order, whitespace) has the same digest', () => {
    const a = requestDigest(Buffer.from('{"model":"m","messages":[{"role":"user","content":"hi"}]}'));
    const b = requestDigest(Buffer.from('{ "messages": [ { "content": "hi", "role": "user" } ],\n "model": "m" }'));
    assert.equal(a, b);
    assert.match(a, /^sha256:[0-9a-f]{64}$/);
  });

  test('security: the query string is bound too (an approval of ?dry_run=true is not one of ?dry_run=false); without one, the body alone as before', () => {
    const body = Buffer.from('{"job":"wipe-tenant-42"}');
    assert.notEqual(requestDigest(body, 'dry_run=true'), requestDigest(body, 'dry_run=false'));
    assert.notEqual(requestDigest(body, 'dry_run=true'), requestDigest(body));
    assert.equal(requestDigest(body, ''), requestDigest(body));
    assert.equal(requestDigest(body), `sha256:${createHash('sha256').update('{"job":"wipe-tenant-42"}').digest('hex')}`);
  });

  test('a different body has a different digest; array order matters', () => {
    assert.notEqual(requestDigest(Buffer.from('{"input":["a","b"]}')), requestDigest(Buffer.from('{"input":["b","a"]}')));
    assert.notEqual(requestDigest(Buffer.from('{"x":1}')), requestDigest(Buffer.from('{"x":2}')));
  });

  test('numbers keep their spelling: two integers past 2^53 that round to one double are two requests', () => {
    const digest = (text: string) => requestDigest(Buffer.from(text));
    assert.notEqual(digest('{"to":12345678901234567891}'), digest('{"to":12345678901234567890}'));
    assert.notEqual(digest('{"x":[9007199254740993]}'), digest('{"x":[9007199254740992]}'));
    assert.notEqual(digest('{"t":1.0}'), digest('{"t":1}'));
    assert.equal(digest('{ "to" : 12345678901234567891 }'), digest('{"to":12345678901234567891}'));
  });

  test('the canonical form is the one JSON.stringify writes for ordinary bodies (digests from before stay valid)', () => {
    const body = String.raw`{ "model":"m", "n": 2, "temperature": 0.5, "stop": null, "stream": false, "messages":[{"role":"user","content":"h\u00e9 \"q\" \ud83d\ude00 \/"}] }`;
    const expected = createHash('sha256').update(canonicalJson(JSON.parse(body))).digest('hex');
    assert.equal(requestDigest(Buffer.from(body)), `sha256:${expected}`);
    assert.equal(requestDigest(Buffer.from(String.raw`{"a":"\u0041"}`)), requestDigest(Buffer.from('{"a":"A"}')));
  });

  test('a body the canonical form would make ambiguous is hashed as bytes: a key given twice, bytes that are not UTF-8, deep nesting', () => {
    const bytes = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
    const twice = Buffer.from('{"to":"alice","to":"mallory"}');
    assert.equal(requestDigest(twice), bytes(twice));
    assert.notEqual(requestDigest(twice), requestDigest(Buffer.from('{"to":"mallory"}')));
    const a = Buffer.concat([Buffer.from('{"x":"'), Buffer.from([0xff]), Buffer.from('"}')]);
    const b = Buffer.concat([Buffer.from('{"x":"'), Buffer.from([0xfe]), Buffer.from('"}')]);
    assert.notEqual(requestDigest(a), requestDigest(b));
    const deep = Buffer.from(`${'['.repeat(100_000)}${']'.repeat(100_000)}`);
    assert.equal(requestDigest(deep), bytes(deep));
  });

  test('a non-JSON body is hashed as bytes; an empty body as ""', () => {
    assert.equal(requestDigest(Buffer.from('not json')), 'sha256:7ccfa1fbf3940e6f0c0375d87c0f9235a50514e14cb427bdfaf5077987b26ccf');
    assert.equal(requestDigest(undefined), 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    assert.equal(requestDigest(Buffer.alloc(0)), requestDigest(undefined));
  });
});

describe('authorize with and without approvals', () => {
  const decision = { effect: 'require_approval' as const, rules: ['risky'], reason: 'rule-require-approval', policyVersion: 'v1' };

  test('require_approval passes on to the approvals stage when approvals are configured', () => {
    assert.doesNotThrow(() => enforceDecision(decision, { approvals: true }));
  });

  test('require_approval without approvals stays refused (fail closed)', () => {
    assert.throws(() => enforceDecision(decision), (error: GatehouseError) => error.code === 'access_denied' && error.rule === 'risky');
    assert.throws(() => enforceDecision(decision, { approvals: false }), GatehouseError);
  });

  test('deny is refused even with approvals', () => {
    assert.throws(() => enforceDecision({ ...decision, effect: 'deny', message: 'no' }, { approvals: true }), (error: GatehouseError) => error.message === 'no');
  });
});
