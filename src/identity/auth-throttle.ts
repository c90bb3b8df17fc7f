// Failed-authentication throttling: after `perAddress.limit` refused credentials from one
// client address within a window, further attempts from it are refused with 429
// auth_throttled *before* the credential is checked, until the window ends (a fixed
// lockout: see docs/security.md). After `perAccount.limit` refused credentials claiming
// one API key id (from anywhere), attempts at that key id are refused unchecked only from
// the addresses that have themselves failed against it in the window: a clean address
// (its owner's) is still checked, so guessing at a known key id cannot lock its owner out,
// and each further address gets one checked guess at it per window.
//
// - Counted in a LimitStore: in memory for one gateway (a store of its own, bounded by
//   maxTracked), or the policy limits' Redis, shared by every gateway using it.
// - The hot path is one lookup in a bounded local table of addresses this gateway has
//   seen fail (nothing else for an address never refused). Only an address (or account)
//   already in it costs a store check when the store is shared, so a gateway learns of a
//   throttle another gateway set; one it never saw fail it learns on its first failure.
// - A success does not reset the counter: a caller holding one valid key could otherwise
//   interleave it with guesses at other keys and never be throttled.
// - `unauthenticated` (no credential at all) is not counted: nothing was guessed.
// - The moment a counter reaches its limit is reported once (onThrottled → one
//   `auth.throttled` event), by the one gateway whose increment reached it; the refused
//   attempts after it are neither checked nor recorded.

import { BlockList, isIPv6 } from 'node:net';
import { parseCidr } from '../config/fields.js';
import { GatehouseError, isGatehouseError } from '../errors/index.js';
import type { Identity } from '../exchange/index.js';
import { createMemoryLimitStore, type LimitStore } from '../policy/index.js';
import { parseApiKey } from './api-key-format.js';

export interface AuthThrottleConfig {
  readonly enabled: boolean;
  readonly perAddress: { readonly limit: number; readonly window: number };
  readonly perAccount: { readonly limit: number; readonly window: number };
  readonly exempt: readonly string[];
  readonly maxTracked: number;
}

/** Where an attempt arrived. */
export type ThrottleListener = 'data' | 'admin' | 'postgres' | 'agents';

export interface ThrottledEvent {
  readonly scope: 'address' | 'account';
  /** The client address (IPv6: its /64), or `key:<id>`. */
  readonly key: string;
  readonly listener: ThrottleListener;
  readonly client: string;
  readonly failures: number;
  readonly windowMs: number;
  readonly retryAfterMs: number;
}

export interface AuthThrottleOptions {
  readonly config: AuthThrottleConfig;
  readonly store: LimitStore;
  /** The store is shared with other gateways (Redis): a counted address is checked there. */
  readonly shared: boolean;
  /** A counter reached its limit (once per address or account and window, across gateways). */
  readonly onThrottled: (event: ThrottledEvent) => void;
  /** The shared store did not answer (counted locally meanwhile): for the log. */
  readonly onStoreError?: ((error: unknown) => void) | undefined;
  /** An attempt was refused unchecked (metrics: these are neither recorded nor chained). */
  readonly onRefused?: ((listener: ThrottleListener) => void) | undefined;
  readonly now?: () => number;
}

export type Identify = (credential: string | undefined) => Promise<Identity>;
/** identify, told the caller's address (undefined: not throttled, e.g. a key re-read on a heartbeat). */
export type ThrottledIdentify = (credential: string | undefined, client?: string) => Promise<Identity>;

export interface AuthThrottle {
  /** identify behind the throttle, for one listener. */
  guard(identify: Identify, listener: ThrottleListener): ThrottledIdentify;
  /**
   * A step that authenticates without a credential to name (a browser login's callback)
   * behind the throttle: refused unchecked while the address is throttled; its 401 counts.
   */
  guardAttempt<T>(attempt: () => Promise<T>, listener: ThrottleListener, client: string | undefined): Promise<T>;
  /** Stops the sweep of stale entries. */
  close(): void;
}

interface Tracked {
  /** The counter's window ends then (this gateway's clock); past it the entry is stale. */
  countedUntil: number;
  /** Refused without a check until then (0: not throttled). */
  throttledUntil: number;
}

const storePrefix = 'authfail:';

