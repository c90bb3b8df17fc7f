// Regression: COPY FROM STDIN sent with the extended protocol as libpq's PQexecParams
// sends it — Parse, Bind, Execute and a Sync at once, then the data, CopyDone and another
// Sync. The database ignores a Sync in COPY mode, but the gateway waited for its
// ReadyForQuery, so the next statement's answer was taken for it and the session failed.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type pg from 'pg';
import { cstring, int16, int32, message, type Frame } from '../../../src/protocols/postgres/codec.js';
import { rawLogin } from '../../helpers/pg-raw.js';
import { startTestProxy, withProxyClients, type TestProxy } from '../../helpers/postgres-proxy.js';

const proxyOrSkip = await startTestProxy({});
const skip = 'skip' in proxyOrSkip ? proxyOrSkip.skip : undefined;

const parse = (sql: string) => message('P', Buffer.concat([cstring(''), cstring(sql), int16(0)]));
const bind = () => message('B', Buffer.concat([cstring(''), cstring(''), int16(0), int16(0), int16(0)]));
const execute = () => message('E', Buffer.concat([cstring(''), int32(0)]));
const sync = () => message('S');
const query = (sql: string) => message('Q', cstring(sql));
const types = (frames: Frame[]) => frames.map((f) => f.type).join('');
const text = (frames: Frame[]) => frames.map((f) => f.body.toString('utf8')).join(' ');

describe('PostgreSQL proxy: COPY FROM STDIN through the extended protocol', { skip }, () => {
  const proxy = proxyOrSkip as TestProxy;
  let direct: pg.Client;
  withProxyClients(proxy, 'create table items (id int)', (clients) => {
    direct = clients.direct;
  });
  const items = async () => (await direct.query<{ id: number }>('select id from items order by id')).rows.map((r) => r.id);

  for (const syncFirst of [true, false]) {
    test(syncFirst ? 'a Sync before the data (libpq): the COPY lands and the session goes on' : 'a Sync only after CopyDone: the COPY lands and the session goes on', async () => {
      await direct.query('truncate items');
      const raw = await rawLogin(proxy.port, 'agent', proxy.database, proxy.token);
      try {
        raw.write(parse('copy items from stdin'), bind(), execute(), ...(syncFirst ? [sync()] : []));
        const copyIn = await raw.until('G');
        assert.equal(types(copyIn), '12G', text(copyIn));
        raw.write(message('d', Buffer.from('7\n8\n')), message('c'), sync());
        const done = await raw.untilReady(1);
        assert.equal(types(done), 'CZ', text(done));
        raw.write(query('select 41 + 1 as n'));
        const next = await raw.untilReady(1);
        assert.equal(types(next), 'TDCZ', text(next));
        assert.match(text(next), /42/);
      } finally {
        raw.close();
      }
      assert.deepEqual(await items(), [7, 8]);
    });
  }
});
