// /readyz against a PostgreSQL store that stops answering (a host that drops packets,
// not one that refuses): the probe answers 503 within its bound instead of hanging.

import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createTestPostgresDatabase } from '../helpers/databases.js';
import { demoConnectionYaml, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const database = await createTestPostgresDatabase();

/** A TCP relay to PostgreSQL that can be told to go silent: bytes are held, nothing is refused. */
async function startSilenceableRelay(target: URL): Promise<{ port: number; silent: boolean; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const state = { silent: false };
  const server: Server = createServer((client) => {
    const upstream = connect(Number(target.port || 5432), target.hostname);
    sockets.add(client).add(upstream);
    client.on('data', (data) => {
      if (!state.silent) upstream.write(data);
    });
    upstream.on('data', (data) => {
      if (!state.silent) client.write(data);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    get silent() {
      return state.silent;
    },
    set silent(value: boolean) {
      state.silent = value;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('readiness on a PostgreSQL store that stops answering', { skip: 'skip' in database ? database.skip : undefined }, () => {
  let relay: Awaited<ReturnType<typeof startSilenceableRelay>>;
  let gateway: GatewayProcess;

  before(async () => {
    if ('skip' in database) return;
    const url = new URL(database.url);
    relay = await startSilenceableRelay(url);
    const viaRelay = new URL(database.url);
    viaRelay.hostname = '127.0.0.1';
    viaRelay.port = String(relay.port);
    gateway = await startGatewayProcess(demoConnectionYaml('http://127.0.0.1:9/v1'), { env: { STORE_URL: viaRelay.toString(), UPSTREAM_KEY: 'sk-unused' }, store: 'store:\n  postgres: { url: "${STORE_URL}" }\n' });
  });
  after(async () => {
    await relay?.close(); // first: the query it held fails, so the gateway can stop
    await gateway?.stop();
    if (!('skip' in database)) await database.drop();
  });

  test('503 store_unavailable within the probe bound while the store is silent', async () => {
    assert.equal((await fetch(`${gateway.adminUrl}/readyz`)).status, 200);
    relay.silent = true;
    const started = Date.now();
    const res = await fetch(`${gateway.adminUrl}/readyz`, { signal: AbortSignal.timeout(10_000) });
    const took = Date.now() - started;
    assert.equal(res.status, 503);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'store_unavailable');
    assert.ok(took >= 1_500 && took < 5_000, `answered in ${took} ms`);
  });
});