export function createAuthThrottle(options: AuthThrottleOptions): AuthThrottle {
  const { config, store, shared } = options;
  const now = options.now ?? Date.now;
  if (!config.enabled) return { guard: (identify) => identify, guardAttempt: (attempt) => attempt(), close: () => undefined };
  // Shared counters that do not answer (Redis down): this gateway counts on its own
  // meanwhile, so guessing is still throttled (per gateway), and a caller is refused for
  // want of Redis no more than it would be without it.
  const fallback = shared ? createMemoryLimitStore(now, { maxCounters: config.maxTracked }) : undefined;
  const onStoreError = options.onStoreError;
  const exempt = new BlockList();
  for (const entry of config.exempt) {
    const cidr = parseCidr(entry);
    if (cidr) exempt.addSubnet(cidr.address, cidr.prefix, cidr.type);
  }
  // Addresses (`a:`), accounts (`k:`) and an address's failures against an account (`p:`)
  // in one table, oldest first; bounded by maxTracked.
  const tracked = new Map<string, Tracked>();
  let accountsTracked = 0;
  const forget = (key: string) => {
    if (tracked.delete(key) && key.startsWith('k:')) accountsTracked--;
  };
  const remember = (key: string, entry: Tracked) => {
    if (!tracked.has(key)) {
      if (tracked.size >= config.maxTracked) forget(tracked.keys().next().value!);
      if (key.startsWith('k:')) accountsTracked++;
    }
    tracked.set(key, entry);
  };

  // Stale entries go once a minute: an account's entry left from an attack would otherwise
  // keep every request parsing its key id (accountsTracked > 0) until it was claimed again.
  const sweep = setInterval(() => {
    const t = now();
    for (const [key, entry] of tracked) if (entry.countedUntil <= t) forget(key);
  }, 60_000);
  sweep.unref();

  const refusal = (scope: 'address' | 'account', retryAfterMs: number, key: string) =>
    new GatehouseError('auth_throttled', {
      ...(scope === 'account' ? { message: 'Too many failed authentications for this API key from this address: attempts with it from here are refused without being checked until the time in Retry-After has passed.' } : {}),
      detail: `throttled ${scope} ${key.slice(2)}`,
      retryAfterSeconds: Math.max(1, Math.ceil(retryAfterMs / 1000)),
    });

  /** Throws auth_throttled when this table (or, for a counted key, the shared store) says so. */
  const check = async (key: string, scope: 'address' | 'account', entry: Tracked, t: number): Promise<void> => {
    if (entry.throttledUntil > t) throw refusal(scope, entry.throttledUntil - t, key);
    if (!shared) return;
    const limit = scope === 'address' ? config.perAddress : config.perAccount;
    // Unanswered: this table (kept from the local fallback count) has the say.
    const over = await store.take([{ key: storePrefix + key, windowMs: limit.window, amount: 0, check: 1, limit: limit.limit }]).catch((error: unknown) => void onStoreError?.(error));
    if (over) {
      entry.throttledUntil = t + over.retryAfterMs;
      throw refusal(scope, over.retryAfterMs, key);
    }
  };

  /** Whether this address failed against this account in the window (here or, shared, on any gateway). */
  const failedAgainst = async (pair: string, t: number): Promise<boolean> => {
    const entry = tracked.get(pair);
    if (entry !== undefined && entry.countedUntil > t) return true;
    if (!shared) return false;
    // Unanswered: this table (kept from the local fallback count) has the say.
    const seen = await store.take([{ key: storePrefix + pair, windowMs: config.perAccount.window, amount: 0, check: 1, limit: 1 }]).catch((error: unknown) => void onStoreError?.(error));
    if (seen) remember(pair, { countedUntil: t + seen.retryAfterMs, throttledUntil: 0 });
    return seen !== undefined;
  };

  /** An account over its limit refuses only the addresses that failed against it. */
  const checkAccount = async (address: string, account: string, entry: Tracked, t: number): Promise<void> => {
    // Not over here, and no other gateway to have counted it over: nothing to refuse.
    if (!shared && entry.throttledUntil <= t) return;
    if (await failedAgainst(pairKey(address, account), t)) await check(account, 'account', entry, t);
  };

  const isExempt = (client: string): boolean => {
    const mapped = client.startsWith('::ffff:') && client.includes('.') ? client.slice(7) : client;
    return exempt.check(mapped.split('%', 1)[0]!, isIPv6(mapped) ? 'ipv6' : 'ipv4');
  };

  const admit = (address: string, client: string, credential: string | undefined): Promise<void> | undefined => {
    const t = now();
    const entry = tracked.get(address);
    let checks: Promise<void> | undefined;
    if (entry !== undefined) {
      if (entry.countedUntil <= t) forget(address);
      else checks = check(address, 'address', entry, t);
    }
    // Accounts are looked at only while one has failures on record here.
    if (accountsTracked > 0 && credential !== undefined) {
      const account = accountOf(credential);
      const accountEntry = account === undefined ? undefined : tracked.get(account);
      if (account !== undefined && accountEntry !== undefined) {
        if (accountEntry.countedUntil <= t) forget(account);
        else if (!isExempt(client)) checks = Promise.all([checks, checkAccount(address, account, accountEntry, t)]).then(() => undefined);
      }
    }
    return checks;
  };

  const failed = async (address: string, credential: string | undefined, listener: ThrottleListener, client: string): Promise<void> => {
    if (isExempt(client)) return;
    const account = credential === undefined || config.perAccount.limit === 0 ? undefined : accountOf(credential);
    const counters: Array<readonly [string, 'address' | 'account' | 'pair', { readonly limit: number; readonly window: number }]> = [[address, 'address', config.perAddress]];
    if (account !== undefined) counters.push([account, 'account', config.perAccount], [pairKey(address, account), 'pair', config.perAccount]);
    await Promise.all(
      counters.map(async ([key, scope, limit]) => {
        const { value, retryAfterMs } = await store.count(storePrefix + key, limit.window, 1).catch((error: unknown) => {
          onStoreError?.(error);
          if (!fallback) throw error;
          return fallback.count(storePrefix + key, limit.window, 1);
        });
        const t = now();
        if (scope === 'pair') return remember(key, { countedUntil: t + retryAfterMs, throttledUntil: 0 });
        remember(key, { countedUntil: t + retryAfterMs, throttledUntil: value >= limit.limit ? t + retryAfterMs : 0 });
        if (value === limit.limit) options.onThrottled({ scope, key: key.slice(2), listener, client, failures: value, windowMs: limit.window, retryAfterMs });
      }),
    );
  };

  const verify = <T>(attempt: (credential: string | undefined) => Promise<T>, credential: string | undefined, address: string, listener: ThrottleListener, client: string): Promise<T> =>
    attempt(credential).catch(async (error: unknown) => {
      if (isGatehouseError(error) && error.status === 401 && error.code !== 'unauthenticated') await failed(address, credential, listener, client);
      throw error;
    });
  // Not an async function: a caller never refused pays one map lookup and one promise
  // more than the attempt itself (docs/performance.md, "Failed-authentication throttle").
  const throttled = <T>(attempt: (credential: string | undefined) => Promise<T>, credential: string | undefined, listener: ThrottleListener, client: string): Promise<T> => {
    const address = addressKey(client);
    const pending = admit(address, client, credential);
    if (pending === undefined) return verify(attempt, credential, address, listener, client);
    return pending.then(
      () => verify(attempt, credential, address, listener, client),
      (error: unknown) => {
        if (isGatehouseError(error) && error.code === 'auth_throttled') options.onRefused?.(listener);
        throw error;
      },
    );
  };

  return {
    guard: (identify, listener) => (credential, client) => (client === undefined ? identify(credential) : throttled(identify, credential, listener, client)),
    guardAttempt: (attempt, listener, client) => (client === undefined ? attempt() : throttled(attempt, undefined, listener, client)),
    close() {
      clearInterval(sweep);
      void fallback?.close();
    },
  };
}

