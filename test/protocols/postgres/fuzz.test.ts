// Fuzz: thousands of random and mutated frontend messages, over many sessions, while a
// well-behaved session keeps querying. The proxy must never crash (an uncaught error
// would end this process), never hang (every fuzz session ends or goes quiet), and the
// well-behaved session must get every answer right.

import assert from 'node:assert/strict';
import { connect as netConnect, type Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import pg from 'pg';
import { cstring, int16, int32, message, parseNoticeFields, startupMessage } from '../../../src/protocols/postgres/codec.js';
import { maxLoggingIn } from '../../../src/protocols/postgres/listener.js';
import { rawLogin } from '../../helpers/pg-raw.js';
import { startTestProxy, type TestProxy } from '../../helpers/postgres-proxy.js';

const proxyOrSkip = await startTestProxy({ maxMessageBytes: 64 * 1024, maxRows: 100 });
const skip = 'skip' in proxyOrSkip ? proxyOrSkip.skip : undefined;

// A seeded generator, so a failure can be replayed (the seed is in the assertion message).
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

function validMessages(): Buffer[] {
  return [
    message('Q', cstring('select 1')),
    message('Q', cstring('select 1; select 2')),
    message('P', Buffer.concat([cstring('s1'), cstring('select $1::int'), int16(1), int32(23)])),
    message('B', Buffer.concat([cstring(''), cstring('s1'), int16(0), int16(1), int32(1), Buffer.from('7'), int16(0)])),
    message('D', Buffer.concat([Buffer.from('P'), cstring('')])),
    message('E', Buffer.concat([cstring(''), int32(0)])),
    message('C', Buffer.concat([Buffer.from('S'), cstring('s1')])),
    message('S'),
    message('H'),
    message('d', Buffer.from('1\n')),
    message('c'),
    message('f', cstring('no')),
    message('Q', cstring('copy (select 1) to stdout')),
    message('Q', cstring('selec broken')),
  ];
}

function mutate(next: () => number, base: Buffer): Buffer {
  const b = Buffer.from(base);
  switch (Math.floor(next() * 6)) {
    case 0: // flip bytes
      for (let i = 0; i < 1 + next() * 4; i++) b[Math.floor(next() * b.length)] = Math.floor(next() * 256);
      return b;
    case 1: // truncate
      return b.subarray(0, Math.floor(next() * b.length));
    case 2: // wrong length field
      b.writeInt32BE(Math.floor(next() * 2 ** 31) * (next() < 0.5 ? 1 : -1), 1);
      return b;
    case 3: // random type byte
      b[0] = Math.floor(next() * 256);
      return b;
    case 4: // pure noise
      return Buffer.from(Array.from({ length: Math.floor(next() * 64) }, () => Math.floor(next() * 256)));
    default: // valid
      return b;
  }
}

/** Logs in over raw bytes; resolves with the socket after the first ReadyForQuery. */
function login(proxy: TestProxy): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ port: proxy.port, host: '127.0.0.1' });
    let seen = Buffer.alloc(0);
    socket.on('error', reject);
    socket.on('data', function onData(d: Buffer) {
      seen = Buffer.concat([seen, d]);
      if (seen[0] === 0x52 && seen.length >= 9 && seen.readInt32BE(5) === 3 && !(socket as Socket & { sentPassword?: boolean }).sentPassword) {
        (socket as Socket & { sentPassword?: boolean }).sentPassword = true;
        socket.write(message('p', cstring(proxy.token)));
        seen = Buffer.alloc(0);
        return;
      }
      // ReadyForQuery is the last message of the login answer.
      if (seen.length >= 6 && seen[seen.length - 6] === 0x5a) {
        socket.off('data', onData);
        socket.off('error', reject);
        resolve(socket);
      }
    });
    socket.write(startupMessage({ user: 'agent', database: proxy.database }));
  });
}

/** Sends the messages; resolves when the socket closes or stays quiet for `quietMs`. */
function blast(socket: Socket, messages: Buffer[], quietMs: number): Promise<void> {
  return new Promise((resolve) => {
    let timer = setTimeout(finish, quietMs);
    function finish() {
      clearTimeout(timer);
      socket.destroy();
      resolve();
    }
    socket.on('data', () => {
      clearTimeout(timer);
      timer = setTimeout(finish, quietMs);
    });
    socket.on('error', () => undefined);
    socket.on('close', finish);
    for (const m of messages) socket.write(m);
  });
}

