// security: gateways in different containers (pid namespaces) sharing one data directory
// on one PostgreSQL store, with the real gatehouse process, each run under `unshare` as
// pid 1 of a namespace of its own, as a container's entry point is. Each holds records
// while its store relay is away. The held-records file of each must stay its own: one
// gateway writing its records and removing its file must not remove the other's, and a
// start must take over only the file of a gateway that is gone (here: the one killed).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { createTestPostgresDatabase } from '../helpers/databases.js';
import { demoConnectionYaml, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { refusalsHeldWhileStoreAway, storeBehindRelay, type StoreBehindRelay } from '../helpers/store-relay.js';

const upstreamKey = 'sk-upstream-held-containers';
/** A pid namespace of its own (needs root or user namespaces); the gateway is its pid 1. */
const container = ['unshare', '--pid', '--fork', '--mount-proc', '--kill-child'];
const namespaces = spawnSync(container[0]!, [...container.slice(1), 'true']).status === 0;

describe('held-records files of gateways in different containers sharing a data directory', { skip: namespaces ? undefined : 'cannot create a pid namespace here (unshare)' }, () => {
  let upstream: DemoUpstream;
  const gateways: GatewayProcess[] = [];
  const relays: StoreBehindRelay[] = [];
  let database: Awaited<ReturnType<typeof createTestPostgresDatabase>>;
  let dir: string;

  before(async () => {
    database = await createTestPostgresDatabase();
    upstream = await startDemoUpstream({ apiKey: upstreamKey });
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-held-containers-'));
  });
  after(async () => {
    for (const gateway of gateways) await gateway.stop('SIGKILL');
    for (const { relay } of relays) await relay.close();
    await upstream?.close();
    if ('drop' in database) await database.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('one gateway writing its held records leaves the other\'s file; the next start takes over only the killed one\'s, and writes its records', { timeout: 120_000 }, async (t) => {
    if ('skip' in database) return t.skip(database.skip);
    // Each gateway reaches the store through a relay of its own (the same database).
    const start = async (store: StoreBehindRelay) => {
      const gateway = await startGatewayProcess(demoConnectionYaml(upstream.url), { env: { ...process.env, UPSTREAM_KEY: upstreamKey, ...store.env }, dir, store: store.store, wrap: container });
      gateways.push(gateway);
      return gateway;
    };
    const [storeA, storeB] = [await storeBehindRelay(database.url), await storeBehindRelay(database.url)];
    relays.push(storeA, storeB);
    const a = await start(storeA);
    const b = await start(storeB);
    const idsA = await refusalsHeldWhileStoreAway(a, storeA.relay);
    const idsB = await refusalsHeldWhileStoreAway(b, storeB.relay);

    // A's store answers: A writes its records and removes its file, and only its own.
    await storeA.relay.up();
    await a.waitForLog(/held records written/, 15_000);
    await b.stop('SIGKILL');

    // A new gateway (another container, pid 1 again) while A still runs: takes over B's file only.
    await storeB.relay.up();
    const c = await start(storeB);
    const logs = await c.waitForLog(/held records written/, 15_000);
    assert.match(logs, /held records left by the previous run/);
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      const rows = await client.query<{ id: string }>('select id from exchanges where id = any($1)', [[...idsA, ...idsB]]);
      assert.deepEqual(rows.rows.map((r) => r.id).sort(), [...idsA, ...idsB].sort(), 'the records of both gateways are written');
    } finally {
      await client.end();
    }
  });
});
