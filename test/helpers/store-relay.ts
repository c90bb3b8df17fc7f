// A PostgreSQL store reached through a TCP relay the test can take down (the store-outage
// and held-records tests), a real gatehouse process on it, and refusals recorded while
// the store is away (held in memory and in held-records-<pid>-<file id>.jsonl).
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { createTestPostgresDatabase } from './databases.js';
import { demoConnectionYaml, startGatewayProcess, type GatewayProcess } from './gateway-process.js';
import { startTcpRelay, type TcpRelay } from './tcp-relay.js';

export interface GatewayBehindStoreRelay {
  readonly relay: TcpRelay;
  /** The environment its config's references resolve in (for the CLI too). */
  readonly env: NodeJS.ProcessEnv;
  /** Starts the gateway (again) on the same data directory and store. */
  start(): Promise<GatewayProcess>;
}

export interface StoreBehindRelay {
  readonly relay: TcpRelay;
  /** The config's `store` section, reaching the store through the relay by `${STORE_URL}`. */
  readonly store: string;
  readonly env: { readonly STORE_URL: string };
}

/** The PostgreSQL database `databaseUrl` as a gateway's store, through a relay. */
export async function storeBehindRelay(databaseUrl: string): Promise<StoreBehindRelay> {
  const target = new URL(databaseUrl);
  const relay = await startTcpRelay(Number(target.port || 5432), target.hostname);
  target.hostname = '127.0.0.1';
  target.port = String(relay.port);
  return { relay, store: 'store:\n  postgres: { url: "${STORE_URL}" }\n', env: { STORE_URL: target.toString() } };
}

/** A gateway on the store `databaseUrl` through a relay; the demo connection goes to `upstreamUrl`. */
export async function gatewayBehindStoreRelay(databaseUrl: string, upstreamUrl: string, upstreamKey: string, dir: string): Promise<GatewayBehindStoreRelay> {
  const { relay, store, env: storeEnv } = await storeBehindRelay(databaseUrl);
  const env = { ...process.env, UPSTREAM_KEY: upstreamKey, ...storeEnv };
  return { relay, env, start: () => startGatewayProcess(demoConnectionYaml(upstreamUrl), { env, dir, store }) };
}

/** The name of the held-records file of the process `pid` in `dataDir` (undefined: none). */
export function heldRecordsFileOf(dataDir: string, pid: number | undefined): string | undefined {
  return readdirSync(dataDir).find((name) => name.startsWith(`held-records-${pid}-`) && name.endsWith('.jsonl'));
}

/**
 * Takes the store away and sends `count` requests without a credential: each is refused
 * (401) without the store and its record held. Returns their exchange ids once the
 * gateway has logged that it holds records.
 */
export async function refusalsHeldWhileStoreAway(gateway: GatewayProcess, relay: TcpRelay, count = 3): Promise<string[]> {
  await relay.down();
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const res = await fetch(`${gateway.url}/c/demo/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    await res.arrayBuffer();
    assert.equal(res.status, 401);
    ids.push(res.headers.get('gatehouse-exchange-id')!);
  }
  assert.ok(ids.every(Boolean), 'a refusal names its exchange');
  await gateway.waitForLog(/store unreachable: records held/);
  return ids;
}

export interface HeldRecordsSuite {
  /** Why the suite cannot run (no PostgreSQL), once its `before` has run. */
  readonly skip: string | undefined;
  readonly databaseUrl: string;
  /** The suite's folder (config and data directory). */
  readonly dir: string;
  /** A gateway behind a store relay in the suite's folder; what it starts is killed after the suite. */
  behindStoreRelay(): Promise<GatewayBehindStoreRelay>;
}

/**
 * The before/after of a describe whose tests run gateways on a PostgreSQL store behind a
 * relay (the held-records tests): a database of its own, the demo upstream with
 * `upstreamKey`, a temporary folder named from `prefix`; after: every gateway it started
 * killed, relays closed, the database dropped, the folder removed.
 */
export function heldRecordsSuite(prefix: string, upstreamKey: string): HeldRecordsSuite {
  let database: Awaited<ReturnType<typeof createTestPostgresDatabase>>;
  let upstream: DemoUpstream;
  let dir = '';
  const gateways: GatewayProcess[] = [];
  const relays: TcpRelay[] = [];
  before(async () => {
    database = await createTestPostgresDatabase();
    upstream = await startDemoUpstream({ apiKey: upstreamKey });
    dir = mkdtempSync(join(tmpdir(), prefix));
  });
  after(async () => {
    for (const gateway of gateways) if (gateway.child.exitCode === null && gateway.child.signalCode === null) await gateway.stop('SIGKILL');
    for (const relay of relays) await relay.close();
    await upstream?.close();
    if (database && 'drop' in database) await database.drop();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    get skip() {
      return 'skip' in database ? database.skip : undefined;
    },
    get databaseUrl() {
      if ('skip' in database) throw new Error(database.skip);
      return database.url;
    },
    get dir() {
      return dir;
    },
    async behindStoreRelay() {
      const behind = await gatewayBehindStoreRelay(this.databaseUrl, upstream.url, upstreamKey, dir);
      relays.push(behind.relay);
      return {
        ...behind,
        async start() {
          const gateway = await behind.start();
          gateways.push(gateway);
          return gateway;
        },
      };
    },
  };
}
