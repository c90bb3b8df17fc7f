// SIGTERM / SIGINT sent to the real `gatehouse start` while it is still starting (here:
// the PostgreSQL store not answering yet). Before, the default action killed it (exit
// 143, no word). Now it says so, stops after the step under way, closes what it opened
// (no listener stays bound), and exits 0; a step that does not end is bounded. At each
// stage: the store opening, migrations waiting for their lock, after the listeners bound
// (where a second signal during the close that follows used to kill the process: exit 143).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { createTestPostgresDatabase } from '../helpers/databases.js';
import { gatehouseBin } from '../helpers/gateway-process.js';

/** A TCP front for PostgreSQL that holds every connection (its bytes buffered) until released. */
async function holdingProxy(target: URL): Promise<{ port: number; connected: Promise<void>; release(): void; close(): Promise<void> }> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let connected!: () => void;
  const first = new Promise<void>((resolve) => (connected = resolve));
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    client.pause();
    sockets.add(client);
    client.on('error', () => client.destroy());
    connected();
    void released.then(() => {
      const upstream = connect(Number(target.port || 5432), target.hostname);
      sockets.add(upstream);
      upstream.on('error', () => client.destroy());
      client.pipe(upstream).pipe(client);
      client.resume();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    connected: first,
    release,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(false)));
    socket.once('error', () => resolve(true));
  });
}

