// PostgreSQL through an agent, in process (a real gateway with its agent endpoint on
// TLS, real agents, the machine's PostgreSQL reached only through the agent's config):
// - node-postgres through the gateway's listener: simple and extended queries, COPY in
//   and out, a masked column and a denied statement, all recorded by the gateway;
// - CancelRequest (the client's, and the gateway's own for statementTimeout) goes
//   through the agent to the right backend;
// - no agent connected: a clear FATAL 08001 at once, not a hang;
// - a client that stops reading a large result does not stall other sessions on the
//   same tunnel, and the database itself is held back (its backend waits in ClientWrite);
// - an agent without a credential for the database, and a gateway that sends none: the
//   session is refused with a clear error.

import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { after, afterEach, before, describe, test } from 'node:test';
import pg from 'pg';
import type { Agent } from '../../src/agent/agent-client.js';
import { cancelRequest, message, cstring } from '../../src/protocols/postgres/codec.js';
import { createTestPostgresDatabase } from '../helpers/databases.js';
import { copy } from '../helpers/pg-copy.js';
import { rawLogin } from '../helpers/pg-raw.js';
import { agentKey, startTestAgent, startTunnelGateway, waitFor, type TunnelGateway } from './helpers.js';

const database = await createTestPostgresDatabase();
const skip = 'skip' in database ? database.skip : undefined;

