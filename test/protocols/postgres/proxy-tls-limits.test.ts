// TLS on the listener (SSLRequest), the plaintext refusal, statement timeout, COPY out
// without masking, a masking profile over rows, parameters and COPY, and the
// startup-phase security regressions.

import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { createSecureContext } from 'node:tls';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { MaskPlanner } from '../../../src/mask/index.js';
import { int32, sslRequestCode } from '../../../src/protocols/postgres/codec.js';
import { postgresMasking } from '../../../src/server/build-postgres-connections.js';
import { startTestProxy, type TestProxy } from '../../helpers/postgres-proxy.js';
import { makeTestPki } from '../../helpers/tls.js';

const pki = makeTestPki();
const proxyOrSkip = await startTestProxy({
  serverTls: createSecureContext({ cert: pki.cert, key: pki.key }),
  allowPlaintext: false,
  statementTimeoutMs: 500,
  // A profile for answers and requests: rows, COPY rows and the recorded parameters.
  ...postgresMasking({ name: 'tls', masking: { columns: {}, profiles: ['pii'] } }, new MaskPlanner([{ name: 'pii', entities: ['EMAIL'], operator: 'redact', keepLast: 4, applyTo: 'both' }])),
});
const skip = 'skip' in proxyOrSkip ? proxyOrSkip.skip : undefined;

/** Raw bytes to the listener; resolves with everything it answers until it closes. */
function raw(port: number, bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve) => {
    const socket = netConnect({ port, host: '127.0.0.1' });
    const chunks: Buffer[] = [];
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(Buffer.concat(chunks)));
    socket.write(bytes);
    setTimeout(() => socket.destroy(), 3000);
  });
}

