// COPY … TO STDOUT through the extended protocol (Parse, Bind, Describe, Execute, Sync:
// libpq's PQexecParams, drivers that prepare every statement) on a connection with column
// rules: was refused ("masked only when sent as a simple Query"). It is now described
// inside its batch, just before it runs (with a Flush, not a Sync, which would end the
// client's batch), and masked as a simple-protocol COPY is: the same bytes, loading back.
// When the description fails on the database inside the batch, the batch fails with the
// refusal, as a COPY failing there would, and the session goes on. Also: a label longer
// than a varchar(n) column made the output of either protocol fail to load back.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type pg from 'pg';
import { bindMessage, cstring, int16, int32, message, parseNoticeFields, syncMessage, type Frame } from '../../../src/protocols/postgres/codec.js';
import { copy, copyExtended } from '../../helpers/pg-copy.js';
import { rawLogin, type RawClient } from '../../helpers/pg-raw.js';
import { startTestProxy, withProxyClients, type TestProxy } from '../../helpers/postgres-proxy.js';

const columns = new Map([['email', 'redact'], ['dob', 'null'], ['phone', 'partial']] as const);
const statementTimeoutMs = 500;
const proxyOrSkip = await startTestProxy({ masking: { columns }, statementTimeoutMs });
const skip = 'skip' in proxyOrSkip ? proxyOrSkip.skip : undefined;

const setup = `create table patients (id int primary key, full_name text, email text, dob date, phone text, notes text);
  insert into patients values
    (1, 'Ann Lee', 'ann@example.com', '1980-02-03', '+1 555 010 2233', 'plain'),
    (2, 'Bob "the" O''Brien', 'b\tob@ex,ample.com', null, '555-01;99', e'tab\\there, newline\\nthere'),
    (3, 'NULL', null, '2001-12-31', null, null);
  create table patients_back (like patients);
  create table log (id int);
  create table short (id int, email varchar(5), phone char(6));
  insert into short values (1, 'a@b.c', '123456'), (2, 'x@y', null);
  create table short_back (like short)`;

const parse = (sql: string) => message('P', Buffer.concat([cstring(''), cstring(sql), int16(0)]));
const execute = message('E', Buffer.concat([cstring(''), int32(0)]));
const run = (sql: string) => [parse(sql), bindMessage('', ''), execute];
const errors = (frames: Frame[]) => frames.filter((f) => f.type === 'E').map((f) => `${parseNoticeFields(f.body).get('C')} ${parseNoticeFields(f.body).get('M')}`);
const copied = (frames: Frame[]) => frames.filter((f) => f.type === 'd').map((f) => f.body.toString('utf8')).join('');
const refusedBecause = (why: string) => `0A000 COPY … TO STDOUT on a connection with column masking rules is masked column by column, but ${why}; it was not run.`;

