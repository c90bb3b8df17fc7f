// security: a cancel the gateway sends on its own (row limit, statement timeout) must
// hit the statement it was meant for, never the client's next one. PostgreSQL cancels
// whatever the backend runs when the signal lands, so a late cancel would cancel the
// next statement. Here the database is reached through a relay that delays every new
// connection by 300 ms, so each CancelRequest arrives late.

import assert from 'node:assert/strict';
import { connect, createServer, type Server } from 'node:net';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { testPostgresAdminUrl } from '../../helpers/databases.js';
import { startTestProxy, type TestProxy } from '../../helpers/postgres-proxy.js';

const database = new URL(testPostgresAdminUrl());
const databasePort = Number(database.port || 5432);
const delayMs = 300;

function slowRelay(): Promise<Server> {
  // Half-open kept on both legs: the client's end reaches the database, and the client
  // sees the end only when the database closes (after it has handled a CancelRequest).
  const server = createServer({ allowHalfOpen: true }, (client) => {
    client.pause();
    setTimeout(() => {
      const upstream = connect({ host: database.hostname, port: databasePort, allowHalfOpen: true });
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    }, delayMs);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const relay = await slowRelay();
const proxyOrSkip = await startTestProxy({ maxRows: 10, statementTimeoutMs: 1_000, upstreamPort: (relay.address() as { port: number }).port });
const skip = 'skip' in proxyOrSkip ? proxyOrSkip.skip : undefined;

describe('security: the gateway\'s own cancels', { skip }, () => {
  const proxy = proxyOrSkip as TestProxy;
  let client: pg.Client;

  before(async () => {
    client = new pg.Client(proxy.clientConfig());
    client.on('error', () => undefined);
    await client.connect();
  });

  after(async () => {
    await client?.end().catch(() => undefined);
    if (!('skip' in proxyOrSkip)) await proxy.close();
    relay.close();
  });

  test('the cancel sent for a row limit never reaches the next statement', async () => {
    for (let i = 0; i < 3; i++) {
      await assert.rejects(client.query('select generate_series(1, 1000) as n'), { code: '54000' });
      // Running when a late cancel would land (300 ms): it must finish (the limit, 1 s, leaves room on a loaded machine).
      assert.deepEqual((await client.query('select pg_sleep(0.35)::text as slept')).rows, [{ slept: '' }]);
    }
  });

  test('the cancel sent for a statement timeout never reaches the next statement', async () => {
    await assert.rejects(client.query('select pg_sleep(5)'), { code: '57014', message: /statementTimeout/ });
    assert.deepEqual((await client.query('select pg_sleep(0.35)::text as slept')).rows, [{ slept: '' }]);
  });
});
