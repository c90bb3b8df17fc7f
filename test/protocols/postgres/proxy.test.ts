// The PostgreSQL adapter in process, against the machine's real PostgreSQL: pg
// (simple, extended, pipelined), psql, COPY, cancel, masking, limits, policy denials
// and the recording. The `policy` here wraps compilePolicy with a rule that denies
// `sql.drop` (after the policy engine merges, the same denial comes from config rules).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import type { DecisionPolicy } from '../../../src/policy/index.js';
import { bindMessage, cstring, int16, int32, message, parseNoticeFields, startupMessage } from '../../../src/protocols/postgres/codec.js';
import { rawLogin } from '../../helpers/pg-raw.js';
import { startTestProxy, type TestProxy } from '../../helpers/postgres-proxy.js';

/**
 * A test Policy: the base decision, except `sql.drop` is denied by rule `deny-drop` and
 * `sql.truncate` requires approval by rule `approve-truncate`.
 */
function denyDrop(base: DecisionPolicy): DecisionPolicy {
  return {
    version: `${base.version}+deny-drop`,
    decide(exchange) {
      const decision = base.decide(exchange);
      if (decision.effect === 'allow' && exchange.operation === 'sql.truncate') {
        return { effect: 'require_approval', rules: ['approve-truncate'], reason: 'rule-require-approval', policyVersion: decision.policyVersion };
      }
      if (decision.effect === 'allow' && exchange.operation === 'sql.drop') {
        return { effect: 'deny', rules: ['deny-drop'], reason: 'rule-deny', message: 'Dropping tables is not allowed on this connection (rule: deny-drop).', policyVersion: decision.policyVersion };
      }
      return decision;
    },
  };
}

const proxyOrSkip = await startTestProxy({
  policy: denyDrop,
  maxRows: 1000,
  masking: { columns: new Map([['email', 'redact'], ['ssn', 'partial'], ['born', 'redact']]) },
});
const skip = 'skip' in proxyOrSkip ? proxyOrSkip.skip : undefined;

