// The Redis limit store: each operation is one Lua script, so a check-and-add over
// several counters is atomic across every gateway sharing the Redis. The window is
// computed from the Redis server's clock (TIME), so gateways with skewed clocks still
// count into the same window. Keys are built inside the scripts from the declared base
// keys, so this store targets a single Redis (or a primary), not Redis Cluster.

import { Redis } from 'ioredis';
import type { CounterRequest, LimitStore } from './limit-store.js';

const nowMs = `local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

// A command that reaches Redis after its deadline (Redis clock) does nothing and answers
// -1: its caller timed out and was refused meanwhile. Redis blocked (a long command, DEBUG
// SLEEP) runs what waited in its socket buffer when it is free again, and the refused
// request was counted then, on top of the caller's retry, or took a slot nobody gave back.
const pastDeadline = (deadline: string) => `if now > tonumber(${deadline}) then return -1 end`;

// KEYS[i]: base key; ARGV per key: windowMs, amount, check, limit; then the deadline.
const takeScript = `${nowMs}
${pastDeadline('ARGV[#ARGV]')}
local keys = {}
for i = 1, #KEYS do
  local w = tonumber(ARGV[(i - 1) * 4 + 1])
  local idx = math.floor(now / w)
  keys[i] = KEYS[i] .. ':' .. idx
  local cur = tonumber(redis.call('GET', keys[i]) or '0')
  if cur + tonumber(ARGV[(i - 1) * 4 + 3]) > tonumber(ARGV[(i - 1) * 4 + 4]) then
    return {i, (idx + 1) * w - now}
  end
end
for i = 1, #KEYS do
  local amount = tonumber(ARGV[(i - 1) * 4 + 2])
  if amount > 0 then
    redis.call('INCRBY', keys[i], amount)
    redis.call('PEXPIRE', keys[i], tonumber(ARGV[(i - 1) * 4 + 1]) + 1000)
  end