describe('PostgreSQL proxy: TLS, timeouts, hooks', { skip }, () => {
  const proxy = proxyOrSkip as TestProxy;
  const tls = { ca: pki.ca, servername: 'localhost' };

  before(async () => {
    const direct = new pg.Client({ connectionString: proxy.directUrl });
    await direct.connect();
    await direct.query("create table notes (id int, body text); insert into notes values (1, 'mail ann@example.com today'), (2, 'nothing')");
    await direct.end();
  });
  after(() => proxy.close());

  test('TLS: SSLRequest is answered with the gateway certificate, verified by the client', async () => {
    const c = new pg.Client(proxy.clientConfig({ ssl: tls }));
    await c.connect();
    assert.deepEqual((await c.query('select ssl from pg_stat_ssl where pid = pg_backend_pid()')).rows.length, 1);
    assert.deepEqual((await c.query('select 1 as one')).rows, [{ one: 1 }]);
    await c.end();
  });

  test('security: plaintext is refused with 28000 when allowPlaintext is false', async () => {
    const c = new pg.Client(proxy.clientConfig({ ssl: false }));
    c.on('error', () => undefined);
    await assert.rejects(c.connect(), { code: '28000', message: 'This listener requires TLS: connect with sslmode=require or stricter.' });
  });

  test('a listener that requires TLS but has no certificate says so, instead of asking for sslmode=require', async () => {
    const bare = await startTestProxy({ serverTls: undefined, allowPlaintext: false });
    assert.ok(!('skip' in bare));
    try {
      const c = new pg.Client(bare.clientConfig({ ssl: false }));
      c.on('error', () => undefined);
      await assert.rejects(c.connect(), {
        code: '28000',
        message: 'This listener requires TLS but has no certificate (serverTls or gateway.tls), so it accepts no session: the gateway operator must configure one, or allowPlaintext on a trusted path.',
      });
    } finally {
      await bare.close();
    }
  });

  test('security: bytes after SSLRequest before the handshake end the session (CVE-2021-23214)', async () => {
    const injected = Buffer.concat([int32(8), int32(sslRequestCode), Buffer.from('Q\0\0\0\x0dselect 1\0')]);
    const answer = await raw(proxy.port, injected);
    assert.equal(answer.subarray(0, 1).toString(), 'E');
    assert.match(answer.toString('latin1'), /08P01.*received unencrypted data after SSL request/);
  });

  test('GSSENCRequest is answered N', async () => {
    const answer = await new Promise<Buffer>((resolve) => {
      const socket = netConnect({ port: proxy.port, host: '127.0.0.1' });
      socket.once('data', (d) => {
        socket.destroy();
        resolve(d);
      });
      socket.write(Buffer.concat([int32(8), int32(80877104)]));
    });
    assert.equal(answer.toString(), 'N');
  });

  test('statement timeout cancels the statement upstream with 57014', async () => {
    const c = new pg.Client(proxy.clientConfig({ ssl: tls }));
    await c.connect();
    const started = Date.now();
    await assert.rejects(c.query('select pg_sleep(20)'), {
      code: '57014',
      message: 'The statement ran longer than 500 ms, the limit on connection "db" (statementTimeout), and was cancelled.',
    });
    assert.ok(Date.now() - started < 10_000);
    assert.deepEqual((await c.query('select 5 as five')).rows, [{ five: 5 }]);
    await c.end();
  });

  test('statement timeout on a later statement of a multi-statement Query is reported as statement_timeout', async () => {
    // psql -c 'select 1; select pg_sleep(20)' sends both in one Query: the one the
    // cancel stops is the second, and the client must hear the gateway's limit, not the
    // database's "canceling statement due to user request".
    const c = new pg.Client(proxy.clientConfig({ ssl: tls }));
    await c.connect();
    await assert.rejects(c.query('select 1; select pg_sleep(20)'), {
      code: '57014',
      message: 'The statement ran longer than 500 ms, the limit on connection "db" (statementTimeout), and was cancelled.',
    });
    assert.deepEqual((await c.query('select 5 as five')).rows, [{ five: 5 }]);
    await c.end();
  });

  test('statement timeout cancels an extended-protocol statement (Parse … Execute Sync in one batch)', async () => {
    // The database answers ParseComplete, BindComplete and RowDescription only at Sync,
    // after the Execute: the clock must not wait for them.
    const c = new pg.Client(proxy.clientConfig({ ssl: tls }));
    await c.connect();
    const started = Date.now();
    await assert.rejects(c.query('select pg_sleep($1)', [20]), {
      code: '57014',
      message: 'The statement ran longer than 500 ms, the limit on connection "db" (statementTimeout), and was cancelled.',
    });
    assert.ok(Date.now() - started < 10_000);
    await assert.rejects(c.query({ name: 'nap', text: 'select pg_sleep($1)', values: [20] }), { code: '57014' });
    assert.deepEqual((await c.query({ name: 'nap', text: 'select pg_sleep($1)', values: [0] })).rows.length, 1);
    assert.deepEqual((await c.query('select $1::int as five', [5])).rows, [{ five: 5 }]);
    await c.end();
  });

  test('statement timeout while COPY FROM STDIN waits for the client: 57014, the COPY is not applied, and the session goes on', async () => {
    // psql reading \copy data from a pipe that stalls longer than the limit. The backend
    // waits on the client and would not act on a CancelRequest; the gateway's message
    // after the cancel then landed inside the COPY and the database ended the session
    // ("unexpected message type 0x42 during COPY from stdin", "protocol synchronization was lost").
    const child = spawn('psql', ['-X', '-At', `host=127.0.0.1 port=${proxy.port} user=agent dbname=${proxy.database} sslmode=require`], { env: { ...process.env, PGPASSWORD: proxy.token } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    const closed = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
    child.stdin.write('\\copy notes from stdin\n10\tstalled\n');
    // Well past the 500 ms limit, so a loaded machine's late timer still fires first.
    await new Promise((r) => setTimeout(r, 2500));
    child.stdin.end("11\tlate\n\\.\nselect 'still here', count(*) from notes where id >= 10;\n");
    await closed;
    assert.match(stderr, /ERROR: {2}The statement ran longer than 500 ms, the limit on connection "db" \(statementTimeout\), and was cancelled\./);
    assert.doesNotMatch(stderr, /synchronization|connection to server was lost|unexpected message/);
    assert.equal(stdout, 'still here|0\n');
    // A COPY whose data keeps coming within the limit is unaffected.
    const c = new pg.Client(proxy.clientConfig({ ssl: tls }));
    await c.connect();
    assert.deepEqual((await c.query('select count(*)::int as n from notes where id >= 10')).rows, [{ n: 0 }]);
    await c.end();
  });

  test('a masking profile masks entities in every text value, and in recorded parameters', async () => {
    const c = new pg.Client(proxy.clientConfig({ ssl: tls }));
    await c.connect();
    const { rows } = await c.query('select id, body from notes where body like $1 order by id', ['%bob@example.org%']);
    assert.deepEqual(rows, []);
    assert.deepEqual((await c.query('select id, body from notes order by id')).rows, [{ id: 1, body: 'mail [EMAIL] today' }, { id: 2, body: 'nothing' }]);
    await c.end();
    const recorded = await proxy.store.db.selectFrom('exchanges').select('request_body').where('request_body', 'like', '%like%').executeTakeFirstOrThrow();
    assert.deepEqual(JSON.parse(recorded.request_body!).params, ['[EMAIL]%']);
  });

  test('COPY in and out through psql over TLS; COPY rows go through the masking profile', async () => {
    const run = (args: string[], input = '') =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        const child = spawn('psql', ['-X', '-At', `host=127.0.0.1 port=${proxy.port} user=agent dbname=${proxy.database} sslmode=require`, ...args], { env: { ...process.env, PGPASSWORD: proxy.token } });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d));
        child.stderr.on('data', (d: Buffer) => (stderr += d));
        child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
        child.stdin.end(input);
      });
    const copyIn = await run(['-c', '\\copy notes from stdin'], '3\tthird cy@example.com\n4\tfourth\n\\.\n');
    assert.equal(copyIn.code, 0, copyIn.stderr);
    const copyOut = await run(['-c', '\\copy (select id, body from notes where id >= 3 order by id) to stdout']);
    assert.equal(copyOut.code, 0, copyOut.stderr);
    assert.equal(copyOut.stdout, '3\tthird [EMAIL]\n4\tfourth\n');
  });
});
