// Security regression: DataRow values were masked, but what the database says besides
// rows carried a masked column's value out whole: an error quoting the input it could not
// convert (`select email::int`), a constraint violation's "Failing row contains (…)", a
// RAISE NOTICE, a JSON error's context, and a pg_notify payload. Through the real proxy,
// with node-postgres; the recording keeps the masked message too.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pg from 'pg';
import { MaskPlanner, type MaskProfile } from '../../../src/mask/index.js';
import { cstring, message } from '../../../src/protocols/postgres/codec.js';
import { entityMasking } from '../../../src/protocols/postgres/entity-masking.js';
import { rawLogin } from '../../helpers/pg-raw.js';
import { startTestProxy, withProxyClients, type TestProxy } from '../../helpers/postgres-proxy.js';

const secret = /ann@example\.com|536-22-8841/;

/** The error a statement gets through the proxy, every field node-postgres reads. */
async function errorOf(c: pg.Client, sql: string): Promise<pg.DatabaseError> {
  try {
    await c.query(sql);
  } catch (error) {
    return error as pg.DatabaseError;
  }
  assert.fail(`${sql} did not fail`);
}

function assertClean(error: pg.DatabaseError, sql: string): void {
  const fields = [error.message, error.detail, error.hint, error.where, error.internalQuery].join(' | ');
  assert.ok(!secret.test(fields), `${sql} leaked in its error: ${fields}`);
}

const columnRules = await startTestProxy({ masking: { columns: new Map([['email', 'redact'], ['ssn', 'partial']]) } });