end
return {0, 0}`;

const addScript = `${nowMs}
local w = tonumber(ARGV[1])
local key = KEYS[1] .. ':' .. math.floor(now / w)
redis.call('INCRBY', key, tonumber(ARGV[2]))
redis.call('PEXPIRE', key, w + 1000)
return 1`;

// KEYS[1]: base key; ARGV: windowMs, amount. Answers the new value and the ms left in the window.
const countScript = `${nowMs}
local w = tonumber(ARGV[1])
local idx = math.floor(now / w)
local key = KEYS[1] .. ':' .. idx
local value = redis.call('INCRBY', key, tonumber(ARGV[2]))
redis.call('PEXPIRE', key, w + 1000)
return {value, (idx + 1) * w - now}`;

// Slots of a scope: a sorted set of slot ids scored by when each expires (Redis clock).
// Expired ones are dropped before counting. (A counter whose key expired 15 minutes
// after the last acquire kept a dead gateway's slots taken as long as the scope stayed
// busy; its own key name, ':slots', so it never meets such a counter.)
// KEYS[1]: slots key; ARGV: slot id, max, ttlMs, deadline.
const acquireScript = `${nowMs}
${pastDeadline('ARGV[4]')}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1`;

export interface RedisLimitStoreOptions {
  readonly url: string;
  readonly keyPrefix: string;
}

/** How long a limit check waits for Redis before the request is refused (as /readyz waits). */
export const redisAnswerTimeoutMs = 2_000;

/** A check's deadline in Redis is this much before the caller stops waiting: time for the answer to come back. */
const answerMarginMs = 250;

export function createRedisLimitStore(options: RedisLimitStoreOptions): LimitStore {
  // Fail fast rather than queue: a limit that cannot be checked refuses the request.
  // - commandTimeout: a Redis that stops answering (blocked, a half-open connection) held
  //   every request under a limit until it answered again, however long that took.
  // - no offline queue, no resending after a reconnect: a command is written only to a
  //   ready connection, once. Queued or resent, a check whose caller had already been
  //   refused (503) ran later all the same: it counted a refused request, or took a
  //   concurrency slot nobody would give back.
  const redis = new Redis(options.url, {
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    commandTimeout: redisAnswerTimeoutMs,
    connectTimeout: redisAnswerTimeoutMs,
    lazyConnect: false,
  });
  // Surfaced per command; the client reconnects on its own. A command that fails while
  // disconnected only says "Stream isn't writeable": the connection's own error
  // (ECONNREFUSED host:port, WRONGPASS) is kept to say why (never the URL).
  let connectionError: string | undefined;
  redis.on('error', (error: Error & { code?: string }) => {
    connectionError = error.code && !error.message.includes(error.code) ? `${error.code} ${error.message}` : error.message;
  });
  // Redis clock minus ours, measured on each new connection (deadlines are in Redis time,
  // as the windows are); within half a round trip.
  let clockOffset: Promise<number> | undefined;
  redis.on('ready', () => {
    connectionError = undefined;
    clockOffset = undefined;
  });
  const deadline = async (): Promise<number> => {
    clockOffset ??= (async () => {
      const sent = Date.now();
      const [seconds, micros] = await redis.time();
      return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) - (sent + Date.now()) / 2;
    })();
    const offset = await clockOffset.catch((error: unknown) => {
      clockOffset = undefined;
      throw error;
    });
    return Math.floor(Date.now() + offset + redisAnswerTimeoutMs - answerMarginMs);
  };
  /** Resolves once the connection is ready; while it is being made (start-up, a reconnect) waits for it, up to the timeout. */
  let connecting: Promise<void> | undefined;
  const ready = async (): Promise<void> => {
    if (redis.status === 'ready') return;
    if (!['wait', 'connecting', 'connect'].includes(redis.status)) throw notAnswering();
    // One wait shared by every request that arrives meanwhile (one listener, not one each).
    connecting ??= new Promise<void>((resolve, reject) => {
      const done = (error?: Error) => {
        clearTimeout(timer);
        redis.off('ready', onReady).off('close', onClose);
        connecting = undefined;
        if (error) reject(error);
        else resolve();
      };
      const onReady = () => done();
      const onClose = () => done(notAnswering());
      const timer = setTimeout(() => done(notAnswering(`no answer in ${redisAnswerTimeoutMs} ms`)), redisAnswerTimeoutMs);
      redis.once('ready', onReady).once('close', onClose);
    });
    return connecting;
  };
  const notAnswering = (why = connectionError ?? 'not connected') => new Error(`Redis did not answer: ${why}`);
  const late = () => notAnswering(`it ran the check after its deadline (${redisAnswerTimeoutMs - answerMarginMs} ms), so did not count it`);
  const explained = async <T>(command: () => Promise<T>): Promise<T> => {
    await ready();
    try {
      return await command();
    } catch (error) {
      const message = (error as Error).message;
      if (message === 'Command timed out') {
        // A connection that stopped answering may never answer again (the peer is gone
        // without a reset): make a new one. Commands are never resent on it.
        if (redis.status === 'ready') redis.disconnect(true);
        throw notAnswering(`no answer in ${redisAnswerTimeoutMs} ms`);
      }
      if ((error as Error).name === 'MaxRetriesPerRequestError' || message.startsWith("Stream isn't writeable") || message === 'Connection is closed.') throw notAnswering();
      throw error;
    }
  };
  const p = options.keyPrefix;
  return {
    async take(requests: readonly CounterRequest[]) {
      if (requests.length === 0) return undefined;
      const args = requests.flatMap((r) => [r.windowMs, r.amount, r.check, r.limit]);
      const answer = (await explained(async () => redis.eval(takeScript, requests.length, ...requests.map((r) => p + r.key), ...args, await deadline()))) as [number, number] | -1;
      if (answer === -1) throw late();
      const [index, retryAfterMs] = answer;
      return index === 0 ? undefined : { index: index - 1, retryAfterMs };
    },
    async add(key, windowMs, amount) {
      if (amount > 0) await explained(() => redis.eval(addScript, 1, p + key, windowMs, amount));
    },
    async count(key, windowMs, amount) {
      const [value, retryAfterMs] = (await explained(() => redis.eval(countScript, 1, p + key, windowMs, amount))) as [number, number];
      return { value, retryAfterMs };
    },
    async acquire(key, slot, max, ttlMs) {
      const answer = await explained(async () => redis.eval(acquireScript, 1, `${p}${key}:slots`, slot, max, ttlMs, await deadline()));
      if (answer === -1) throw late();
      return answer === 1;
    },
    async release(key, slot) {
      await explained(() => redis.zrem(`${p}${key}:slots`, slot));
    },
    async ping() {
      await explained(() => redis.ping());
    },
    async close() {
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