describe('fuzzing the PostgreSQL listener', { skip }, () => {
  const proxy = proxyOrSkip as TestProxy;
  after(() => proxy.close());

  test('thousands of random and mutated messages: no crash, no hang, a concurrent session keeps working', { timeout: 180_000 }, async () => {
    const good = new pg.Client(proxy.clientConfig());
    await good.connect();
    let stop = false;
    let goodQueries = 0;
    const goodLoop = (async () => {
      while (!stop) {
        const n = goodQueries++;
        const { rows } = await good.query('select $1::int * 2 as doubled', [n]);
        assert.equal(rows[0].doubled, n * 2);
      }
    })();

    const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 100_000);
    const next = rng(seed);
    const valid = validMessages();
    let sent = 0;
    const sessions = 120;
    for (let batch = 0; batch < sessions; batch += 4) {
      await Promise.all(
        Array.from({ length: 4 }, async (_, k) => {
          const messages: Buffer[] = [];
          for (let i = 0; i < 25; i++) messages.push(mutate(next, valid[Math.floor(next() * valid.length)]!));
          sent += messages.length;
          // Every fourth session is fuzzed before login, in the startup phase.
          if ((batch + k) % 4 === 0) return blast(netConnect({ port: proxy.port, host: '127.0.0.1' }), messages, 300);
          return blast(await login(proxy), messages, 300);
        }),
      );
    }
    stop = true;
    await goodLoop;
    assert.ok(sent >= 3000, `sent ${sent} messages (seed ${seed})`);
    assert.ok(goodQueries > 10, `the good session answered ${goodQueries} queries (seed ${seed})`);
    await good.end();

    // Still serving, and every fuzz session has ended.
    const fresh = new pg.Client(proxy.clientConfig());
    await fresh.connect();
    assert.deepEqual((await fresh.query('select 42 as answer')).rows, [{ answer: 42 }]);
    await fresh.end();
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(proxy.listener.sessions, 0, `sessions left open (seed ${seed})`);
  });

  test('security: a Query of more statements than the gateway takes is refused whole (one exchange per statement made 100 000 records of one 900 KB message)', async () => {
    const client = new pg.Client(proxy.clientConfig());
    await client.connect();
    try {
      await client.query('create table if not exists many_statements (id int)');
      const observedBefore = proxy.observed.length;
      await assert.rejects(client.query('insert into many_statements values (1);'.repeat(1001)), (error: Error & { code?: string }) => {
        assert.equal(error.code, '54000');
        assert.match(error.message, /at most 1000 statements/);
        return true;
      });
      assert.equal(proxy.observed.length - observedBefore, 1, 'one refusal, not one exchange per statement');
      assert.equal(proxy.observed.at(-1)!.outcome.errorCode, 'too_many_statements');
      assert.deepEqual((await client.query('select count(*)::int as n from many_statements')).rows, [{ n: 0 }], 'none of it ran');
      const results = (await client.query('select 1;'.repeat(1000))) as unknown as unknown[];
      assert.equal(results.length, 1000, 'the limit itself is allowed');
    } finally {
      await client.end();
    }
  });

  test("security: a database whose default client_encoding is not UTF8 cannot run a session in it (inspection reads UTF-8: SJIS bytes hid statements)", async () => {
    const direct = new pg.Client({ connectionString: proxy.directUrl });
    await direct.connect();
    try {
      // What ALTER DATABASE (or ALTER ROLE) … SET client_encoding, run by an owner or through the gateway, leaves behind.
      await direct.query(`alter database "${proxy.database}" set client_encoding = 'SJIS'`);
      // A client that does not name an encoding in its startup packet (libpq with PGCLIENTENCODING unset, raw drivers).
      const client = await rawLogin(proxy.port, 'agent', proxy.database, proxy.token);
      try {
        client.write(message('Q', cstring('show client_encoding')));
        const frames = await client.untilReady(1);
        const row = frames.find((f) => f.type === 'D');
        assert.ok(row, `an answer: ${frames.map((f) => f.type).join('')}`);
        assert.match(row.body.toString('latin1'), /UTF8/);
        // RESET and SET … TO DEFAULT go back to the login's encoding, not the database's.
        client.write(message('Q', cstring('reset client_encoding; show client_encoding')), message('Q', cstring('set client_encoding to default; show client_encoding')));
        const reset = await client.untilReady(2);
        assert.deepEqual(
          reset.filter((f) => f.type === 'C' || f.type === 'D' || f.type === 'E').map((f) => (f.type === 'E' ? Object.fromEntries(parseNoticeFields(f.body)).M : f.body.toString('latin1'))),
          ['RESET\0', '\0\x01\0\0\0\x04UTF8', 'SHOW\0', 'SET\0', '\0\x01\0\0\0\x04UTF8', 'SHOW\0'],
        );
      } finally {
        client.close();
      }
    } finally {
      await direct.query(`alter database "${proxy.database}" reset client_encoding`);
      await direct.end();
    }
  });

  test('security: connections that never log in are capped per listener; past the cap a new one gets FATAL 53300 at once, and logins work again once they go', async () => {
    const idle: Socket[] = [];
    try {
      for (let i = 0; i < maxLoggingIn; i++) {
        const socket = netConnect(proxy.port, '127.0.0.1');
        socket.on('error', () => undefined);
        idle.push(socket);
      }
      await Promise.all(idle.map((socket) => new Promise((resolve) => socket.once('connect', resolve))));
      const refused = new pg.Client(proxy.clientConfig());
      const error = await refused.connect().then(() => undefined, (e: unknown) => e as { code?: string });
      assert.equal(error?.code, '53300');
      await refused.end().catch(() => undefined);
    } finally {
      for (const socket of idle) socket.destroy();
    }
    const until = Date.now() + 5_000;
    for (;;) {
      const client = new pg.Client(proxy.clientConfig());
      try {
        await client.connect();
        assert.deepEqual((await client.query('select 1 as one')).rows, [{ one: 1 }]);
        await client.end();
        break;
      } catch (error) {
        await client.end().catch(() => undefined);
        if (Date.now() > until) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  });
});