describe('a stop signal while gatehouse start is starting', () => {
  let database: { url: string; drop(): Promise<void> } | { skip: string };
  let dir: string;
  before(async () => {
    database = await createTestPostgresDatabase();
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-stop-starting-'));
  });
  after(async () => {
    if ('drop' in database) await database.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function startHeld(signal: NodeJS.Signals, releaseAfterSignal: boolean) {
    if ('skip' in database) return undefined;
    const target = new URL(database.url);
    const proxy = await holdingProxy(target);
    const port = await freePort();
    const held = new URL(database.url);
    held.hostname = '127.0.0.1';
    held.port = String(proxy.port);
    const configPath = join(dir, `gatehouse-${signal}.yaml`);
    writeFileSync(configPath, `gateway:\n  listen: { host: 127.0.0.1, port: ${port} }\nadmin:\n  enabled: false\nconnections:\n  - name: demo\n    type: openai\n    target: http://127.0.0.1:1\n    access: { groups: [ml] }\nstore:\n  postgres: { url: \"\${STORE_URL}\" }\n`);
    const child = spawn(process.execPath, [gatehouseBin, 'start', '--config', configPath], { env: { ...process.env, STORE_URL: held.toString() }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, sig) => resolve({ code, signal: sig })));
    try {
      await Promise.race([proxy.connected, exited.then(() => assert.fail(`exited before opening the store:\n${stderr}`))]);
      const sent = Date.now();
      child.kill(signal);
      for (let i = 0; i < 200 && !stderr.includes('while starting'); i++) await new Promise((r) => setTimeout(r, 25));
      if (releaseAfterSignal) proxy.release();
      const result = await exited;
      return { ...result, stderr, ms: Date.now() - sent, port };
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await proxy.close();
    }
  }

  test('SIGTERM while the store opens: the start stops after that step, says so, binds no listener, exits 0', async (t) => {
    const run = await startHeld('SIGTERM', true);
    if (!run) return t.skip('no PostgreSQL');
    assert.deepEqual({ code: run.code, signal: run.signal }, { code: 0, signal: null }, run.stderr);
    assert.match(run.stderr, /gatehouse: SIGTERM while starting: stopping\ngatehouse: stopped while starting\n/);
    assert.ok(run.ms < 4_000, `stopped after ${run.ms} ms`);
    assert.ok(await refused(run.port), 'the data-plane port is bound after the process ended');
  });

  test('SIGINT while a step never ends: the process exits 0 after 5 s at most, saying so', async (t) => {
    const run = await startHeld('SIGINT', false);
    if (!run) return t.skip('no PostgreSQL');
    assert.deepEqual({ code: run.code, signal: run.signal }, { code: 0, signal: null }, run.stderr);
    assert.match(run.stderr, /gatehouse: SIGINT while starting: stopping\ngatehouse: the start did not stop within 5 s: exiting now\n/);
    assert.ok(run.ms >= 4_500 && run.ms < 9_000, `exited after ${run.ms} ms`);
  });

  /** Starts the gateway on the test database (no proxy), its data-plane port known. */
  async function spawnGateway(name: string) {
    if ('skip' in database) throw new Error('no PostgreSQL');
    const port = await freePort();
    const configPath = join(dir, `gatehouse-${name}.yaml`);
    writeFileSync(configPath, `gateway:\n  listen: { host: 127.0.0.1, port: ${port} }\nadmin:\n  enabled: false\nconnections:\n  - name: demo\n    type: openai\n    target: http://127.0.0.1:1\n    access: { groups: [ml] }\nstore:\n  postgres: { url: \"\${STORE_URL}\" }\n`);
    const child = spawn(process.execPath, [gatehouseBin, 'start', '--config', configPath], { env: { ...process.env, STORE_URL: database.url }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, sig) => resolve({ code, signal: sig })));
    return { child, port, exited, stderr: () => stderr };
  }

  /** Waits until `count` sessions of the database wait for a lock (the gateway's among them). */
  async function lockWaiters(client: pg.Client, count: number, locktype: string): Promise<void> {
    for (let i = 0; i < 600; i++) {
      const { rows } = await client.query<{ n: number }>('select count(*)::int as n from pg_locks l join pg_stat_activity a on a.pid = l.pid where not l.granted and l.locktype = $1 and a.datname = current_database()', [locktype]);
      if (rows[0]!.n >= count) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.fail(`no ${count} session(s) waiting for a ${locktype} lock`);
  }

  test('SIGTERM while migrations wait for their lock (another gateway migrating): stops after them, binds nothing, exits 0', async (t) => {
    if ('skip' in database) return t.skip('no PostgreSQL');
    // Another process holds the migration lock (Kysely's advisory lock), as a gateway upgrading the store would.
    const holder = new pg.Client(database.url);
    await holder.connect();
    await holder.query('select pg_advisory_lock(3853314791062309107)');
    const run = await spawnGateway('migrating');
    try {
      await lockWaiters(holder, 1, 'advisory');
      const sent = Date.now();
      run.child.kill('SIGTERM');
      for (let i = 0; i < 200 && !run.stderr().includes('while starting'); i++) await new Promise((r) => setTimeout(r, 25));
      await holder.query('select pg_advisory_unlock(3853314791062309107)');
      const result = await run.exited;
      assert.deepEqual(result, { code: 0, signal: null }, run.stderr());
      assert.match(run.stderr(), /gatehouse: SIGTERM while starting: stopping\ngatehouse: stopped while starting\n/);
      assert.ok(Date.now() - sent < 4_000, `stopped after ${Date.now() - sent} ms`);
      assert.ok(await refused(run.port), 'the data-plane port is bound after the process ended');
    } finally {
      if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
      await holder.end();
    }
  });

  test('SIGTERM after the listeners bound (the start\'s last record waits): stops; a second SIGTERM while it closes exits 0 at once', async (t) => {
    if ('skip' in database) return t.skip('no PostgreSQL');
    // Two sessions take turns holding the audit chain's head row, which every appended
    // event locks: the gateway's `gateway.started` waits behind the first, its
    // `gateway.stopped` (written while it closes) behind the second.
    const first = new pg.Client(database.url);
    const second = new pg.Client(database.url);
    // pg_stat_activity is a snapshot per transaction: the holders cannot watch.
    const watcher = new pg.Client(database.url);
    await Promise.all([first.connect(), second.connect(), watcher.connect()]);
    await first.query('begin');
    await first.query('select * from audit_head for update');
    const run = await spawnGateway('closing');
    try {
      await lockWaiters(watcher, 1, 'transactionid');
      assert.equal(await refused(run.port), false, 'the data-plane listener is bound by now');
      run.child.kill('SIGTERM');
      for (let i = 0; i < 200 && !run.stderr().includes('while starting'); i++) await new Promise((r) => setTimeout(r, 25));
      await second.query('begin');
      const secondHolds = second.query('select * from audit_head for update');
      await lockWaiters(watcher, 1, 'tuple');
      await first.query('commit');
      await secondHolds;
      // gateway.started went through; the close now waits to write gateway.stopped.
      await lockWaiters(watcher, 1, 'transactionid');
      run.child.kill('SIGTERM');
      const result = await run.exited;
      assert.deepEqual(result, { code: 0, signal: null }, run.stderr());
      assert.match(run.stderr(), /gatehouse: SIGTERM while starting: stopping\ngatehouse: SIGTERM again while starting: exiting now\n/);
      assert.ok(await refused(run.port), 'the data-plane port is bound after the process ended');
    } finally {
      if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
      await second.query('rollback').catch(() => undefined);
      await Promise.all([first.end(), second.end(), watcher.end()]);
    }
  });
});
