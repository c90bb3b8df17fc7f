// The Redis limit store while Redis cannot be reached: the error says why, for the
// `not ready` line and the exchange's detail. It said only ioredis's "Reached the max
// retries per request limit (which is 1). Refer to "maxRetriesPerRequest" option",
// which names neither the address nor the cause. Never the URL's password.

import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { test } from 'node:test';
import { createRedisLimitStore } from '../../src/policy/index.js';

test('a Redis that refuses connections: the store error names the socket error, not the password', async () => {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const store = createRedisLimitStore({ url: `redis://:limit-pw-kookaburra@127.0.0.1:${port}`, keyPrefix: 'gatehouse-test:' });
  try {
    await assert.rejects(store.ping(), (error: Error) => {
      assert.match(error.message, new RegExp(`^Redis did not answer: .*ECONNREFUSED 127\\.0\\.0\\.1:${port}`));
      assert.ok(!error.message.includes('kookaburra'));
      return true;
    });
    await assert.rejects(store.acquire('k', 1, 1000), /^Error: Redis did not answer: .*ECONNREFUSED/);
  } finally {
    await store.close();
  }
});