/** The account a credential claims: an API key's id (JWTs cannot be guessed, and their claims are anyone's to write). */
function accountOf(credential: string): string | undefined {
  const key = parseApiKey(credential);
  return key === undefined ? undefined : `k:${key.id}`;
}

/** The table key of an address's failures against an account (`a:…`, `k:…`). */
function pairKey(address: string, account: string): string {
  return `p:${account.slice(2)}@${address.slice(2)}`;
}

/**
 * The table key of a client address: IPv4 as it is (an IPv4-mapped IPv6 address as its
 * IPv4), IPv6 by its /64, which one client usually holds whole (counting single IPv6
 * addresses would let it rotate through 2^64 of them).
 */
export function addressKey(client: string): string {
  if (client.startsWith('::ffff:') && client.includes('.')) return `a:${client.slice(7)}`;
  if (!client.includes(':')) return `a:${client}`;
  return `a:${ipv6Prefix64(client)}::/64`;
}

function ipv6Prefix64(address: string): string {
  const bare = address.split('%', 1)[0]!;
  const [head = '', tail] = bare.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array<string>(Math.max(0, 8 - headGroups.length - tailGroups.length)).fill('0'), ...tailGroups];
  return groups
    .slice(0, 4)
    .map((g) => (g.includes('.') ? '0' : Number.parseInt(g || '0', 16).toString(16)))
    .join(':');
}
