// The limits stage over the in-memory store (the Redis store runs the same checks as
// Lua scripts; test/e2e/policy-limits-redis.test.ts covers it across two processes).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { limitRuleSchema } from '../../src/config/policy-schema.js';
import { GatehouseError } from '../../src/errors/index.js';
import type { ExchangeOutcome } from '../../src/exchange/index.js';
import { createLimiter, createMemoryLimitStore, type LimitStore } from '../../src/policy/index.js';
import { exchangeOf, who } from './fixtures.js';

const limit = (spec: Record<string, unknown>) => limitRuleSchema.parse(spec);
const outcome = (totalTokens: number): ExchangeOutcome => ({ status: 200, complete: true, bytesIn: 0, bytesOut: 0, ttfbMs: 1, durationMs: 1, usage: { totalTokens } });

async function refusal(promise: Promise<unknown>): Promise<GatehouseError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof GatehouseError);
    return error;
  }
  assert.fail('expected a refusal');
}

describe('limits', () => {
  test('requests per window: N pass, then 429 with Retry-After to the end of the window', async () => {
    let now = 60_000 * 10 + 15_000;
    const limiter = createLimiter([limit({ name: 'r', requests: 2, window: '1m' })], createMemoryLimitStore(() => now));
    await limiter.admit(exchangeOf());
    await limiter.admit(exchangeOf());
    const error = await refusal(limiter.admit(exchangeOf()));
    assert.equal(error.code, 'rate_limited');
    assert.equal(error.status, 429);
    assert.equal(error.rule, 'r');
    assert.equal(error.retryAfterSeconds, 45);
    assert.equal(error.message, 'Rate limit "r" reached: too many requests per minute. Retry after 45 s.');
    now += 45_000; // next window
    await limiter.admit(exchangeOf());
  });

  test('per identity: another identity has its own counter; per group: each group counts', async () => {
    const limiter = createLimiter([limit({ name: 'id', requests: 1 }), limit({ name: 'grp', per: 'group', match: { groups: ['team-*'] }, requests: 2 })], createMemoryLimitStore());
    await limiter.admit(exchangeOf({ identity: who('key:a', ['team-x']) }));
    await limiter.admit(exchangeOf({ identity: who('key:b', ['team-x', 'other']) }));
    assert.equal((await refusal(limiter.admit(exchangeOf({ identity: who('key:a', []) })))).rule, 'id');
    assert.equal((await refusal(limiter.admit(exchangeOf({ identity: who('key:c', ['team-x']) })))).rule, 'grp');
    await limiter.admit(exchangeOf({ identity: who('key:d', ['team-y']) }));
  });

  test('a refused request counts nothing', async () => {
    const limiter = createLimiter([limit({ name: 'r', requests: 5 }), limit({ name: 'b', bytes: 100 })], createMemoryLimitStore());
    await limiter.admit(exchangeOf({ facts: { bytes: 80 } }));
    assert.equal((await refusal(limiter.admit(exchangeOf({ facts: { bytes: 30 } })))).rule, 'b');
    await limiter.admit(exchangeOf({ facts: { bytes: 20 } })); // 100 exactly: still fits
    const error = await refusal(limiter.admit(exchangeOf({ facts: { bytes: 1 } })));
    assert.equal(error.message, `Rate limit "b" reached: too many request bytes per minute. Retry after ${error.retryAfterSeconds} s.`);
  });

  test('embedding inputs per window', async () => {
    const limiter = createLimiter([limit({ name: 'e', match: { operations: ['embeddings'] }, embeddingInputs: 100 })], createMemoryLimitStore());
    await limiter.admit(exchangeOf({ operation: 'embeddings', facts: { inputCount: 60 } }));
    assert.equal((await refusal(limiter.admit(exchangeOf({ operation: 'embeddings', facts: { inputCount: 41 } })))).rule, 'e');
    await limiter.admit(exchangeOf({ operation: 'embeddings', facts: { inputCount: 40 } }));
    await limiter.admit(exchangeOf({ operation: 'chat.completions', facts: {} }));
  });

  test('tokens: counted from usage after the answer; refused once used up', async () => {
    const limiter = createLimiter([limit({ name: 't', tokens: 100 })], createMemoryLimitStore());
    const first = await limiter.admit(exchangeOf());
    await first.release(outcome(60));
    const second = await limiter.admit(exchangeOf());
    await second.release(outcome(50));
    const error = await refusal(limiter.admit(exchangeOf()));
    assert.equal(error.message.startsWith('Rate limit "t" reached: too many tokens per minute.'), true);
  });

  test('tokens: an answer without usage (a stream without include_usage, or cut short) counts an estimate from its text', async () => {
    const limiter = createLimiter([limit({ name: 't', tokens: 100 })], createMemoryLimitStore());
    const noUsage = (responseText: string | undefined): ExchangeOutcome => ({ status: 200, complete: true, bytesIn: 0, bytesOut: 0, ttfbMs: 1, durationMs: 1, responseText });
    // 40 characters of prompt + 200 of answer ≈ 60 tokens
    const first = await limiter.admit(exchangeOf({ facts: { text: 'p'.repeat(40) } }));
    await first.release(noUsage('a'.repeat(200)));
    const second = await limiter.admit(exchangeOf({ facts: { text: 'p'.repeat(40) } }));
    await second.release(noUsage('a'.repeat(200)));
    assert.equal((await refusal(limiter.admit(exchangeOf()))).rule, 't', 'two answers without usage used up the 100 tokens');
    // usage, when the answer reports it, is what counts
    const other = createLimiter([limit({ name: 't', tokens: 100 })], createMemoryLimitStore());
    await (await other.admit(exchangeOf({ facts: { text: 'p'.repeat(400) } }))).release(outcome(5));
    await other.admit(exchangeOf());
  });

  test('concurrent: slots are held until release', async () => {
    const limiter = createLimiter([limit({ name: 'c', concurrent: 2 })], createMemoryLimitStore());
    const a = await limiter.admit(exchangeOf());
    await limiter.admit(exchangeOf());
    const error = await refusal(limiter.admit(exchangeOf()));
    assert.equal(error.retryAfterSeconds, 1);
    assert.equal(error.message, 'Rate limit "c" reached: too many concurrent requests. Retry after 1 s.');
    await a.release(undefined);
    await limiter.admit(exchangeOf());
  });

  test('a refusal by a counter releases the slots it took', async () => {
    const limiter = createLimiter([limit({ name: 'c', concurrent: 1 }), limit({ name: 'r', requests: 1 })], createMemoryLimitStore());
    const first = await limiter.admit(exchangeOf());
    await first.release(undefined);
    assert.equal((await refusal(limiter.admit(exchangeOf()))).rule, 'r');
    assert.equal((await refusal(limiter.admit(exchangeOf()))).rule, 'r', 'not "c": the slot was given back');
  });

  test('maxRequestBytes refuses with 413 naming the limit; maxResponseBytes becomes the smallest cap', async () => {
    const limiter = createLimiter([limit({ name: 'size', maxRequestBytes: '1KiB', maxResponseBytes: '1MiB' }), limit({ name: 'size2', maxResponseBytes: 2048 })], createMemoryLimitStore());
    const error = await refusal(limiter.admit(exchangeOf({ facts: { bytes: 1025 } })));
    assert.equal(error.code, 'request_too_large');
    assert.equal(error.rule, 'size');
    assert.equal((await limiter.admit(exchangeOf({ facts: { bytes: 1024 } }))).maxResponseBytes, 2048);
  });

  test('a store that fails refuses the request (fail closed) with limits_unavailable', async () => {
    const broken: LimitStore = {
      take: async () => { throw new Error('ECONNREFUSED'); },
      add: async () => undefined,
      count: async () => { throw new Error('ECONNREFUSED'); },
      acquire: async () => true,
      release: async () => undefined,
      ping: async () => { throw new Error('ECONNREFUSED'); },
      close: async () => undefined,
    };
    const errors: unknown[] = [];
    const limiter = createLimiter([limit({ name: 'r', requests: 1 })], broken, 'UTC', (e) => errors.push(e));
    const error = await refusal(limiter.admit(exchangeOf()));
    assert.equal(error.code, 'limits_unavailable');
    assert.equal(error.status, 503);
    assert.equal(errors.length, 1);
  });

  test('no limit applies: nothing to release', async () => {
    const limiter = createLimiter([limit({ name: 'r', match: { connections: ['other'] }, requests: 1 })], createMemoryLimitStore());
    for (let i = 0; i < 3; i++) await limiter.admit(exchangeOf());
  });
});
