// The counter store for policy limits: in memory for one gateway, Redis when several
// gateways must share exact counts (`policy.limits.store: redis`).
import type { GatehouseConfig } from '../config/index.js';
import { createMemoryLimitStore, createRedisLimitStore, type LimitStore } from '../policy/index.js';

export function createLimitStore(limits: GatehouseConfig['policy']['limits']): LimitStore {
  if (limits.store === 'redis' && limits.redis) return createRedisLimitStore({ url: limits.redis.url, keyPrefix: limits.redis.keyPrefix });
  return createMemoryLimitStore();
}
