// PostgreSQL through an agent, end to end with real processes: the real `gatehouse
// start` and `gatehouse agent` (both from dist/), node-postgres as the client. The
// database is reached through a TCP relay on 127.0.0.2 that only the agent's config
// names (the gateway's config has `via: agent:edge` and no address, and the relay counts
// every connection it carries), with the database password only in the agent's
// environment. Simple and extended queries, COPY, a masked column and a denied
// statement; SIGKILL of the agent mid-statement (a clean FATAL for the client, the
// session's record complete); no agent (FATAL 08001 at once); a restarted agent serves
// new sessions with the same gateway process.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import pg from 'pg';
import { createTestPostgresDatabase } from '../helpers/databases.js';
import { gatehouseBin, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { copy } from '../helpers/pg-copy.js';
import { makeTestPki, type TestPki } from '../helpers/tls.js';

const database = await createTestPostgresDatabase();
const skip = 'skip' in database ? database.skip : undefined;

interface Relay {
  readonly port: number;
  /** Connections carried so far, and those still open. */
  readonly carried: () => number;
  readonly open: () => number;
  close(): Promise<void>;
}

/** 127.0.0.2:<port> -> the machine's PostgreSQL: the only way to the database in this test. */
async function startRelay(to: { host: string; port: number }): Promise<Relay> {
  let carried = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((inbound) => {
    carried++;
    const outbound = netConnect(to);
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.once('close', () => {
        sockets.delete(s);
        inbound.destroy();
        outbound.destroy();
      });
    }
    inbound.pipe(outbound);
    outbound.pipe(inbound);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.2', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    carried: () => carried,
    open: () => [...sockets].length / 2,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('PostgreSQL through an agent, end to end with real processes', { skip }, () => {
  const db = database as { url: string; drop(): Promise<void> };
  const dbUrl = new URL(db.url);
  let relay: Relay;
  let pki: TestPki;
  let gateway: GatewayProcess;
  let agentsUrl: string;
  let callerKey: string;
  let adminKey: string;
  let port: number;
  const agents: ChildProcess[] = [];
  const clients: pg.Client[] = [];

  async function startAgentProcess(): Promise<ChildProcess> {
    const child = spawn(
      process.execPath,
      [gatehouseBin, 'agent', '--gateway', agentsUrl, '--key', `file:${join(gateway.dir, 'agent.key')}`, '--ca', pki.caPath, '--config', join(gateway.dir, 'agent.yaml')],
      { env: { ...process.env, DB_PASSWORD: 'only-the-agent-has-it', GATEHOUSE_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout!.resume();
    let stderr = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`agent did not connect in 15 s:\n${stderr}`)), 15_000);
      child.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (/gatehouse agent: connected to /.test(stderr)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`agent exited with ${code}:\n${stderr}`));
      });
    });
    agents.push(child);
    return child;
  }

  async function connect(): Promise<pg.Client> {
    const client = new pg.Client({ host: '127.0.0.1', port, user: 'analyst', password: callerKey, database: 'warehouse' });
    client.on('error', () => undefined);
    await client.connect();
    clients.push(client);
    return client;
  }

  async function admin(path: string): Promise<Record<string, unknown>> {
    const res = await fetch(`${gateway.adminUrl}${path}`, { headers: { authorization: `Bearer ${adminKey}` } });
    assert.equal(res.status, 200);
    return (await res.json()) as Record<string, unknown>;
  }

  before(async () => {
    relay = await startRelay({ host: dbUrl.hostname, port: Number(dbUrl.port || 5432) });
    pki = makeTestPki();
    gateway = await startGatewayProcess(`gateway:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: 0 }
  groups: [admins]
log: { level: info }
agents:
  listen: { host: 127.0.0.1, port: 0 }
  tls: { cert: file:${pki.certPath}, key: file:${pki.keyPath} }
  heartbeat: 1s
connections:
  - name: warehouse
    type: postgres
    via: agent:edge
    listen: { host: 127.0.0.1, port: 0 }
    allowPlaintext: true
    masking: { columns: { email: redact } }
    access: { groups: [analysts] }
policy:
  rules:
    - name: no-drop
      effect: deny
      message: Dropping tables is not allowed here.
      match: { operations: [sql.drop] }
`);
    agentsUrl = /agent endpoint (\S+)/.exec(gateway.stderr())![1]!;
    callerKey = await gateway.createKey('analyst', ['analysts']);
    adminKey = await gateway.createKey('auditor', ['admins']);
    writeFileSync(join(gateway.dir, 'agent.key'), await gateway.createKey('edge-1', ['agent:edge'], ['--kind', 'agent']), { mode: 0o600 });
    writeFileSync(join(gateway.dir, 'agent.yaml'), `name: edge
reconnect: { initial: 100ms, max: 1s }
connections:
  - name: warehouse
    type: postgres
    target: postgres://127.0.0.2:${relay.port}${dbUrl.pathname}
    tls: { mode: disable }
    credential: { user: postgres, secret: "\${DB_PASSWORD}" }
`);
    port = await gateway.postgresPort('warehouse');
    const direct = new pg.Client({ connectionString: db.url });
    await direct.connect();
    await direct.query(`create table people (id int primary key, name text, email text);
      insert into people select g, 'person ' || g, 'p' || g || '@example.com' from generate_series(1, 50) g;
      create table keep_me (id int)`);
    await direct.end();
    await startAgentProcess();
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.end().catch(() => undefined)));
  });

  after(async () => {
    for (const agent of agents) if (agent.exitCode === null && agent.signalCode === null) agent.kill('SIGKILL');
    await gateway?.stop();
    await relay?.close();
    await db.drop();
    if (pki) rmSync(pki.dir, { recursive: true, force: true });
  });

  test('simple and extended queries, COPY, masking and a denial; the database is reached only through the agent', async () => {
    assert.doesNotMatch(readFileSync(gateway.configPath, 'utf8'), /5432|127\.0\.0\.2|postgres:\/\//);
    const before = relay.carried();
    const c = await connect();
    assert.equal(relay.carried(), before + 1, 'the session did not go through the relay the agent names');
    const simple = (await c.query('select count(*)::int as n from people; select current_user as u')) as unknown as pg.QueryResult[];
    assert.deepEqual(simple.map((r) => r.rows[0]), [{ n: 50 }, { u: 'postgres' }]);
    const extended = await c.query({ text: 'select id, name, email from people where id = $1', values: [3] });
    assert.deepEqual(extended.rows, [{ id: 3, name: 'person 3', email: '[EMAIL]' }]);
    const copied = await copy(c, 'copy keep_me (id) from stdin', '1\n2\n3\n');
    assert.equal(copied.tag, 'COPY 3');
    await assert.rejects(c.query('drop table keep_me'), (error: pg.DatabaseError) => {
      assert.equal(error.code, '42501');
      assert.match(error.message, /Dropping tables is not allowed here/);
      return true;
    });
    assert.equal((await c.query('select sum(id)::int as s from keep_me')).rows[0].s, 6);
  });

  test('SIGKILL of the agent mid-statement: a clean FATAL, the record complete; no agent: FATAL 08001 at once; a restarted agent serves again', async () => {
    const c = await connect();
    const started = Date.now();
    const sleeping = c.query('select pg_sleep(30)');
    await new Promise((r) => setTimeout(r, 300));
    agents.at(-1)!.kill('SIGKILL');
    await assert.rejects(sleeping, (error: pg.DatabaseError) => {
      assert.equal(error.severity, 'FATAL');
      assert.equal(error.code, '08006');
      assert.equal(error.detail, 'gatehouse code: agent_disconnected');
      return true;
    });
    assert.ok(Date.now() - started < 15_000, 'the cut took too long to reach the client');

    // The record: the session and its statement are finished, with the reason.
    let records: Record<string, unknown>[] = [];
    for (let i = 0; i < 100; i++) {
      records = ((await admin('/api/sessions?connection=warehouse&limit=20')).sessions as Record<string, unknown>[]);
      const session = records.find((r) => r['operation'] === 'sql.session');
      if (session && (await admin(`/api/sessions/${String(session['id'])}`))['endedAt'] !== null) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    // Listed again: the statements are finished before their session is.
    records = (await admin('/api/sessions?connection=warehouse&limit=20')).sessions as Record<string, unknown>[];
    const session = records.find((r) => r['operation'] === 'sql.session')!;
    const detail = await admin(`/api/sessions/${String(session['id'])}`);
    assert.notEqual(detail['endedAt'], null);
    assert.equal(detail['errorCode'], 'agent_disconnected');
    const statement = records.find((r) => r['sessionId'] === session['id'] && r['operation'] === 'sql.select')!;
    assert.ok(statement, JSON.stringify(records));
    assert.equal(statement['errorCode'], 'agent_disconnected');
    assert.equal(statement['complete'], true);

    // Gone with the agent: its database connections through the relay.
    for (let i = 0; i < 100 && relay.open() > 0; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(relay.open(), 0, 'a database connection outlived the agent');

    // No agent connected: refused at once, not a hang.
    for (let i = 0; i < 100 && ((await admin('/api/agents')).agents as unknown[]).length > 0; i++) await new Promise((r) => setTimeout(r, 50));
    const refusedAt = Date.now();
    await assert.rejects(connect(), (error: pg.DatabaseError) => {
      assert.equal(error.code, '08001');
      assert.equal(error.detail, 'gatehouse code: agent_unavailable');
      return true;
    });
    assert.ok(Date.now() - refusedAt < 5_000);

    await startAgentProcess();
    const again = await connect();
    assert.deepEqual((await again.query('select count(*)::int as n from people')).rows, [{ n: 50 }]);
    assert.equal(gateway.child.exitCode, null, 'the gateway was restarted');
  });
});
