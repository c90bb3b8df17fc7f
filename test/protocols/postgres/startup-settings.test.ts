// Regression: settings a client asked for at login other than a dozen known ones (`-c
// work_mem=64MB` in PGOPTIONS, asyncpg's `server_settings={'jit': 'off'}`, porsager's
// `connection: { … }`) were dropped silently: the session ran without them. Now ordinary
// session settings are passed on, and every other one is refused at login (FATAL 0A000)
// naming it: those that would change what the gateway sees (role, standard-conforming
// strings off, …) saying why, the rest saying to SET them after connecting.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import pg from 'pg';
import postgres from 'postgres';
import { startTestProxy, type TestProxy } from '../../helpers/postgres-proxy.js';

const proxyOrSkip = await startTestProxy();
const skip = 'skip' in proxyOrSkip ? proxyOrSkip.skip : undefined;

describe('PostgreSQL proxy: settings asked for at login are passed on or refused, never dropped', { skip }, () => {
  const proxy = proxyOrSkip as TestProxy;
  after(() => proxy.close());

  /** A porsager client whose `connection` settings are sent as startup parameters (as asyncpg's server_settings are). */
  const withParameters = async <T>(connection: Record<string, string>, run: (sql: postgres.Sql) => Promise<T>): Promise<T> => {
    const sql = postgres({ host: '127.0.0.1', port: proxy.port, user: 'agent', pass: proxy.token, database: proxy.database, ssl: false, max: 1, connection, onnotice: () => undefined });
    try {
      return await run(sql);
    } finally {
      await sql.end({ timeout: 5 });
    }
  };
  const settings = (sql: postgres.Sql, names: string[]) => sql.unsafe(`select ${names.map((n) => `current_setting('${n}') as "${n}"`).join(', ')}`).then((rows) => ({ ...rows[0] }));
  const refusedParameter = async (connection: Record<string, string>, message: RegExp) => {
    const error = await withParameters(connection, (sql) => sql`select 1`).then(() => undefined, (e: postgres.PostgresError) => e);
    assert.ok(error, `${JSON.stringify(connection)} was accepted`);
    assert.equal(error.code, '0A000');
    assert.equal(error.severity, 'FATAL');
    assert.match(error.message, message);
  };
  const refusedOptions = async (options: string, message: RegExp) => {
    const client = new pg.Client(proxy.clientConfig({ options }));
    client.on('error', () => undefined);
    await assert.rejects(client.connect(), (e: pg.DatabaseError) => {
      assert.equal(e.code, '0A000');
      assert.equal(e.severity, 'FATAL');
      assert.match(e.message, message);
      return true;
    });
  };

  test('ordinary session settings reach the database, as startup parameters and in options', async () => {
    const asked = { work_mem: '64MB', jit: 'off', plan_cache_mode: 'force_generic_plan', application_name: 'billing', DateStyle: 'ISO, DMY', TimeZone: 'Europe/Paris', extra_float_digits: '1', statement_timeout: '7s', client_min_messages: 'warning' };
    assert.deepEqual(
      await withParameters(asked, (sql) => settings(sql, Object.keys(asked))),
      { ...asked, work_mem: '64MB', statement_timeout: '7s' },
    );
    const client = new pg.Client(proxy.clientConfig({ options: '-c work_mem=77MB --enable-seqscan=off -c random_page_cost=1.5 -c standard_conforming_strings=on' }));
    await client.connect();
    try {
      assert.deepEqual((await client.query("select current_setting('work_mem') as wm, current_setting('enable_seqscan') as es, current_setting('random_page_cost') as rpc")).rows, [{ wm: '77MB', es: 'off', rpc: '1.5' }]);
    } finally {
      await client.end();
    }
  });

  test('settings that would change who runs the statements or how they are read are refused, saying why', async () => {
    await refusedParameter({ role: 'pg_read_all_data' }, /^The startup parameter role \("pg_read_all_data"\) is refused by the gateway: it would run the session as another database role than the gateway logs in as, which policy never sees\. Connect without it and run SET ROLE after connecting, which policy decides\.$/);
    await refusedOptions('-c session_authorization=postgres', /^The startup parameter session_authorization \("postgres"\) is refused by the gateway: it would run the session as another database role/);
    await refusedParameter({ standard_conforming_strings: 'off' }, /^The startup parameter standard_conforming_strings \("off"\) is refused by the gateway: a backslash would then escape inside string literals, so the database would read other statements than the gateway inspects\./);
    await refusedOptions('-c backslash_quote=on', /^The startup parameter backslash_quote \("on"\) is refused by the gateway: it changes how the database reads string literals/);
    await refusedOptions('-c session_replication_role=replica', /triggers and rules off/);
    await refusedParameter({ bytea_output: 'escape' }, /^The startup parameter bytea_output \("escape"\) is refused by the gateway: it changes how values are written in results, which masking reads/);
    await refusedParameter({ client_encoding: 'LATIN1' }, /^Client encoding "LATIN1" is not supported through the gateway: use UTF8\.$/);
    await refusedOptions('-c search_path=secret', /^The startup parameter search_path \("secret"\) is not passed on through the gateway/);
  });

  test('any other setting, a custom one included, is refused at login naming it, with what to do instead', async () => {
    await refusedParameter({ 'app.tenant_id': '42' }, /^The startup parameter app\.tenant_id \("42"\) is not one the gateway passes on at login \(docs\/postgres\.md, "Startup parameters"\): connect without it and run SET app\.tenant_id after connecting, where the gateway inspects it\.$/);
    await refusedOptions('-c work_mem=8MB -c log_statement=none', /^The startup parameter log_statement \("none"\) is not one the gateway passes on at login/);
    await refusedOptions('-e', /^The startup options word "-e" is not a setting \(-c name=value or --name=value\) and is not passed on through the gateway: connect without it\.$/);
  });

  test('a setting refused at login may be SET after connecting, where the statement is inspected', async () => {
    await withParameters({}, async (sql) => {
      await sql`set app.tenant_id = '42'`;
      assert.deepEqual(await settings(sql, ['app.tenant_id']), { 'app.tenant_id': '42' });
    });
    const connects = proxy.observed.filter((o) => o.exchange.operation === 'sql.connect' && o.outcome.errorCode === 'sql_not_supported');
    assert.equal(connects.length, 11, 'each refused login is recorded');
    assert.ok(proxy.observed.some((o) => o.exchange.operation === 'sql.set' && o.decision?.effect === 'allow'), 'the SET was not decided by policy');
  });
});
