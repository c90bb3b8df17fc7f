// The failed-authentication throttle on its own, with the real in-memory limit store:
// what is counted, when attempts stop being checked, what the hot path costs (no store
// call for an address never refused), the /64 grouping of IPv6, and the bound on memory.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GatehouseError } from '../../src/errors/index.js';
import type { Identity } from '../../src/exchange/index.js';
import { addressKey, createAuthThrottle, type AuthThrottleConfig, type ThrottledEvent } from '../../src/identity/index.js';
import { createMemoryLimitStore, type LimitStore } from '../../src/policy/index.js';

const goodKey = `ghk_0123456789abcdef_${'a'.repeat(43)}`;
const badKey = `ghk_0123456789abcdef_${'b'.repeat(43)}`;
const otherBadKey = `ghk_fedcba9876543210_${'b'.repeat(43)}`;
const identity: Identity = { subject: 'key:bot', kind: 'service', groups: ['ml'], method: 'api_key', credentialId: '0123456789abcdef' };

function config(overrides: Partial<AuthThrottleConfig> = {}): AuthThrottleConfig {
  return { enabled: true, perAddress: { limit: 3, window: 3_600_000 }, perAccount: { limit: 0, window: 3_600_000 }, exempt: [], maxTracked: 1000, ...overrides };
}

/** The real memory store, with its calls counted. */
function countingStore(now: () => number) {
  const store = createMemoryLimitStore(now);
  const calls = { take: 0, count: 0 };
  const counted: LimitStore = {
    ...store,
    take: (r) => ((calls.take += 1), store.take(r)),
    count: (k, w, a) => ((calls.count += 1), store.count(k, w, a)),
  };
  return { store: counted, calls };
}

function setup(overrides: Partial<AuthThrottleConfig> = {}, shared = false) {
  let t = 1_000_000_000_000;
  const now = () => t;
  const { store, calls } = countingStore(now);
  const events: ThrottledEvent[] = [];
  let verified = 0;
  const throttle = createAuthThrottle({ config: config(overrides), store, shared, onThrottled: (e) => events.push(e), now });
  const identify = throttle.guard(async (credential) => {
    verified += 1;
    if (credential === undefined) throw new GatehouseError('unauthenticated');
    if (credential !== goodKey) throw new GatehouseError('invalid_credential');
    return identity;
  }, 'data');
  const attempt = (credential: string | undefined, client = '192.0.2.1') => identify(credential, client).then(() => 'ok', (e: GatehouseError) => e.code);
  return { identify, attempt, events, calls, verified: () => verified, advance: (ms: number) => (t += ms) };
}