describe('PostgreSQL proxy: errors, notices and notifications do not carry masked column values', { skip: 'skip' in columnRules ? columnRules.skip : undefined }, () => {
  const proxy = columnRules as TestProxy;
  let direct: pg.Client;
  let c: pg.Client;

  withProxyClients(proxy, `create table users (id int primary key, name text not null, email text unique, ssn text, doc jsonb);
      insert into users values (1, 'Ann', 'ann@example.com', '536-22-8841', '{"a":1}');
      create table archive (id int, contact text);
      create function tell() returns void language plpgsql as $$ begin raise notice 'found %', (select email from users limit 1); end $$;
      create function fail() returns void language plpgsql as $$ begin raise exception 'x' using detail = (select ssn from users limit 1); end $$`, (clients) => ({ direct, client: c } = clients));

  test('a data exception keeps its message up to the value, and loses detail and context', async () => {
    const cast = await errorOf(c, 'select email::int from users');
    assert.equal(cast.code, '22P02');
    assert.equal(cast.message, 'invalid input syntax for type integer (what it quotes is withheld by Gatehouse: this connection masks columns)');
    for (const sql of ["select to_date(ssn, 'YYYY-MM') from users", 'select email::json from users', 'select email::date from users', "select (email || 'x')::numeric from users"]) {
      const error = await errorOf(c, sql);
      assert.match(error.code ?? '', /^22/, sql);
      assertClean(error, sql);
    }
    // Not only data exceptions quote values: a name looked up, a file, a query text.
    for (const sql of ['select email::regclass from users', 'select email::regtype from users', "select to_tsquery(email || ' &') from users", 'select pg_read_file(ssn) from users']) {
      assertClean(await errorOf(c, sql), sql);
    }
    // A message that quotes nothing goes as it came.
    assert.equal((await errorOf(c, 'select 1/0')).message, 'division by zero');
    // Was a leak: numbers are not quoted, and a number computed from a masked column came
    // out whole (ascii(email) = 97, the first letter; length(ssn) = 11), one per statement.
    // A comment holding the number does not let it pass.
    const numbers: [string, string, string][] = [
      ['select make_date(2020, ascii(email), 1) from users -- 97', '22008', 'date field value out of range'],
      ['select make_time(ascii(email), 0, 0) from users', '22008', 'time field value out of range'],
      ["select get_bit('\\x00'::bytea, ascii(email)) from users", '2202E', 'index'],
      ['select chr(ascii(email) + 1114112) from users', '54000', 'requested character too large for encoding'],
    ];
    for (const [sql, code, kept] of numbers) {
      const error = await errorOf(c, sql);
      assert.equal(error.code, code, sql);
      assert.equal(error.message, `${kept} (the values it shows are withheld by Gatehouse: this connection masks columns)`, sql);
    }
    // What follows a colon is not quoted either (`operator does not exist: …`).
    const operator = await errorOf(c, "select split_part(email, '@', 1)::regoper from users");
    assert.equal(operator.message, 'operator does not exist (the values it shows are withheld by Gatehouse: this connection masks columns)');
  });

  test('a constraint violation keeps the names the statement wrote and loses the row and the key in its detail', async () => {
    const notNull = await errorOf(c, 'update users set name = null where id = 1');
    assert.equal(notNull.code, '23502');
    // Raised while running (no position): what it quotes could be data, so the names are in their own fields.
    assert.equal(notNull.message, 'null value in column (what it quotes is withheld by Gatehouse: this connection masks columns)');
    assert.equal(notNull.table, 'users');
    assert.equal(notNull.column, 'name');
    assert.equal(notNull.detail, undefined);
    const unique = await errorOf(c, "insert into users (id, name, email) values (2, 'x', (select email from users where id = 1))");
    assert.equal(unique.code, '23505');
    assert.equal(unique.constraint, 'users_email_key'); // its own field
    assert.equal(unique.message, 'duplicate key value violates unique constraint (what it quotes is withheld by Gatehouse: this connection masks columns)');
    assertClean(unique, 'unique');
    // The record keeps the masked message too.
    const recorded = JSON.stringify(proxy.observed.filter((o) => o.outcome.errorCode).map((o) => o.outcome.errorDetail));
    assert.ok(!secret.test(recorded), recorded);
  });

  test('what RAISE prints is withheld, as a notice and as an error', async () => {
    const notices: { message?: string }[] = [];
    c.on('notice', (n) => notices.push(n));
    await c.query('select tell()');
    assert.equal(notices.length, 1);
    assert.match(notices[0]!.message ?? '', /^message withheld by Gatehouse/);
    const raised = await errorOf(c, 'select fail()');
    assert.equal(raised.code, 'P0001');
    assertClean(raised, 'raise exception');
    // The session goes on.
    assert.equal((await c.query('select 1 as ok')).rows[0].ok, 1);
  });

  test('pg_notify, set_config and large objects with a masked column in their value are refused; other values pass', async () => {
    await direct.query('listen ch');
    const received: string[] = [];
    direct.on('notification', (n) => received.push(n.payload ?? ''));
    for (const sql of ["select pg_notify('ch', email) from users", "select pg_notify('ch', u::text) from users u", "select pg_notify('ch', (select ssn from users limit 1))", "select 1 from users where pg_notify('ch', users.email) is null"]) {
      await assert.rejects(c.query(sql), { code: '0A000', message: /as a notification payload \(pg_notify\)/ }, sql);
    }
    // Other built-ins that keep a value where it is read back unmasked (current_setting, SHOW, lo_get).
    await assert.rejects(c.query("select set_config('application_name', email, false) from users"), { code: '0A000', message: /as a session setting \(set_config\)/ });
    await assert.rejects(c.query("select lo_from_bytea(0, convert_to(ssn, 'UTF8')) from users"), { code: '0A000', message: /as a large object/ });
    // Were leaks: an advisory lock's keys (pg_locks, any session), a large object's OID
    // (pg_largeobject_metadata), a replication origin's name, a custom setting's name
    // (pg_settings), a lock or slot name given in named notation.
    const kept: [string, RegExp][] = [
      ['select pg_advisory_lock(ascii(email)) from users', /as an advisory lock key, which pg_locks shows \(pg_advisory_lock\)/],
      ['select pg_try_advisory_xact_lock(1, length(ssn)) from users', /\(pg_try_advisory_xact_lock\)/],
      ['select pg_advisory_lock_shared(ascii(email)) from users', /\(pg_advisory_lock_shared\)/],
      ['select lo_create(ascii(email)) from users', /as a large object's OID \(lo_create\)/],
      ["select lo_from_bytea(ascii(email), '') from users", /as a large object/],
      ['select pg_replication_origin_create(email) from users', /as a replication origin/],
      ["select pg_create_physical_replication_slot(slot_name => translate(email, '@.', '__')) from users", /as a replication slot/],
      ["select set_config('x.' || translate(email, '@.', '__'), '1', false) from users", /as a session setting \(set_config\)/],
      ["select lowrite(lo_open(1, 131072), convert_to(email, 'UTF8')) from users", /as a large object \(lowrite\)/],
      ['select setseed(ascii(email) / 1000.0) from users', /as the seed of random\(\) \(setseed\)/],
    ];
    for (const [sql, message] of kept) await assert.rejects(c.query(sql), { code: '0A000', message }, sql);
    assert.equal((await direct.query("select count(*) as n from pg_locks where locktype = 'advisory' and database = (select oid from pg_database where datname = current_database())")).rows[0].n, '0');
    assert.equal((await direct.query('select count(*) as n from pg_largeobject_metadata')).rows[0].n, '0');
    assert.deepEqual((await c.query('select pg_advisory_lock(id) as l from users')).rows, [{ l: '' }]); // other columns pass
    await c.query('select pg_advisory_unlock_all()');
    assert.notEqual((await c.query('show application_name')).rows[0].application_name, 'ann@example.com');
    await c.query("select set_config('application_name', 'report ' || id, false) from users");
    await c.query("select pg_notify('ch', 'user ' || id) from users");
    await direct.query('select 1'); // a round trip: the notification has arrived
    assert.deepEqual(received, ['user 1']);
  });

  test("the catalog's column statistics, samples of masked values, are refused", async () => {
    await direct.query("insert into users select g, 'n', g || '@example.org', '536-22-8841' from generate_series(10, 60) g");
    await direct.query('analyze users');
    assert.match(JSON.stringify((await direct.query("select most_common_vals from pg_stats where tablename = 'users' and attname = 'ssn'")).rows), /536-22-8841/);
    for (const sql of ["select most_common_vals from pg_stats where tablename = 'users'", 'select * from pg_catalog.pg_stats', 'select * from pg_stats_ext']) {
      await assert.rejects(c.query(sql), { code: '0A000', message: /whose column statistics .* hold values of masked columns/ }, sql);
    }
    await direct.query('delete from users where id >= 10');
  });

  test('code the gateway cannot trace is refused: a DO block or a function body could copy a masked column anywhere', async () => {
    const refused = { code: '0A000', message: /runs code the gateway cannot trace/ };
    await assert.rejects(c.query("do $$ begin insert into archive (contact) select email from users; end $$"), refused);
    await assert.rejects(c.query("create function copy_out() returns void language sql as 'insert into archive (contact) select email from users'"), refused);
    await assert.rejects(c.query('create procedure p() language sql begin atomic insert into archive (contact) select email from users; end'), refused);
    assert.equal((await direct.query('select count(*)::int as n from archive')).rows[0].n, 0);
    // Was a leak: SQL given as text runs unseen, and what it keeps is read back unmasked
    // (show application_name → the address; pg_locks → a number computed from it).
    const asText = { code: '0A000', message: /runs SQL given as text \(query_to_xml, table_to_xml, ts_stat, dblink …\)/ };
    await assert.rejects(c.query("select query_to_xml('select set_config(''application_name'', email, false) from users', false, false, '')"), asText);
    await assert.rejects(c.query("select ts_stat('select to_tsvector(''simple'', set_config(''x.y'', email, false)) from users')"), asText);
    await assert.rejects(c.query("select query_to_xml('select pg_advisory_lock(ascii(email)) from users', false, false, '')"), asText);
    await assert.rejects(c.query("select table_to_xml('users', false, false, '')"), asText);
    assert.notEqual((await c.query('show application_name')).rows[0].application_name, 'ann@example.com');
    assert.equal((await direct.query("select count(*) as n from pg_locks where locktype = 'advisory' and database = (select oid from pg_database where datname = current_database())")).rows[0].n, '0');
  });

  test('errors about the statement text are untouched; a value that holds quotes cannot pass for names', async () => {
    const missing = await errorOf(c, 'select * from nosuch');
    assert.equal(missing.message, 'relation "nosuch" does not exist');
    assert.equal(missing.position, '15');
    assert.equal((await errorOf(c, 'select nocolumn from users')).message, 'column "nocolumn" does not exist');
    // A value that holds quotes (wrapping it through the gateway is refused: derived-masking
    // tests), quoted by an error whose "quoted names" the statement holds (in a comment): still cut.
    await direct.query(`update users set ssn = 'x" ' || ssn || ' "y' where id = 1`);
    const wrapped = await errorOf(c, 'select ssn::int from users -- x y');
    assertClean(wrapped, 'wrapped');
    assert.match(wrapped.message, /withheld by Gatehouse/);
    await direct.query("update users set ssn = '536-22-8841' where id = 1");
  });
});

const profile: MaskProfile = { name: 'pii', operator: 'redact', keepLast: 4, applyTo: 'response', entities: ['EMAIL', 'US_SSN'] };
const profiles = await startTestProxy({ masking: { columns: new Map(), entities: entityMasking(new MaskPlanner([profile]).plan(['pii'], 'response')!) } });

describe('PostgreSQL proxy: masking profiles scan errors, notices and notification payloads', { skip: 'skip' in profiles ? profiles.skip : undefined }, () => {
  const proxy = profiles as TestProxy;
  let direct: pg.Client;
  let c: pg.Client;

  withProxyClients(proxy, `create table notes (id int, body text);
      insert into notes values (1, 'mail ann@example.com, ssn 536-22-8841')`, (clients) => ({ direct, client: c } = clients));

  test("a reported setting's value (ParameterStatus) is scanned: set_config('application_name', body, …)", async () => {
    // Was a leak: the row and SHOW were masked, but the ParameterStatus the database sends
    // for application_name carried the note whole.
    const raw = await rawLogin(proxy.port, 'agent', proxy.database, proxy.token);
    try {
      raw.write(message('Q', cstring("select set_config('application_name', body, false) is null from notes")));
      const frames = await raw.untilReady(1);
      const status = frames.filter((f) => f.type === 'S').map((f) => f.body.toString('utf8'));
      assert.deepEqual(status, ['application_name\0mail [EMAIL], ssn [US_SSN]\0']);
    } finally {
      raw.close();
    }
  });

  test('an entity in an error, a notice or a payload is replaced; the rest of the text stays', async () => {
    const cast = await errorOf(c, 'select body::int from notes');
    assert.equal(cast.message, 'invalid input syntax for type integer: "mail [EMAIL], ssn [US_SSN]"');
    const notices: string[] = [];
    c.on('notice', (n) => notices.push(n.message ?? ''));
    await c.query("do $$ begin raise notice 'row: %', (select body from notes limit 1); end $$");
    assert.deepEqual(notices, ['row: mail [EMAIL], ssn [US_SSN]']);
    // Listening through the proxy (the notifying session is the listening one here).
    const received: string[] = [];
    c.on('notification', (n) => received.push(n.payload ?? ''));
    await c.query('listen ch');
    await c.query("select pg_notify('ch', body) from notes");
    await c.query('select 1');
    assert.deepEqual(received, ['mail [EMAIL], ssn [US_SSN]']);
    assert.ok(direct);
  });
});
