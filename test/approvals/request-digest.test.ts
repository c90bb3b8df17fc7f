import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { requestDigest } from '../../src/approvals/index.js';
import { GatehouseError } from '../../src/errors/index.js';
import { enforceDecision } from '../../src/policy/index.js';

describe('request digest (what an approval is bound to)', () => {
  test('the same JSON request re-encoded (key order, whitespace) has the same digest', () => {
    const a = requestDigest(Buffer.from('{"model":"m","messages":[{"role":"user","content":"hi"}]}'));
    const b = requestDigest(Buffer.from('{ "messages": [ { "content": "hi", "role": "user" } ],\n "model": "m" }'));
    assert.equal(a, b);
    assert.match(a, /^sha256:[0-9a-f]{64}$/);
  });

  test('a different body has a different digest; array order matters', () => {
    assert.notEqual(requestDigest(Buffer.from('{"input":["a","b"]}')), requestDigest(Buffer.from('{"input":["b","a"]}')));
    assert.notEqual(requestDigest(Buffer.from('{"x":1}')), requestDigest(Buffer.from('{"x":2}')));
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