describe('PostgreSQL proxy: COPY … TO STDOUT through the extended protocol, masked column by column', { skip }, () => {
  const proxy = proxyOrSkip as TestProxy;
  let direct: pg.Client;
  let c: pg.Client;
  withProxyClients(proxy, setup, (clients) => ({ direct, client: c } = clients));
  const logged = async () => (await direct.query<{ id: number }>('select id from log order by id')).rows.map((r) => r.id);

  async function withRaw(body: (raw: RawClient) => Promise<void>): Promise<void> {
    const raw = await rawLogin(proxy.port, 'agent', proxy.database, proxy.token);
    try {
      await body(raw);
    } finally {
      raw.close();
    }
  }

  test('text and CSV: the same bytes as the simple protocol sends, and they load back', async () => {
    for (const sql of ['copy patients to stdout', "copy patients to stdout with (format csv, header, delimiter '|', force_quote (email))", 'copy (select id, email as contact, lower(email) as l, dob from patients order by id) to stdout with csv']) {
      const extended = await copyExtended(c, sql);
      assert.equal(extended.out, (await copy(c, sql)).out, sql);
      assert.equal(extended.tag, 'COPY 3');
    }
    const { out } = await copyExtended(c, 'copy patients to stdout');
    assert.equal(out.split('\n')[0], '1\tAnn Lee\t[EMAIL]\t\\N\t***********2233\tplain');
    assert.doesNotMatch(out, /ann@example\.com|1980-02-03/);
    await direct.query('truncate patients_back');
    await copy(direct, 'copy patients_back from stdin', out);
    assert.deepEqual((await direct.query('select email, dob from patients_back order by id')).rows, [{ email: '[EMAIL]', dob: null }, { email: '[EMAIL]', dob: null }, { email: null, dob: null }]);
  });

  test('a label longer than a varchar(n) or char(n) column is cut to n characters: the output loads back (both protocols)', async () => {
    for (const through of [copy, copyExtended]) {
      const { out } = await through(c, 'copy short to stdout with csv');
      assert.equal(out, '1,[EMAI,*****6\n2,[EMAI,\n');
      await direct.query('truncate short_back');
      await copy(direct, 'copy short_back from stdin with csv', out);
      assert.deepEqual((await direct.query('select email, phone from short_back order by id')).rows, [{ email: '[EMAI', phone: '*****6' }, { email: '[EMAI', phone: null }]);
    }
  });

  test('binary format is refused at Parse, saying why; the session goes on', async () => {
    await assert.rejects(copyExtended(c, 'copy patients to stdout with (format binary)'), (error: Error & { code?: string }) => {
      assert.equal(`${error.code} ${error.message}`, refusedBecause('its rows cannot be masked: it is in binary format, whose values the gateway cannot mask (use the text or CSV format)'));
      return true;
    });
    assert.deepEqual((await c.query('select 1 as n')).rows, [{ n: 1 }]);
  });

  test('described inside its batch: what the batch did before it is what the COPY sends', async () => {
    await withRaw(async (raw) => {
      raw.write(...run('alter table patients add column email2 text'), ...run("update patients set email2 = 'x' where id = 1"), ...run('copy patients (id, email, email2) to stdout'), ...run('alter table patients drop column email2'), syncMessage());
      const frames = await raw.untilReady(1);
      assert.deepEqual(errors(frames), []);
      assert.deepEqual(copied(frames).split('\n').sort(), ['', '1\t[EMAIL]\tx', '2\t[EMAIL]\t\\N', '3\t\\N\t\\N']);
    });
  });

  test('a description the database fails inside the batch fails the batch with the refusal; the session goes on', async () => {
    await withRaw(async (raw) => {
      raw.write(...run('insert into log values (1)'), ...run('copy nope to stdout'), ...run('insert into log values (2)'), syncMessage());
      const frames = await raw.untilReady(1);
      assert.deepEqual(errors(frames), [refusedBecause('the gateway could not learn its columns to mask them (the database answered: 42P01 relation (what it quotes is withheld by Gatehouse: this connection masks columns))')]);
      assert.deepEqual(await logged(), [], 'the batch was rolled back');
      raw.write(...run('insert into log values (3)'), ...run('copy (select id from log) to stdout'), syncMessage());
      const next = await raw.untilReady(1);
      assert.deepEqual(errors(next), []);
      assert.equal(copied(next), '3\n');
    });
    await direct.query('truncate log');
  });

  test('behind an earlier error in its batch the COPY is skipped, as the database skips it', async () => {
    await withRaw(async (raw) => {
      raw.write(...run('select 1 / 0'), ...run('copy patients to stdout'), syncMessage());
      const frames = await raw.untilReady(1);
      assert.deepEqual(errors(frames), ['22012 division by zero']);
      assert.equal(copied(frames), '');
      raw.write(...run('copy (select email from patients where id = 1) to stdout'), syncMessage());
      assert.equal(copied(await raw.untilReady(1)), '[EMAIL]\n');
    });
  });

  test('describing waits for a lock under limits.statementTimeout: 57014, the batch rolled back', async () => {
    await direct.query('begin; lock table patients');
    try {
      await withRaw(async (raw) => {
        raw.write(...run('insert into log values (1)'), ...run('copy patients to stdout'), syncMessage());
        const frames = await raw.untilReady(1, 10_000);
        assert.deepEqual(errors(frames), [`57014 The statement ran longer than ${statementTimeoutMs} ms, the limit on connection "db" (statementTimeout), and was cancelled.`]);
        await direct.query('commit');
        assert.deepEqual(await logged(), []);
        raw.write(...run('copy (select email from patients where id = 1) to stdout'), syncMessage());
        const next = await raw.untilReady(1);
        assert.deepEqual(errors(next), []);
        assert.equal(copied(next), '[EMAIL]\n');
      });
    } finally {
      await direct.query('rollback').catch(() => undefined);
    }
  });
});
