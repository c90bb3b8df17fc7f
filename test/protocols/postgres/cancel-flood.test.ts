// Security regression: every CancelRequest with a live session's key opened a new
// connection to the database, so a client repeating one valid key (or a flood of them)
// made the gateway open as many connections to the database. Now a cancel is forwarded
// only for a gateway-issued key of a live session, one at a time per session, at most
// 10 a second per client address. Against the real PostgreSQL, through a relay that
// counts the connections the gateway opens to it.

import assert from 'node:assert/strict';
import { connect, createServer, type Server } from 'node:net';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { cancelRequest } from '../../../src/protocols/postgres/build-messages.js';
import { testPostgresAdminUrl } from '../../helpers/databases.js';
import { startTestProxy, type TestProxy } from '../../helpers/postgres-proxy.js';

const database = new URL(testPostgresAdminUrl());
let dialed = 0;

function countingRelay(): Promise<Server> {
  const server = createServer({ allowHalfOpen: true }, (client) => {
    dialed++;
    const upstream = connect({ host: database.hostname, port: Number(database.port || 5432), allowHalfOpen: true });
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** Sends one CancelRequest to the gateway and waits until it closes the connection. */
function sendCancel(port: number, processId: number, secretKey: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.end(cancelRequest(processId, secretKey)));
    socket.on('error', () => resolve());
    socket.on('close', () => resolve());
    socket.resume();
  });
}

const relay = await countingRelay();
const proxyOrSkip = await startTestProxy({ upstreamPort: (relay.address() as { port: number }).port });
const skip = 'skip' in proxyOrSkip ? proxyOrSkip.skip : undefined;

describe('security: a CancelRequest flood', { skip }, () => {
  const proxy = proxyOrSkip as TestProxy;
  let client: pg.Client;
  let processId: number;
  let secretKey: number;

  before(async () => {
    client = new pg.Client(proxy.clientConfig());
    client.on('error', () => undefined);
    await client.connect();
    ({ processID: processId, secretKey } = client as unknown as { processID: number; secretKey: number });
  });
  after(async () => {
    await client?.end().catch(() => undefined);
    if (!('skip' in proxyOrSkip)) await proxy.close();
    relay.close();
  });

  test('random keys open no connection to the database', async () => {
    const before = dialed;
    await Promise.all(Array.from({ length: 30 }, (_, i) => sendCancel(proxy.port, 1000 + i, 7 * i)));
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(dialed, before);
  });

  test('a valid key sent 200 times opens at most 10 connections to the database a second', async () => {
    await new Promise((resolve) => setTimeout(resolve, 1000)); // a fresh second for this address
    const before = dialed;
    const started = Date.now();
    await Promise.all(Array.from({ length: 100 }, () => sendCancel(proxy.port, processId, secretKey)));
    for (let i = 0; i < 100; i++) await sendCancel(proxy.port, processId, secretKey);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const seconds = Math.ceil((Date.now() - started) / 1000) + 1;
    assert.ok(dialed - before <= 10 * seconds, `${dialed - before} connections to the database in about ${seconds} s`);
    // The session still works.
    assert.deepEqual((await client.query('select 1 as one')).rows, [{ one: 1 }]);
  });

  test('a legitimate cancel still cancels the running statement', async () => {
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const running = client.query('select pg_sleep(10)');
    await new Promise((resolve) => setTimeout(resolve, 300));
    await sendCancel(proxy.port, processId, secretKey);
    await assert.rejects(running, { code: '57014' });
  });
});
