// The real Redis for limit tests: 127.0.0.1:6379 unless GATEHOUSE_TEST_REDIS_URL says
// otherwise. Outside CI an unreachable Redis skips, saying why; with CI=true it fails.
// Every run uses its own key prefix and deletes its keys afterwards.

import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

export const testRedisUrl = process.env['GATEHOUSE_TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';

export async function redisUnavailable(): Promise<string | undefined> {
  const redis = new Redis(testRedisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 2_000, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    await redis.ping();
    return undefined;
  } catch (error) {
    const reason = `Redis not reachable at ${testRedisUrl}: ${(error as Error).message}`;
    if (process.env['CI'] === 'true') throw new Error(`${reason} (required because CI=true)`);
    return reason;
  } finally {
    redis.disconnect();
  }
}

export function uniqueKeyPrefix(): string {
  return `gatehouse-test:${process.pid}:${randomBytes(4).toString('hex')}:`;
}

export async function deleteKeys(prefix: string): Promise<void> {
  const redis = new Redis(testRedisUrl, { maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  try {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
  } finally {
    redis.disconnect();
  }
}