describe('auth throttle', () => {
  test('after the limit, attempts from the address are refused unchecked (a good key too); other addresses are not', async () => {
    const s = setup();
    for (let i = 0; i < 3; i++) assert.equal(await s.attempt(badKey), 'invalid_credential');
    const checked = s.verified();
    assert.equal(await s.attempt(badKey), 'auth_throttled');
    assert.equal(await s.attempt(goodKey), 'auth_throttled');
    assert.equal(s.verified(), checked, 'throttled attempts are not checked');
    assert.equal(await s.attempt(goodKey, '192.0.2.2'), 'ok');
    assert.equal(s.events.length, 1);
    assert.deepEqual({ ...s.events[0]!, retryAfterMs: 0 }, { scope: 'address', key: '192.0.2.1', listener: 'data', client: '192.0.2.1', failures: 3, windowMs: 3_600_000, retryAfterMs: 0 });
  });

  test('the throttle ends with the window; the error carries Retry-After', async () => {
    const s = setup({ perAddress: { limit: 1, window: 60_000 } });
    assert.equal(await s.attempt(badKey), 'invalid_credential');
    const refused = await s.identify(goodKey, '192.0.2.1').then(() => undefined, (e: GatehouseError) => e);
    assert.equal(refused?.code, 'auth_throttled');
    assert.equal(refused?.status, 429);
    // The window is fixed (aligned to multiples of its length): the seconds left in it.
    assert.equal(refused?.retryAfterSeconds, Math.ceil((60_000 - (1_000_000_000_000 % 60_000)) / 1000));
    s.advance(60_000);
    assert.equal(await s.attempt(goodKey), 'ok');
  });

  test('a success does not reset the count (one valid key cannot launder guesses at others)', async () => {
    const s = setup();
    assert.equal(await s.attempt(badKey), 'invalid_credential');
    assert.equal(await s.attempt(badKey), 'invalid_credential');
    assert.equal(await s.attempt(goodKey), 'ok');
    assert.equal(await s.attempt(badKey), 'invalid_credential');
    assert.equal(await s.attempt(goodKey), 'auth_throttled');
  });

  test('no credential at all is not counted', async () => {
    const s = setup();
    for (let i = 0; i < 10; i++) assert.equal(await s.attempt(undefined), 'unauthenticated');
    assert.equal(await s.attempt(goodKey), 'ok');
  });

  test('hot path: an address never refused costs no store call, shared store or not', async () => {
    const s = setup({}, true);
    for (let i = 0; i < 100; i++) assert.equal(await s.attempt(goodKey, `198.51.100.${i}`), 'ok');
    assert.deepEqual(s.calls, { take: 0, count: 0 });
    // An address with a failure on record is checked in the shared store on its next attempt.
    assert.equal(await s.attempt(badKey), 'invalid_credential');
    assert.equal(await s.attempt(goodKey), 'ok');
    assert.deepEqual(s.calls, { take: 1, count: 1 });
  });

  test('exempt addresses (CIDR) are never counted nor refused', async () => {
    const s = setup({ exempt: ['192.0.2.0/24', '2001:db8::/32'] });
    for (let i = 0; i < 10; i++) assert.equal(await s.attempt(badKey), 'invalid_credential');
    for (let i = 0; i < 10; i++) assert.equal(await s.attempt(badKey, '2001:db8::7'), 'invalid_credential');
    assert.equal(await s.attempt(goodKey, '::ffff:192.0.2.9'), 'ok');
    assert.equal(s.events.length, 0);
  });

  test('per account: a key id over its limit is refused unchecked only from the addresses that failed against it; its owner elsewhere is checked', async () => {
    const s = setup({ perAddress: { limit: 100, window: 3_600_000 }, perAccount: { limit: 3, window: 3_600_000 } });
    for (let i = 0; i < 3; i++) assert.equal(await s.attempt(badKey, `203.0.113.${i}`), 'invalid_credential');
    assert.equal(await s.attempt(goodKey, '203.0.113.200'), 'ok');
    const checked = s.verified();
    assert.equal(await s.attempt(goodKey, '203.0.113.0'), 'auth_throttled');
    assert.equal(s.verified(), checked, "an attacker's address is not checked, the right key included");
    // A new address: one checked guess, then refused like the others.
    assert.equal(await s.attempt(badKey, '203.0.113.50'), 'invalid_credential');
    assert.equal(await s.attempt(badKey, '203.0.113.50'), 'auth_throttled');
    assert.equal(await s.attempt(goodKey, '203.0.113.50'), 'auth_throttled');
    // Other key ids from those addresses are not affected.
    assert.equal(await s.attempt(otherBadKey, '203.0.113.0'), 'invalid_credential');
    assert.deepEqual(s.events.map((e) => [e.scope, e.key]), [['account', '0123456789abcdef']]);
  });

  test('per account, shared store: an address that failed against the key id on another gateway is refused; the hot path for a clean one is one store read', async () => {
    let t = 1_000_000_000_000;
    const now = () => t;
    const { store, calls } = countingStore(now);
    const limits = { perAddress: { limit: 100, window: 3_600_000 }, perAccount: { limit: 2, window: 3_600_000 } };
    const throttles = [0, 1].map(() => createAuthThrottle({ config: config(limits), store, shared: true, onThrottled: () => undefined, now }));
    const [one, two] = throttles.map((throttle) =>
      throttle.guard(async (credential) => {
        if (credential !== goodKey) throw new GatehouseError('invalid_credential');
        return identity;
      }, 'data'),
    ) as [ReturnType<(typeof throttles)[0]['guard']>, ReturnType<(typeof throttles)[0]['guard']>];
    const code = (identify: typeof one, credential: string, client: string) => identify(credential, client).then(() => 'ok', (e: GatehouseError) => e.code);
    assert.equal(await code(one, badKey, '203.0.113.1'), 'invalid_credential');
    assert.equal(await code(two, badKey, '203.0.113.2'), 'invalid_credential');
    assert.equal(await code(one, goodKey, '203.0.113.2'), 'auth_throttled');
    assert.equal(await code(one, goodKey, '203.0.113.1'), 'auth_throttled');
    const before = calls.take;
    assert.equal(await code(one, goodKey, '203.0.113.9'), 'ok');
    assert.equal(calls.take - before, 1);
    t += 3_600_000;
    assert.equal(await code(one, goodKey, '203.0.113.1'), 'ok', 'the next window starts clean');
    for (const throttle of throttles) throttle.close();
  });

  test('IPv6 addresses count by their /64; IPv4-mapped addresses as IPv4', async () => {
    assert.equal(addressKey('2001:db8:1:2::1'), addressKey('2001:db8:1:2:ffff:eeee:dddd:cccc'));
    assert.notEqual(addressKey('2001:db8:1:2::1'), addressKey('2001:db8:1:3::1'));
    assert.equal(addressKey('2001:db8:1:2::1'), 'a:2001:db8:1:2::/64');
    assert.equal(addressKey('::1'), 'a:0:0:0:0::/64');
    assert.equal(addressKey('fe80::1%eth0'), 'a:fe80:0:0:0::/64');
    assert.equal(addressKey('::ffff:10.1.2.3'), 'a:10.1.2.3');
    const s = setup();
    for (let i = 1; i <= 3; i++) assert.equal(await s.attempt(badKey, `2001:db8:1:2::${i}`), 'invalid_credential');
    assert.equal(await s.attempt(goodKey, '2001:db8:1:2::99'), 'auth_throttled');
    assert.equal(await s.attempt(goodKey, '2001:db8:1:3::1'), 'ok');
  });

  test('memory is bounded: an attacker rotating addresses does not grow the table past maxTracked', async () => {
    const s = setup({ maxTracked: 100 });
    // One address throttled, then 500 others each with one failure: the first is pushed out of
    // the table (its next attempt is checked again), and nothing grows past the bound.
    for (let i = 0; i < 3; i++) assert.equal(await s.attempt(badKey, '192.0.2.1'), 'invalid_credential');
    assert.equal(await s.attempt(goodKey, '192.0.2.1'), 'auth_throttled');
    for (let i = 0; i < 500; i++) assert.equal(await s.attempt(badKey, `10.0.${i >> 8}.${i & 255}`), 'invalid_credential');
    assert.equal(await s.attempt(goodKey, '192.0.2.1'), 'ok');
    // The last addresses are still remembered.
    assert.equal(await s.attempt(badKey, '10.0.1.243'), 'invalid_credential');
    assert.equal(await s.attempt(badKey, '10.0.1.243'), 'invalid_credential');
    assert.equal(await s.attempt(goodKey, '10.0.1.243'), 'auth_throttled');
  });

  test('the memory limit store drops its oldest counter beyond maxCounters', async () => {
    const store = createMemoryLimitStore(Date.now, { maxCounters: 2 });
    await store.count('a', 60_000, 5);
    await store.count('b', 60_000, 1);
    await store.count('c', 60_000, 1);
    assert.equal((await store.count('a', 60_000, 1)).value, 1, 'a was dropped');
    assert.equal((await store.count('c', 60_000, 1)).value, 2);
    await store.close();
  });

  test('shared counters that do not answer (Redis down): this gateway counts on its own meanwhile; callers never refused are not affected', async () => {
    const store = createMemoryLimitStore();
    const down: LimitStore = { ...store, take: async () => { throw new Error('Redis did not answer: ECONNREFUSED'); }, count: async () => { throw new Error('Redis did not answer: ECONNREFUSED'); } };
    const errors: unknown[] = [];
    const throttle = createAuthThrottle({ config: config(), store: down, shared: true, onThrottled: () => undefined, onStoreError: (e) => errors.push(e) });
    const identify = throttle.guard(async (credential) => {
      if (credential !== goodKey) throw new GatehouseError('invalid_credential');
      return identity;
    }, 'data');
    const code = (credential: string, client: string) => identify(credential, client).then(() => 'ok', (e: GatehouseError) => e.code);
    assert.equal(await code(goodKey, '192.0.2.2'), 'ok');
    assert.equal(errors.length, 0, 'a caller never refused does not touch the store');
    for (let i = 0; i < 3; i++) assert.equal(await code(badKey, '192.0.2.1'), 'invalid_credential');
    assert.equal(await code(goodKey, '192.0.2.1'), 'auth_throttled');
    assert.ok(errors.length >= 3);
    throttle.close();
    await store.close();
  });

  test('turned off: identify as it is', async () => {
    const s = setup({ enabled: false });
    for (let i = 0; i < 10; i++) assert.equal(await s.attempt(badKey), 'invalid_credential');
    assert.equal(await s.attempt(goodKey), 'ok');
  });
});