describe('PostgreSQL through an agent (in process)', { skip }, () => {
  const db = database as { url: string; drop(): Promise<void> };
  const url = new URL(db.url);
  let gw: TunnelGateway;
  let port: number;
  let rawPort: number;
  let agents: Agent[] = [];
  // Made before any traffic: a key written while the recorder's worker writes can fail with SQLITE_BUSY.
  const keys: string[] = [];
  const clients: pg.Client[] = [];

  const startAgent = async (extra = '') => {
    const entry = (name: string) => `  - name: ${name}\n    type: postgres\n    target: postgres://${url.host}${url.pathname}\n    tls: { mode: disable }\n${extra}`;
    const { agent } = await startTestAgent(
      gw,
      keys.shift()!,
      `name: pgedge\nconnections:\n${entry('wh')}${entry('whraw')}`,
      { PG_AGENT_SECRET: 'trust-auth-ignores-it' },
    );
    agents.push(agent);
    return agent;
  };
  const connect = async (extra: pg.ClientConfig = {}, connection = 'wh') => {
    const client = new pg.Client({ host: '127.0.0.1', port: connection === 'wh' ? port : rawPort, user: 'caller', password: gw.callerKey, database: connection, ...extra });
    client.on('error', () => undefined);
    await client.connect();
    clients.push(client);
    return client;
  };

  before(async () => {
    gw = await startTunnelGateway(`  - name: wh
    type: postgres
    via: agent:pgedge
    listen: { host: 127.0.0.1, port: 0 }
    allowPlaintext: true
    limits: { statementTimeout: 1s }
    masking: { columns: { email: redact } }
    access: { groups: [ml] }
  - name: whraw
    type: postgres
    via: agent:pgedge
    listen: { host: 127.0.0.1, port: 0 }
    allowPlaintext: true
    access: { groups: [ml] }
policy:
  rules:
    - name: no-drop
      effect: deny
      message: Dropping tables is not allowed here.
      match: { operations: [sql.drop] }
`);
    for (let i = 0; i < 4; i++) keys.push(await agentKey(gw, `pg-edge-${i}`, ['agent:pgedge']));
    port = Number(gw.gateway.postgresListeners.get('wh')!.split(':').at(-1));
    rawPort = Number(gw.gateway.postgresListeners.get('whraw')!.split(':').at(-1));
    const direct = new pg.Client({ connectionString: db.url });
    await direct.connect();
    await direct.query(`create table people (id int primary key, name text, email text);
      insert into people select g, 'person ' || g, 'p' || g || '@example.com' from generate_series(1, 100) g;
      create table keep_me (id int)`);
    await direct.end();
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.end().catch(() => undefined)));
  });
  after(async () => {
    for (const agent of agents) await agent.close();
    await gw?.close();
    await db.drop();
  });

  test('no agent connected: the client gets FATAL 08001 agent_unavailable at once', async () => {
    const started = Date.now();
    await assert.rejects(connect(), (error: pg.DatabaseError) => {
      assert.equal(error.code, '08001');
      assert.equal(error.severity, 'FATAL');
      assert.match(error.message, /No agent serving this connection is connected/);
      assert.equal(error.detail, 'gatehouse code: agent_unavailable');
      return true;
    });
    assert.ok(Date.now() - started < 5_000);
  });

  test('an agent with no credential, and a gateway that sends none: the login is refused with a clear error', async () => {
    const agent = await startAgent();
    await assert.rejects(connect(), (error: pg.DatabaseError) => {
      assert.equal(error.code, '08001');
      assert.equal(error.detail, 'gatehouse code: upstream_unreachable');
      return true;
    });
    await agent.close();
    agents = agents.filter((a) => a !== agent);
  });

  test('simple and extended queries, COPY in and out, masking and a denial, through the agent', async () => {
    await startAgent('    credential: { user: postgres, secret: "${PG_AGENT_SECRET}" }\n');
    const c = await connect();
    const simple = await c.query('select count(*)::int as n from people; select current_database() as db');
    assert.deepEqual((simple as unknown as pg.QueryResult[]).map((r) => r.rows[0]), [{ n: 100 }, { db: url.pathname.slice(1) }]);
    const extended = await c.query({ text: 'select id, name, email from people where id = $1', values: [7] });
    assert.deepEqual(extended.rows, [{ id: 7, name: 'person 7', email: '[EMAIL]' }]);
    const named = await c.query({ name: 'by-id', text: 'select name from people where id = $1', values: [8] });
    assert.equal(named.rows[0].name, 'person 8');

    const copiedIn = await copy(c, 'copy keep_me (id) from stdin', Array.from({ length: 1000 }, (_, i) => `${i}\n`).join(''));
    assert.equal(copiedIn.tag, 'COPY 1000');
    // COPY out: masked column by column where column masking rules apply (described through the agent too), carried where none do.
    assert.deepEqual(await copy(c, 'copy (select * from people where id = 7) to stdout with csv'), { out: '7,person 7,[EMAIL]\n', tag: 'COPY 1' });
    const unmasked = await connect({}, 'whraw');
    const copiedOut = await copy(unmasked, 'copy (select id from keep_me order by id limit 3) to stdout');
    assert.deepEqual(copiedOut, { out: '0\n1\n2\n', tag: 'COPY 3' });

    await assert.rejects(c.query('drop table keep_me'), (error: pg.DatabaseError) => {
      assert.equal(error.code, '42501');
      assert.match(error.message, /Dropping tables is not allowed here/);
      return true;
    });
    // The session goes on after a denial.
    assert.equal((await c.query('select count(*)::int as n from keep_me')).rows[0].n, 1000);
    // The agent logs in with the caller's startup settings the gateway passes on (node-postgres' statement_timeout, work_mem in options).
    const bounded = await connect({ statement_timeout: 300, options: '-c work_mem=77MB' });
    assert.deepEqual((await bounded.query("select current_setting('statement_timeout') as st, current_setting('work_mem') as wm")).rows, [{ st: '300ms', wm: '77MB' }]);
  });

  test('CancelRequest through the agent: the client cancel and the statementTimeout both reach the backend', async () => {
    if (agents.length === 0) await startAgent('    credential: { user: postgres, secret: "${PG_AGENT_SECRET}" }\n');
    const c = await connect();
    const started = Date.now();
    await assert.rejects(c.query('select pg_sleep(20)'), (error: pg.DatabaseError) => {
      assert.equal(error.code, '57014');
      assert.match(error.message, /longer than 1000 ms/);
      return true;
    });
    assert.ok(Date.now() - started < 10_000, 'the statement timeout did not cancel the query');

    // The client's own CancelRequest, with the key the gateway handed out (on whraw: no statementTimeout there).
    const raw = await connect({}, 'whraw');
    const { processID, secretKey } = raw as unknown as { processID: number; secretKey: number };
    const cancelledAt = Date.now();
    const sleeping = raw.query('select pg_sleep(10), 1 as x').then(
      () => 'finished',
      (error: pg.DatabaseError) => `${error.code} ${error.message}`,
    );
    await new Promise((r) => setTimeout(r, 300));
    const cancel = netConnect({ host: '127.0.0.1', port: rawPort });
    await new Promise<void>((resolve) => cancel.once('connect', resolve));
    cancel.end(cancelRequest(processID, secretKey));
    assert.equal(await sleeping, '57014 canceling statement due to user request');
    assert.ok(Date.now() - cancelledAt < 8_000);
    assert.equal((await raw.query('select 1 as one')).rows[0].one, 1);
  });

  test('with two agents serving the connection, each CancelRequest goes through the agent holding that session', async () => {
    while (agents.length < 2) await startAgent('    credential: { user: postgres, secret: "${PG_AGENT_SECRET}" }\n');
    const inFlight = async () => ((await (await fetch(`${gw.gateway.adminUrl}/api/agents`, { headers: { authorization: `Bearer ${gw.adminKey}` } })).json()) as { agents: { inFlight: number }[] }).agents.map((a) => a.inFlight);
    // The sessions of the tests before (ended by afterEach) and their cancel connections
    // leave an agent's books only once its side of the stream has closed: on a busy
    // machine one still counted, and the second session went to the least busy agent,
    // the same one ([2, 1]). Both agents idle first, as the case means.
    await waitFor(async () => (await inFlight()).every((n) => n === 0), 'both agents idle');
    // Two sessions at once: spread over both agents (least outstanding first).
    const sessions = await Promise.all([connect({}, 'whraw'), connect({}, 'whraw')]);
    assert.deepEqual(await inFlight(), [1, 1], 'the two sessions did not land on different agents');
    // One after the other: an unpinned cancel would go to the same (least busy) agent both times.
    const results: { code: string; ms: number }[] = [];
    for (const c of sessions) {
      const { processID, secretKey } = c as unknown as { processID: number; secretKey: number };
      const started = Date.now();
      const sleeping = c.query('select pg_sleep(10)').then(
        () => 'finished',
        (error: pg.DatabaseError) => error.code as string,
      );
      await new Promise((r) => setTimeout(r, 300));
      const cancel = netConnect({ host: '127.0.0.1', port: rawPort });
      await new Promise<void>((resolve) => cancel.once('connect', resolve));
      cancel.end(cancelRequest(processID, secretKey));
      results.push({ code: await sleeping, ms: Date.now() - started });
    }
    assert.deepEqual(results.map((r) => r.code), ['57014', '57014']);
    assert.ok(results.every((r) => r.ms < 8_000), JSON.stringify(results));
  });

  test('a client that stops reading a large result holds back only its own session, back to the database', async () => {
    if (agents.length === 0) await startAgent('    credential: { user: postgres, secret: "${PG_AGENT_SECRET}" }\n');
    // On whraw: no statementTimeout to cancel it meanwhile.
    const stalled = await rawLogin(rawPort, 'caller', 'whraw', gw.callerKey);
    stalled.write(message('Q', cstring("select g, repeat('x', 200) from generate_series(1, 3000000) g")));
    stalled.socket.pause();
    const watcher = new pg.Client({ connectionString: db.url });
    await watcher.connect();
    try {
      // The backend runs the query and then waits for its socket to take more: nobody reads.
      await waitFor(async () => {
        const { rows } = await watcher.query("select wait_event from pg_stat_activity where query like '%generate_series(1, 3000000)%' and pid <> pg_backend_pid()");
        return rows[0]?.wait_event === 'ClientWrite';
      }, 'the stalled backend to wait in ClientWrite', 20_000);
      // Nothing piles up in the gateway or the agent (both in this process) meanwhile.
      const heldBefore = process.memoryUsage().arrayBuffers;
      await new Promise((r) => setTimeout(r, 1500));
      const started = Date.now();
      const others = await Promise.all(Array.from({ length: 5 }, async () => {
        const c = await connect();
        return (await c.query('select count(*)::int as n from people')).rows[0].n as number;
      }));
      assert.deepEqual(others, [100, 100, 100, 100, 100]);
      assert.ok(Date.now() - started < 10_000, `5 sessions took ${Date.now() - started} ms beside a stalled one`);
      const grown = process.memoryUsage().arrayBuffers - heldBefore;
      assert.ok(grown < 48 * 1024 * 1024, `buffers grew by ${Math.round(grown / 1024 / 1024)} MiB while the client read nothing`);
      const { rows } = await watcher.query("select state, wait_event from pg_stat_activity where query like '%generate_series(1, 3000000)%' and pid <> pg_backend_pid()");
      assert.deepEqual(rows[0], { state: 'active', wait_event: 'ClientWrite' }, 'the stalled result kept flowing while its client read nothing');
    } finally {
      stalled.close();
      await watcher.end();
    }
  });

  test('the session and its statements are recorded by the gateway, as for a direct connection', async () => {
    if (agents.length === 0) await startAgent('    credential: { user: postgres, secret: "${PG_AGENT_SECRET}" }\n');
    const c = await connect();
    await c.query('select name from people where id = $1', [11]);
    await c.query('insert into keep_me values (7)');
    await c.end();
    clients.splice(clients.indexOf(c), 1);
    const db = gw.gateway.store.db;
    // Records reach the store in batches: without this, an earlier test's session could be the latest one read.
    await gw.gateway.settleRecords();
    let session;
    await waitFor(async () => {
      session = await db.selectFrom('exchanges').selectAll().where('operation', '=', 'sql.session').where('connection', '=', 'wh').orderBy('seq', 'desc').executeTakeFirst();
      return session?.ended_at != null;
    }, 'the session record to be finished');
    assert.equal(session!.subject, 'key:caller');
    assert.equal(session!.connection, 'wh');
    assert.equal(session!.error_code, null);
    const statements = await db.selectFrom('exchanges').selectAll().where('session_id', '=', session!.id).where('id', '!=', session!.id).orderBy('seq').execute();
    assert.deepEqual(statements.map((s) => [s.operation, s.decision, JSON.parse(s.request_body!), JSON.parse(s.response_body!)]), [
      ['sql.select', 'allow', { sql: 'select name from people where id = $1', params: ['11'] }, { command: 'SELECT 1', rows: 1 }],
      ['sql.insert', 'allow', { sql: 'insert into keep_me values (7)' }, { command: 'INSERT 0 1', rows: 1 }],
    ]);
  });
});
