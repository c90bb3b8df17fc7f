// The Redis limit store: each operation is one Lua script, so a check-and-add over
// several counters is atomic across every gateway sharing the Redis. The window is
// computed from the Redis server's clock (TIME), so gateways with skewed clocks still
// count into the same window. Keys are built inside the scripts from the declared base
// keys, so this store targets a single Redis (or a primary), not Redis Cluster.

import { Redis } from 'ioredis';
import type { CounterRequest, LimitStore } from './limit-store.js';

const nowMs = `local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

// KEYS[i]: base key; ARGV per key: windowMs, amount, check, limit.
const takeScript = `${nowMs}
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

const acquireScript = `local c = redis.call('INCR', KEYS[1])
if c > tonumber(ARGV[1]) then redis.call('DECR', KEYS[1]) return 0 end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1`;

const releaseScript = `local c = redis.call('DECR', KEYS[1])
if c <= 0 then redis.call('DEL', KEYS[1]) end
return 1`;

export interface RedisLimitStoreOptions {
  readonly url: string;
  readonly keyPrefix: string;
}

export function createRedisLimitStore(options: RedisLimitStoreOptions): LimitStore {
  // Fail fast rather than queue: a limit that cannot be checked refuses the request.
  const redis = new Redis(options.url, { maxRetriesPerRequest: 1, enableOfflineQueue: true, connectTimeout: 2_000, lazyConnect: false });
  // Surfaced per command; the client reconnects on its own. A command that fails while
  // disconnected only says "Reached the max retries per request limit": the connection's
  // own error (ECONNREFUSED host:port, WRONGPASS) is kept to say why (never the URL).
  let connectionError: string | undefined;
  redis.on('error', (error: Error & { code?: string }) => {
    connectionError = error.code && !error.message.includes(error.code) ? `${error.code} ${error.message}` : error.message;
  });
  redis.on('ready', () => (connectionError = undefined));
  const explained = async <T>(command: () => Promise<T>): Promise<T> => {
    try {
      return await command();
    } catch (error) {
      if ((error as Error).name !== 'MaxRetriesPerRequestError') throw error;
      throw new Error(`Redis did not answer: ${connectionError ?? 'not connected'}`, { cause: error });
    }
  };
  const p = options.keyPrefix;
  return {
    async take(requests: readonly CounterRequest[]) {
      if (requests.length === 0) return undefined;
      const args = requests.flatMap((r) => [r.windowMs, r.amount, r.check, r.limit]);
      const [index, retryAfterMs] = (await explained(() => redis.eval(takeScript, requests.length, ...requests.map((r) => p + r.key), ...args))) as [number, number];
      return index === 0 ? undefined : { index: index - 1, retryAfterMs };
    },
    async add(key, windowMs, amount) {
      if (amount > 0) await explained(() => redis.eval(addScript, 1, p + key, windowMs, amount));
    },
    async acquire(key, max, ttlMs) {
      return (await explained(() => redis.eval(acquireScript, 1, p + key, max, ttlMs))) === 1;
    },
    async release(key) {
      await explained(() => redis.eval(releaseScript, 1, p + key));
    },
    async ping() {
      await explained(() => redis.ping());
    },
    async close() {
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