describe('PostgreSQL proxy against the real database', { skip }, () => {
  const proxy = proxyOrSkip as TestProxy;
  const clients: pg.Client[] = [];
  async function connect(extra: pg.ClientConfig = {}): Promise<pg.Client> {
    const client = new pg.Client(proxy.clientConfig(extra));
    client.on('error', () => undefined);
    await client.connect();
    clients.push(client);
    return client;
  }
  const psql = (args: string[], input?: string, env: NodeJS.ProcessEnv = {}) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const child = spawn('psql', ['-X', '-h', '127.0.0.1', '-p', String(proxy.port), '-U', 'agent', '-d', proxy.database, ...args], { env: { ...process.env, PGPASSWORD: proxy.token, PGSSLMODE: 'disable', ...env } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d));
      child.stderr.on('data', (d: Buffer) => (stderr += d));
      child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
      child.stdin.end(input ?? '');
    });

  before(async () => {
    const direct = new pg.Client({ connectionString: proxy.directUrl });
    await direct.connect();
    await direct.query(`create table people (id int primary key, name text, email text, ssn varchar(11), born date);
      insert into people select g, 'person ' || g, 'p' || g || '@example.com', '123-45-' || lpad(g::text, 4, '0'), date '1990-01-01' + g from generate_series(1, 2000) g;
      create table keep_me (id int)`);
    await direct.end();
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    await proxy.close();
  });

  test('simple query with several statements, and parameterised extended queries', async () => {
    const c = await connect();
    const results = (await c.query('select 1 as one; select name from people where id = 2')) as unknown as pg.QueryResult[];
    assert.deepEqual(results.map((r) => r.rows), [[{ one: 1 }], [{ name: 'person 2' }]]);
    const named = { name: 'by-id', text: 'select id, name from people where id = $1' };
    assert.deepEqual((await c.query({ ...named, values: [5] })).rows, [{ id: 5, name: 'person 5' }]);
    assert.deepEqual((await c.query({ ...named, values: [6] })).rows, [{ id: 6, name: 'person 6' }]);
    assert.deepEqual((await c.query('select $1::int + $2::int as sum', [2, 3])).rows, [{ sum: 5 }]);
  });

  test('pipelined extended queries all answer, in order', async () => {
    const c = await connect();
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => c.query('select $1::int as n', [i])));
    assert.deepEqual(answers.map((r) => r.rows[0].n), Array.from({ length: 50 }, (_, i) => i));
  });

  test('a table with PII comes back masked, each value still valid for its type', async () => {
    const c = await connect();
    const { rows } = await c.query('select id, name, email, ssn, born from people where id = $1', [7]);
    assert.deepEqual(rows, [{ id: 7, name: 'person 7', email: '[EMAIL]', ssn: '*******0007', born: null }]);
    const simple = await c.query('select email, ssn from people where id = 8');
    assert.deepEqual(simple.rows, [{ email: '[EMAIL]', ssn: '*******0008' }]);
  });

  test('DROP TABLE is blocked with 42501 naming the rule, and the session continues', async () => {
    const c = await connect();
    await assert.rejects(c.query('drop table keep_me'), (error: pg.DatabaseError) => {
      assert.equal(error.code, '42501');
      assert.equal(error.message, 'Dropping tables is not allowed on this connection (rule: deny-drop).');
      return true;
    });
    assert.deepEqual((await c.query('select count(*)::int as n from keep_me')).rows, [{ n: 0 }]);
    // Extended protocol: refused at Parse.
    await assert.rejects(c.query('drop table keep_me', []), { code: '42501' });
    assert.deepEqual((await c.query('select 1 as ok', [])).rows, [{ ok: 1 }]);
    // Both refusals are recorded with the deciding rule, the reason and the policy version.
    const refused = await proxy.store.db.selectFrom('exchanges').selectAll().where('operation', '=', 'sql.drop').orderBy('seq').execute();
    assert.deepEqual(refused.map((r) => [r.decision, JSON.parse(r.rules), r.reason, r.policy_version !== null, r.error_code]), [
      ['deny', ['deny-drop'], 'rule-deny', true, 'access_denied'],
      ['deny', ['deny-drop'], 'rule-deny', true, 'access_denied'],
    ]);
  });

  test('require_approval without approvals configured: refused (fail closed), no hold, the session continues', async () => {
    const c = await connect();
    const notices: string[] = [];
    c.on('notice', (n) => notices.push(n.message ?? ''));
    await assert.rejects(c.query('truncate keep_me'), { code: '42501', message: 'This request requires approval, and approvals are not enabled on this gateway. (rule: approve-truncate)' });
    // Extended protocol: refused at Parse.
    await assert.rejects(c.query('truncate keep_me', []), { code: '42501' });
    assert.deepEqual(notices, []);
    assert.deepEqual((await c.query('select 1 as still')).rows, [{ still: 1 }]);
  });

  test('security: a client encoding changed by set_config() (not SET) ends the session', async () => {
    const c = await connect();
    await assert.rejects(c.query("select set_config('client_encoding', 'LATIN1', false)"), (error: pg.DatabaseError) => {
      assert.equal(error.code, '0A000');
      assert.equal(error.message, 'The client encoding was changed to LATIN1; only UTF8 can be inspected, so the session ends.');
      return true;
    });
    await assert.rejects(c.query('select 1'));
    // A change to UTF8 is fine.
    const d = await connect();
    await d.query("select set_config('client_encoding', 'UTF8', false)");
    assert.deepEqual((await d.query('select 1 as fine')).rows, [{ fine: 1 }]);
  });

  test('a refused statement fails its transaction as the database would', async () => {
    const c = await connect();
    await c.query('begin');
    await c.query('insert into keep_me values (1)');
    await assert.rejects(c.query('drop table keep_me'), { code: '42501' });
    await assert.rejects(c.query('select 1'), { code: '25P02' }); // in_failed_sql_transaction
    await c.query('rollback');
    // In one Query, the statements before the refused one are not committed either.
    await assert.rejects(c.query('insert into keep_me values (2); drop table keep_me'), { code: '42501' });
    assert.deepEqual((await c.query('select count(*)::int as n from keep_me')).rows, [{ n: 0 }]);
  });

  test('pipelining: three extended batches in one write, the middle one refused, answered in order', async () => {
    const raw = await rawLogin(proxy.port, 'agent', proxy.database, proxy.token);
    const batch = (sql: string) => [
      message('P', Buffer.concat([cstring(''), cstring(sql), int16(0)])), // Parse
      bindMessage('', ''), // Bind
      message('D', Buffer.concat([Buffer.from('P'), cstring('')])), // Describe portal
      message('E', Buffer.concat([cstring(''), int32(0)])), // Execute
      message('S'), // Sync
    ];
    raw.write(...batch('select 1 as a'), ...batch('drop table keep_me'), ...batch('select 2 as b'));
    const answer = await raw.untilReady(3);
    assert.equal(answer.map((f) => f.type).join(''), '12TDCZ' + 'EZ' + '12TDCZ', JSON.stringify(answer.filter((f) => f.type === 'E').map((f) => Object.fromEntries(parseNoticeFields(f.body)))));
    const error = parseNoticeFields(answer[6]!.body);
    assert.equal(error.get('C'), '42501');
    assert.equal(error.get('M'), 'Dropping tables is not allowed on this connection (rule: deny-drop).');
    assert.equal(answer[7]!.body.toString(), 'I'); // ReadyForQuery: idle, the batch was not in a transaction
    raw.close();
  });

  test('NotificationResponse (LISTEN/NOTIFY) and NoticeResponse pass through', async () => {
    const listener = await connect();
    const sender = await connect();
    const got = new Promise<pg.Notification>((resolve) => listener.once('notification', resolve));
    const notices: string[] = [];
    sender.on('notice', (n) => notices.push(n.message ?? ''));
    await listener.query('listen gatehouse_channel');
    await sender.query("notify gatehouse_channel, 'hello'");
    const notification = await got;
    assert.equal(notification.channel, 'gatehouse_channel');
    assert.equal(notification.payload, 'hello');
    await sender.query('create temp table if not exists notice_here (a int)');
    await sender.query('create temp table if not exists notice_here (a int)');
    // A notice of the database's own (on this connection, which masks columns, what a message raised while running quotes is withheld).
    assert.deepEqual(notices, ['relation (what it quotes is withheld by Gatehouse: this connection masks columns)']);
    // What RAISE prints is withheld on this connection, which masks columns (server-messages.ts).
    const direct = new pg.Client({ connectionString: proxy.directUrl });
    await direct.connect();
    await direct.query("create or replace function say_hello() returns void language plpgsql as $$ begin raise notice 'from the database'; end $$");
    await direct.end();
    await sender.query('select say_hello()');
    assert.match(notices[1] ?? '', /^message withheld by Gatehouse/);
    // The process id a notification names is the one the client was given (BackendKeyData),
    // so a client can tell its own notifications from others', and match pg_stat_activity.
    const own = new Promise<pg.Notification>((resolve) => listener.once('notification', resolve));
    await listener.query("notify gatehouse_channel, 'mine'");
    const processID = (listener as unknown as { processID: number }).processID;
    assert.equal((await own).processId, processID);
    assert.equal(notification.processId, (sender as unknown as { processID: number }).processID);
    assert.deepEqual((await listener.query('select pg_backend_pid() as pid')).rows, [{ pid: processID }]);
  });

  test('unparseable SQL is refused with 42601 and the parser message', async () => {
    const c = await connect();
    await assert.rejects(c.query('selec 1'), { code: '42601', message: 'The SQL could not be parsed, so it was not forwarded: syntax error at or near "selec".' });
    assert.deepEqual((await c.query('select 2 as two')).rows, [{ two: 2 }]);
  });

  test('errors from the database pass through, and extended-mode recovery waits for Sync', async () => {
    const c = await connect();
    await assert.rejects(c.query('select * from no_such_table', []), { code: '42P01' });
    await assert.rejects(c.query('select * from no_such_table'), { code: '42P01' });
    assert.deepEqual((await c.query('select 3 as three', [])).rows, [{ three: 3 }]);
  });

  test('a parameterised statement the database refuses at Parse or Bind is recorded with the database error, not as "not executed"', async () => {
    const before = await proxy.store.db.selectFrom('exchanges').select((eb) => eb.fn.max('seq').as('seq')).executeTakeFirstOrThrow();
    const c = await connect({ application_name: 'parse-bind-errors' });
    // node-postgres sends Parse, Bind, Describe, Execute, Sync at once: a missing table
    // fails at Parse, a division by a constant zero at Bind (the plan folds it).
    await assert.rejects(c.query('select * from no_such_table where id = $1', [1]), { code: '42P01' });
    await assert.rejects(c.query('select 1 / $1::int as q', [0]), { code: '22012' });
    await c.query({ name: 'typed', text: 'select $1::int as n', values: [1] });
    await assert.rejects(c.query({ name: 'typed', text: 'select $1::int as n', values: ['x'] }), { code: '22P02' });
    // A batch whose first statement fails at Parse: the second, valid one, is only not executed.
    const raw = await rawLogin(proxy.port, 'agent', proxy.database, proxy.token);
    const batch = (sql: string) => [
      message('P', Buffer.concat([cstring(''), cstring(sql), int16(0)])),
      bindMessage('', ''),
      message('E', Buffer.concat([cstring(''), int32(0)])),
    ];
    raw.write(...batch('select * from no_such_table'), ...batch('select 2 as b'), message('S'));
    const answer = await raw.untilReady(1);
    assert.equal(answer.map((f) => f.type).join(''), 'EZ');
    raw.close();
    await c.end();
    clients.splice(clients.indexOf(c), 1);
    await new Promise((r) => setTimeout(r, 200));
    const statements = await proxy.store.db
      .selectFrom('exchanges')
      .select(['request_body', 'status', 'error_code', 'error_detail'])
      .where('operation', '=', 'sql.select')
      .where('seq', '>', Number(before.seq ?? 0))
      .where('request_body', 'in', [
        JSON.stringify({ sql: 'select * from no_such_table where id = $1', params: ['1'] }),
        JSON.stringify({ sql: 'select 1 / $1::int as q', params: ['0'] }),
        JSON.stringify({ sql: 'select $1::int as n', params: ['x'] }),
        JSON.stringify({ sql: 'select * from no_such_table', params: [] }),
        JSON.stringify({ sql: 'select 2 as b', params: [] }),
      ])
      .orderBy('seq')
      .execute();
    assert.deepEqual(
      statements.map((s) => [JSON.parse(s.request_body!).sql, s.status, s.error_code, s.error_detail]),
      [
        ['select * from no_such_table where id = $1', 400, 'sql_error', '42P01: relation "no_such_table" does not exist'],
        ['select 1 / $1::int as q', 400, 'sql_error', '22012: division by zero'],
        ['select $1::int as n', 400, 'sql_error', '22P02: invalid input syntax for type integer: "x"'],
        ['select * from no_such_table', 400, 'sql_error', '42P01: relation "no_such_table" does not exist'],
        ['select 2 as b', 502, 'not_executed', 'not executed: an earlier message in the same batch failed'],
      ],
    );
  });

  test('more rows than maxRows: 54000 after the limit, none beyond it', async () => {
    const c = await connect();
    await assert.rejects(c.query('select id from people'), { code: '54000', message: 'The query returned more than 1000 rows, the limit on connection "db" (maxRows); rows beyond it were not sent.' });
    assert.deepEqual((await c.query('select count(*)::int as n from people')).rows, [{ n: 2000 }]);
    const recorded = proxy.observed.find((o) => o.outcome.errorCode === 'row_limit_exceeded');
    assert.ok(recorded);
    assert.equal(JSON.parse(recorded.outcome.responseBody!).rows, 1000);
  });

  test('pg_terminate_backend: the database FATAL (57P01) is the last message of the session, with no FATAL of ours after it', async () => {
    const c = await connect();
    const errors: pg.DatabaseError[] = [];
    c.removeAllListeners('error');
    c.on('error', (e) => errors.push(e as pg.DatabaseError));
    const { rows } = await c.query('select pg_backend_pid() as pid');
    const sleeping = c.query('select pg_sleep(30)').then(() => undefined, (e: pg.DatabaseError) => e);
    await new Promise((r) => setTimeout(r, 200));
    const direct = new pg.Client({ connectionString: proxy.directUrl });
    await direct.connect();
    await direct.query('select pg_terminate_backend($1)', [rows[0].pid]);
    await direct.end();
    assert.equal((await sleeping)?.code, '57P01');
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(errors.map((e) => e.code ?? e.message), ['Connection terminated unexpectedly']);
  });

  test('query cancel: CancelRequest reaches the right backend', async () => {
    const c = await connect();
    const sleeping = c.query('select pg_sleep(30)');
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    // A CancelRequest on a new connection, with the key data the gateway handed out.
    await new Promise<void>((resolve, reject) => {
      const con = new (pg as unknown as { Connection: new () => { connect(port: number, host: string): void; on(e: string, f: () => void): void; cancel(pid: number, key: number): void; end(): void } }).Connection();
      con.on('connect', () => {
        const client = c as unknown as { processID: number; secretKey: number };
        con.cancel(client.processID, client.secretKey);
        con.end();
        resolve();
      });
      con.on('error', reject);
      con.connect(proxy.port, '127.0.0.1');
    });
    await assert.rejects(sleeping, { code: '57014' });
    assert.ok(Date.now() - started < 10_000);
    assert.deepEqual((await c.query('select 4 as four')).rows, [{ four: 4 }]);
  });

  test('psql -c, and a scripted interactive psql session', async () => {
    const one = await psql(['-At', '-c', 'select count(*) from people where id <= 3']);
    assert.equal(one.code, 0, one.stderr);
    assert.equal(one.stdout.trim(), '3');
    const script = "\\set ON_ERROR_STOP 0\nselect email from people where id = 1;\ndrop table keep_me;\nbegin;\ninsert into keep_me values (9);\ncommit;\nselect count(*) as kept from keep_me;\n\\q\n";
    const session = await psql(['-At'], script);
    assert.equal(session.code, 0);
    assert.equal(session.stdout, '[EMAIL]\nBEGIN\nINSERT 0 1\nCOMMIT\n1\n');
    assert.match(session.stderr, /ERROR: {2}Dropping tables is not allowed on this connection \(rule: deny-drop\)\./);
  });

  test('startup settings from libpq reach the database: PGTZ and PGDATESTYLE (sent as timezone and datestyle), PGAPPNAME', async () => {
    const settings = await psql(['-At', '-c', "select current_setting('TimeZone') || '|' || current_setting('DateStyle') || '|' || current_setting('application_name')"], '', { PGTZ: 'Asia/Tokyo', PGDATESTYLE: 'SQL, DMY', PGAPPNAME: 'tz-check' });
    assert.equal(settings.code, 0, settings.stderr);
    assert.equal(settings.stdout.trim(), 'Asia/Tokyo|SQL, DMY|tz-check');
    // The encoding check reads the name in any case too: CLIENT_ENCODING is refused as client_encoding is.
    const raw = await new Promise<Buffer>((resolve) => {
      const socket = netConnect({ port: proxy.port, host: '127.0.0.1' });
      const chunks: Buffer[] = [];
      socket.on('data', (d: Buffer) => {
        chunks.push(d);
        if (d[0] === 0x52) socket.write(message('p', cstring(proxy.token)));
      });
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(Buffer.concat(chunks)));
      socket.write(startupMessage({ user: 'agent', database: proxy.database, CLIENT_ENCODING: 'LATIN1' }));
      setTimeout(() => socket.destroy(), 3000);
    });
    assert.match(raw.toString('latin1'), /Client encoding "LATIN1" is not supported through the gateway: use UTF8\./);
  });

  test('a FunctionCall (psql \\lo_import) is refused with 0A000, recorded, and the session goes on', async () => {
    const file = join(tmpdir(), `gatehouse-lo-${process.pid}.txt`);
    writeFileSync(file, 'large object');
    try {
      const run = await psql(['-At'], `\\lo_import ${file}\nselect 'still here';\n`);
      assert.match(run.stderr, /ERROR: {2}The FunctionCall protocol message is not supported through the gateway; call the function from SQL\./);
      assert.equal(run.stdout, 'still here\n');
    } finally {
      rmSync(file, { force: true });
    }
    const recorded = await proxy.store.db.selectFrom('exchanges').select(['operation', 'request_body', 'error_code', 'error_detail']).where('request_body', 'like', '%FunctionCall%').execute();
    assert.equal(recorded.length, 1);
    assert.equal(recorded[0]!.operation, 'sql.other');
    assert.equal(recorded[0]!.error_code, 'sql_not_supported');
    assert.match(recorded[0]!.error_detail!, /^FunctionCall of the function with OID \d+$/);
  });

  test("node-postgres' statement_timeout, lock_timeout and idle_in_transaction_session_timeout options reach the database, and so do the same settings in options (PGOPTIONS; they were dropped)", async () => {
    const c = await connect({ statement_timeout: 300, lock_timeout: 2000, idle_in_transaction_session_timeout: 60000 });
    assert.deepEqual((await c.query("select current_setting('statement_timeout') as st, current_setting('lock_timeout') as lt, current_setting('idle_in_transaction_session_timeout') as it")).rows, [{ st: '300ms', lt: '2s', it: '1min' }]);
    await assert.rejects(c.query('select pg_sleep(5)'), { code: '57014', message: 'canceling statement due to statement timeout' });
    // The same settings in `options` (libpq's PGOPTIONS) reach it too, with the other ordinary ones (startup-settings.test.ts).
    const o = await connect({ options: '-c work_mem=77MB -c statement_timeout=250 --lock-timeout=3s' });
    assert.deepEqual((await o.query("select current_setting('work_mem') as wm, current_setting('statement_timeout') as st, current_setting('lock_timeout') as lt")).rows, [{ wm: '77MB', st: '250ms', lt: '3s' }]);
  });

  test('the transaction defaults a client asks for at startup reach the database (they were dropped: a read-only session could write)', async () => {
    const c = await connect({ options: '-c default_transaction_read_only=on -c default_transaction_isolation=serializable -c default_transaction_deferrable=on' });
    assert.deepEqual((await c.query("select current_setting('default_transaction_read_only') as ro, current_setting('default_transaction_isolation') as iso, current_setting('default_transaction_deferrable') as d")).rows, [{ ro: 'on', iso: 'serializable', d: 'on' }]);
    await assert.rejects(c.query('create table read_only_session_wrote (id int)'), { code: '25006' });
  });

  test('a search_path asked for at startup (JDBC currentSchema, Npgsql Search Path, -c search_path) is refused at login naming it, not dropped silently', async () => {
    const why = /^The startup parameter search_path \("secret"\) is not passed on through the gateway, and without it statements would run against other schemas' tables than asked for: connect without it .* and run SET search_path after connecting\.$/;
    await assert.rejects(connect({ options: '-c search_path=secret' }), (e: pg.DatabaseError) => e.code === '0A000' && e.severity === 'FATAL' && why.test(e.message));
    const answer = await new Promise<Buffer>((resolve) => {
      const socket = netConnect({ port: proxy.port, host: '127.0.0.1' }, () => socket.write(startupMessage({ user: 'agent', database: proxy.database, search_path: 'secret' })));
      const chunks: Buffer[] = [];
      socket.on('data', (d: Buffer) => chunks.push(d));
      socket.on('close', () => resolve(Buffer.concat(chunks)));
    });
    assert.equal(answer[0], 'E'.charCodeAt(0));
    assert.match(parseNoticeFields(answer.subarray(5)).get('M')!, why);
  });

  test('COPY in and out through psql \\copy', async () => {
    const copy = await psql(['-c', "\\copy keep_me from stdin"], '100\n101\n102\n\\.\n');
    assert.equal(copy.code, 0, copy.stderr);
    assert.match(copy.stdout, /COPY 3/);
    // On this connection with column rules, COPY out is described and masked column by column (none of these is masked).
    const out = await psql(['-At', '-c', "\\copy (select id from keep_me where id >= 100 order by id) to stdout"]);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.stdout, '100\n101\n102\n');
    const people = await psql(['-At', '-c', "\\copy (select id, email, ssn from people where id = 7) to stdout with csv"]);
    assert.equal(people.stdout, '7,[EMAIL],*******0007\n');
  });

  test('wrong user name → 28000; a bad key → 28P01; both recorded', async () => {
    await assert.rejects(connect({ user: 'someone-else' }), (error: pg.DatabaseError) => {
      assert.equal(error.code, '28000');
      assert.equal(error.message, 'The user name "someone-else" does not match the credential presented as the password (it belongs to "key:agent"); connect as user "agent".');
      return true;
    });
    await assert.rejects(connect({ password: 'gh_not_a_key' }), { code: '28P01', message: 'The credential presented is not valid.' });
    await assert.rejects(connect({ database: 'postgres' }), { code: '3D000' });
    // An empty password: told what the password is, not how to send an HTTP header.
    await assert.rejects(connect({ password: '' }), { code: '28P01', message: 'No password was presented: the password is a Gatehouse API key (or gateway token).' });
    const refusals = proxy.observed.filter((o) => o.exchange.operation === 'sql.connect').map((o) => o.outcome.errorCode);
    assert.deepEqual(refusals.slice(-4), ['user_mismatch', 'invalid_credential', 'database_not_found', 'unauthenticated']);
  });

  test('security: a message over maxMessageBytes ends that session with 08P01, and no other', async () => {
    const other = await connect();
    const big = 'x'.repeat(200 * 1024);
    assert.deepEqual((await other.query('select length($1) as n', [big])).rows, [{ n: big.length }]);
    const c = await connect();
    const ended = new Promise<Error>((resolve) => c.once('error', resolve));
    await assert.rejects(c.query(`select '${'y'.repeat(1024 * 1024)}'`), (error: pg.DatabaseError) => {
      assert.equal(error.code, '08P01');
      assert.equal(error.message, `Protocol violation: message length ${1024 * 1024 + 14} exceeds the limit of ${1024 * 1024} bytes (limits.maxMessageBytes of connection "db"), so the session ends. Send bulk data with COPY FROM STDIN, or in smaller statements.`);
      return true;
    });
    await Promise.race([ended, new Promise((r) => setTimeout(r, 2000))]);
    assert.deepEqual((await other.query('select 6 as six')).rows, [{ six: 6 }]);
  });

  test('the recording: one session with a start and an end, and each statement in it', async () => {
    const c = await connect({ application_name: 'recording-test' });
    await c.query('select id from people where id = $1', [11]);
    await c.query('insert into keep_me values (7)');
    await c.end();
    clients.splice(clients.indexOf(c), 1);
    await new Promise((r) => setTimeout(r, 200));
    const session = await proxy.store.db.selectFrom('exchanges').selectAll().where('operation', '=', 'sql.session').where('client_address', 'is not', null).orderBy('seq', 'desc').executeTakeFirstOrThrow();
    assert.equal(session.protocol, 'postgres');
    assert.equal(session.id, session.session_id);
    assert.equal(session.subject, 'key:agent');
    assert.ok(session.ended_at !== null && session.ended_at >= session.started_at);
    const statements = await proxy.store.db.selectFrom('exchanges').selectAll().where('session_id', '=', session.id).where('id', '!=', session.id).orderBy('seq').execute();
    assert.deepEqual(statements.map((s) => [s.operation, s.decision, JSON.parse(s.request_body!), JSON.parse(s.response_body!)]), [
      ['sql.select', 'allow', { sql: 'select id from people where id = $1', params: ['11'] }, { command: 'SELECT 1', rows: 1 }],
      ['sql.insert', 'allow', { sql: 'insert into keep_me values (7)' }, { command: 'INSERT 0 1', rows: 1 }],
    ]);
  });
});
