// Security regression: column masking matched the result column's name only, so a
// masked column's value left unmasked under any other name: an alias, an expression
// (lower(email), email || '', concat, string_agg, json_agg), a whole row (u, u::text,
// to_json(u), row_to_json(u)), a subquery's or CTE's column, RETURNING … AS, a UNION
// branch. Values derived from a masked column are now masked whatever their name, and
// statements that would keep them under another name (views, CREATE TABLE AS, cursors,
// INSERT … SELECT, UPDATE … SET) are refused.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, test } from 'node:test';
import pg from 'pg';
import { clearFunctionCatalog } from '../../../src/protocols/postgres/function-catalog.js';
import { startTestProxy, withProxyClients, type TestProxy } from '../../helpers/postgres-proxy.js';

const proxyOrSkip = await startTestProxy({ masking: { columns: new Map([['email', 'redact'], ['ssn', 'partial'], ['born', 'null']]) } });
const skip = 'skip' in proxyOrSkip ? proxyOrSkip.skip : undefined;

describe('PostgreSQL proxy: values derived from masked columns are masked', { skip }, () => {
  const proxy = proxyOrSkip as TestProxy;
  let direct: pg.Client;
  let c: pg.Client;

  withProxyClients(proxy, `create table users (id int primary key, name text, email text, ssn text, born date, notes text);
      insert into users values (1, 'Ann', 'ann@example.com', '078-05-1120', '1990-01-02', null), (2, 'Bob', 'bob@example.com', '219-09-9999', '1985-05-06', null);
      create table archive (id int, contact text)`, (clients) => ({ direct, client: c } = clients));

  const leaks = (rows: unknown) => /ann@example\.com|078-05-1120|1990-01-02|example\.com/.test(JSON.stringify(rows));
  const first = async (sql: string, params?: unknown[]) => {
    const r = await c.query({ text: sql, values: params, rowMode: 'array' });
    assert.ok(!leaks(r.rows), `${sql} leaked: ${JSON.stringify(r.rows)}`);
    return r.rows[0] as unknown[];
  };

  test('plain columns keep their own rule (unchanged)', async () => {
    assert.deepEqual(await first('select id, name, email, ssn, born from users where id = 1'), [1, 'Ann', '[EMAIL]', '*******1120', null]);
    assert.deepEqual(await first('select * from users where id = 1'), [1, 'Ann', '[EMAIL]', '*******1120', null, null]);
  });

  test('aliases and expressions over a masked column are redacted (text) or NULL (other types)', async () => {
    assert.deepEqual(await first('select email as e, name as n from users where id = 1'), ['[EMAIL]', 'Ann']);
    assert.deepEqual(await first("select lower(email), email || '', concat(email, ''), upper(name) from users where id = 1"), ['[EMAIL]', '[EMAIL]', '[EMAIL]', 'ANN']);
    assert.deepEqual(await first("select string_agg(email, ','), json_agg(email), count(email) from users"), ['[EMAIL]', null, '2']);
    assert.deepEqual(await first('select ssn || \'\' as s, substr(ssn, 1, 3), born + 1 as later, length(email) from users where id = 1'), ['[SSN]', '[SSN]', null, null]);
    assert.deepEqual(await first('select email from users where id = $1', [1]), ['[EMAIL]']); // extended protocol
    assert.deepEqual(await first('select lower(email) as e, id from users where id = $1', [1]), ['[EMAIL]', 1]);
  });

  test("an alias of the column itself keeps the column's rule, partial too: ORMs alias every column (TypeORM, Hibernate)", async () => {
    // TypeORM's find(): "u"."ssn" AS "User_ssn"; the phone/ssn rule is partial, which a
    // label in place of every value (as for an expression) would defeat under an ORM.
    const orm = 'select "u"."id" as "User_id", "u"."ssn" as "User_ssn", "u"."email" as "User_email", "u"."born" as "User_born" from "users" "u" where "u"."id" = $1';
    assert.deepEqual(await first(orm, [1]), [1, '*******1120', '[EMAIL]', null]);
    assert.deepEqual(await first('select s.ssn as x from (select ssn from users where id = 1) s'), ['*******1120']);
    // Anything computed from it is still redacted whole.
    assert.deepEqual(await first('select upper(ssn) as "User_ssn", ssn || \'\' as s from users where id = 1'), ['[SSN]', '[SSN]']);
  });

  test('whole rows are masked', async () => {
    assert.deepEqual(await first('select u from users u where id = 1'), [null]); // a record: NULL
    assert.deepEqual(await first('select u::text, to_json(u), row_to_json(u), u.id from users u where id = 1'), [null, null, null, 1]);
  });

  test('subqueries, CTEs, UNION and RETURNING carry the masking through', async () => {
    assert.deepEqual(await first('select * from (select email as e, id from users where id = 1) s'), ['[EMAIL]', 1]);
    assert.deepEqual(await first('select s.* , 7 from (select lower(email) as x from users where id = 1) s'), ['[EMAIL]', 7]);
    assert.deepEqual(await first('with c(contact) as (select email from users where id = 1) select contact from c'), ['[EMAIL]']);
    // A UNION column takes every branch's values: masked in every row.
    const union = await c.query({ text: 'select name from users where id = 1 union all select email from users where id = 1', rowMode: 'array' });
    assert.deepEqual(union.rows, [['[EMAIL]'], ['[EMAIL]']]);
    assert.deepEqual(await first("update users set name = name where id = 1 returning email as e, (select email from users where id = 2) as other"), ['[EMAIL]', '[EMAIL]']);
    assert.deepEqual(await first('select *, lower(email) from users where id = 1'), [1, 'Ann', '[EMAIL]', '*******1120', null, null, '[EMAIL]']);
  });

  test('a UNION with a `*` masks every column: the right branch lands under the left names by position', async () => {
    // Was a leak: the left `*` kept its table's names and the right branch's plain email
    // arrived under "contact" unmasked.
    // Any column may carry any masked column here, and one rule is `null` (born): NULL.
    const rows = async (sql: string) => {
      const r = await c.query({ text: sql, rowMode: 'array' });
      assert.ok(!leaks(r.rows), `${sql} leaked: ${JSON.stringify(r.rows)}`);
      return r.rows;
    };
    await direct.query("insert into archive values (9, 'kept')");
    try {
      assert.deepEqual(await rows('select * from archive union all select id, email from users where id = 1'), [[null, null], [null, null]]);
      assert.deepEqual(await rows('select * from archive union all select * from (select id, email from users where id = 1) u'), [[null, null], [null, null]]);
      assert.deepEqual(await rows('select * from (select a.* from archive a union select u.id, u.email from users u where id = 1) s order by 1'), [[null, null], [null, null]]);
      // Named columns in both branches are traced by position, as before.
      assert.deepEqual(await rows('select id, contact from archive union all select id, name from users where id = 1'), [[9, 'kept'], [1, 'Ann']]);
    } finally {
      await direct.query('delete from archive');
    }
  });

  test('a statement that would keep a masked value under another name is refused', async () => {
    const refused = (rule: string, target: string) => ({ code: '0A000', message: `The statement would keep values of masked column "${rule}" (masking.columns) as ${target}, where they could later be read unmasked; it was not run.` });
    await assert.rejects(c.query('create view v as select email as contact from users'), refused('email', 'column "contact" of view v'));
    await assert.rejects(c.query('create table t2 as select lower(email) from users'), refused('email', 'column "lower" of table t2'));
    await assert.rejects(c.query('insert into archive (id, contact) select id, email from users'), refused('email', 'column "contact" of table archive'));
    await assert.rejects(c.query('update users set notes = email'), refused('email', 'column "notes" of table users'));
    await assert.rejects(c.query('declare c1 cursor with hold for select lower(email) from users'), refused('email', 'column "lower" of cursor c1'));
    assert.equal((await direct.query('select count(*) as n from archive')).rows[0].n, '0');
    // Under a `partial` rule (ssn) a value computed from a masked column would show another part of it.
    const partial = (rule: string) => refused(rule, 'column "ssn" of table users (partial, which would show part of it)');
    await assert.rejects(c.query('update users set ssn = substr(ssn, 1, 7)'), partial('ssn'));
    await assert.rejects(c.query("update users set ssn = 'x\" ' || ssn || ' \"y'"), partial('ssn'));
    await assert.rejects(c.query('update users set ssn = email'), partial('email'));
    await assert.rejects(c.query('insert into users (id, name, ssn) select id + 100, name, substr(ssn, 1, 7) from users'), partial('ssn'));
    await c.query('update users set ssn = ssn where id = 1'); // itself, unchanged
    await c.query('update users set email = lower(email) where id = 1'); // read back redacted whole
    // Under its own name, and without masked values, as before.
    await c.query('create view v_ok as select id, email from users');
    assert.deepEqual(await first('select * from v_ok where id = 1'), [1, '[EMAIL]']);
    await c.query('insert into archive (id, contact) select id, name from users');
  });

  test('count() counts only when it is the built-in: an aggregate defined as count returns the values', async () => {
    // Was a leak: count(…) passed as a number whatever count was, and
    // `create aggregate count(text) (sfunc = textcat, stype = text)` (no body to refuse)
    // made `select count(email) from users` return every address concatenated.
    assert.deepEqual(await first('select count(email), pg_catalog.count(email) from users'), ['2', '2']);
    const s = new pg.Client(proxy.clientConfig());
    await s.connect();
    try {
      await s.query('create aggregate public.count(text) (sfunc = textcat, stype = text)');
      const r = await s.query({ text: 'select count(email) as n, count(ssn) from users', rowMode: 'array' });
      // A user-defined function's result may hold any column, one of them under a `null` rule (born): NULL.
      assert.deepEqual(r.rows, [[null, null]]);
      const x = await s.query({ text: 'select count(email) from users where id = $1', values: [1], rowMode: 'array' }); // extended protocol
      assert.deepEqual(x.rows, [[null]]);
    } finally {
      await s.end();
    }
    // Defined on the database before the session: read from its catalog at login.
    clearFunctionCatalog();
    const t = new pg.Client(proxy.clientConfig());
    await t.connect();
    try {
      const r = await t.query({ text: 'select count(email) from users', rowMode: 'array' });
      assert.deepEqual(r.rows, [[null]]);
    } finally {
      await t.end();
      await direct.query('drop aggregate public.count(text)');
      clearFunctionCatalog();
    }
  });

  test("a trigger given a masked column's name as an argument is refused: tsvector_update_trigger copies its words", async () => {
    // Was a leak: the built-in trigger function wrote every word of email and ssn into
    // tsv on the next write (`update users set email = upper(email)` runs: it is read back
    // redacted), and `select tsv from users` showed 'ann@example.com'.
    await direct.query('alter table users add column tsv tsvector');
    try {
      await assert.rejects(c.query("create trigger t_tsv before insert or update on users for each row execute function tsvector_update_trigger(tsv, 'pg_catalog.simple', name, email)"), {
        code: '0A000',
        message: 'The statement would keep values of masked column "email" (masking.columns) as an argument of trigger t_tsv (its function tsvector_update_trigger may copy the column\'s values into another column), where they could later be read unmasked; it was not run.',
      });
      await assert.rejects(c.query("create trigger t_tsv2 before update on users for each row execute procedure pg_catalog.tsvector_update_trigger_column(tsv, 'SSN')"), { code: '0A000' });
      assert.equal((await direct.query("select count(*) as n from pg_trigger where tgname like 't_tsv%'")).rows[0].n, '0');
      // Other columns' names pass.
      await c.query("create trigger t_name before insert or update on users for each row execute function tsvector_update_trigger(tsv, 'pg_catalog.simple', name)");
      await c.query('drop trigger t_name on users');
    } finally {
      await direct.query('alter table users drop column tsv');
    }
  });

  test("a foreign table column read from a masked column of another name is refused (postgres_fdw's column_name)", async () => {
    // Was a leak: `create foreign table ft (contact text options (column_name 'email'))
    // server loop options (table_name 'users')` over a loopback postgres_fdw server, then
    // `select contact from ft`, read every address unmasked.
    const keeps = (target: string) => ({ code: '0A000', message: `The statement would keep values of masked column "email" (masking.columns) as ${target}, where they could later be read unmasked; it was not run.` });
    await assert.rejects(c.query("create foreign table ft (id int, contact text options (column_name 'email')) server loop options (table_name 'users')"), keeps('column "contact" of foreign table ft'));
    await assert.rejects(c.query("alter foreign table ft2 alter column contact options (add column_name 'email')"), keeps('column "contact" of foreign table ft2'));
    await assert.rejects(c.query("alter foreign table ft2 alter column contact options (set column_name 'email')"), keeps('column "contact" of foreign table ft2'));
    await assert.rejects(c.query("alter foreign table ft2 add column contact text options (column_name 'email')"), keeps('column "contact" of foreign table ft2'));
    // A remote column under its own name, or another column, is the database's to judge (no such server here).
    await assert.rejects(c.query("create foreign table ft (id int, email text options (column_name 'email'), nick text options (column_name 'name')) server loop options (table_name 'users')"), { code: '42704' });
  });

  test("a literal that names a masked column is read in every text: a shape seen with another literal does not vouch for it", async () => {
    // Was a leak: statements were cached by shape (literals replaced), so after `…
    // (column_name 'name') …` ran, `… (column_name 'email') …` was taken as the same
    // statement and a foreign table read the addresses as contact; a trigger's quoted
    // argument `'email'` likewise.
    const keeps = { code: '0A000', message: /would keep values of masked column "email"/ };
    await assert.rejects(c.query("create foreign table ftc (id int, contact text options (column_name 'name')) server loop options (table_name 'users')"), { code: '42704' }); // no such server here
    await assert.rejects(c.query("create foreign table ftc (id int, contact text options (column_name 'email')) server loop options (table_name 'users')"), keeps);
    await assert.rejects(c.query("alter foreign table ftc alter column contact options (set column_name 'name')"), { code: '42P01' });
    await assert.rejects(c.query("alter foreign table ftc alter column contact options (set column_name 'email')"), keeps);
    await assert.rejects(c.query("create trigger t_lit before insert on no_such_table for each row execute function tsvector_update_trigger(tsv, 'pg_catalog.simple', 'name')"), { code: '42P01' });
    await assert.rejects(c.query("create trigger t_lit before insert on no_such_table for each row execute function tsvector_update_trigger(tsv, 'pg_catalog.simple', 'email')"), keeps);
  });

  test('CREATE SCHEMA … CREATE VIEW is judged as the view it creates', async () => {
    // Was a leak: the elements of CREATE SCHEMA were not looked into, so `create schema s
    // create view v as select email as contact from users` kept the addresses as contact.
    await assert.rejects(c.query('create schema s_leak create view v as select email as contact from users'), { code: '0A000', message: /as column "contact" of view v/ });
    await assert.rejects(c.query("create schema s_leak create table tg (id int, tsv tsvector) create trigger tgt before insert on tg for each row execute function tsvector_update_trigger(tsv, 'pg_catalog.simple', email)"), { code: '0A000' });
    assert.equal((await direct.query("select count(*)::int as n from pg_namespace where nspname = 's_leak'")).rows[0].n, 0);
    await c.query('create schema s_ok create view v as select id, email from users');
    assert.deepEqual(await first('select * from s_ok.v where id = 1'), [1, '[EMAIL]']);
  });

  test('a rule whose action is a SELECT of a masked column is refused: its rows answer later statements under other names', async () => {
    // Were leaks: `on select to t do instead select id, email as contact from users`
    // turned table t into a view (select contact from t), and `on insert to t2 do instead
    // select email as contact from users` answered an INSERT with the addresses.
    await direct.query('create table t_view (id int, contact text); create table t_ins (id int, contact text)');
    try {
      const refusal = (rule: string) => ({ code: '0A000', message: `The statement would keep values of masked column "email" (masking.columns) as the rows of rule ${rule} (under names the gateway does not trace), where they could later be read unmasked; it was not run.` });
      await assert.rejects(c.query('create rule "_RETURN" as on select to t_view do instead select id, email as contact from users'), refusal('_RETURN'));
      await assert.rejects(c.query('create rule r_ins as on insert to t_ins do instead select email as contact from users'), refusal('r_ins'));
      await assert.rejects(c.query('create rule r_upd as on update to t_ins do also select id, email from users'), refusal('r_upd'));
      assert.deepEqual((await c.query({ text: "insert into t_ins values (1, 'x') returning contact", rowMode: 'array' })).rows, [['x']]);
      // A SELECT action over other columns passes.
      await c.query('create rule r_name as on update to t_ins do also select id, name from users');
    } finally {
      await direct.query('drop table t_view, t_ins');
    }
  });

  test('an aggregate, operator or cast made of a function that keeps its values is refused: its calls are not seen as stores', async () => {
    // Was a leak: `create aggregate cfg(text, bool) (sfunc = set_config, stype = text,
    // initcond = 'application_name')`, then `select cfg(email, false) from users where id =
    // 1` (a user-defined aggregate: its result masked) and `show application_name`.
    const refusal = (name: string, fn: string) => ({ code: '0A000', message: `The statement would keep values of masked column "email" (masking.columns) as aggregate ${name} (its sfunc ${fn} may keep or send the values it is given), where they could later be read unmasked; it was not run.` });
    await assert.rejects(c.query("create aggregate cfg(text, bool) (sfunc = set_config, stype = text, initcond = 'application_name')"), refusal('cfg', 'set_config'));
    await assert.rejects(c.query("create aggregate lob(bytea) (sfunc = pg_catalog.lo_from_bytea, stype = oid, initcond = '0')"), refusal('lob', 'pg_catalog.lo_from_bytea'));
    await assert.rejects(c.query("create aggregate q(text) (sfunc = query_to_xml, stype = xml)"), { code: '0A000' });
    // An operator or a cast made of one: `select 'ch' ### email from users` notified every listener.
    await assert.rejects(c.query('create operator ### (leftarg = text, rightarg = text, function = pg_notify)'), { code: '0A000', message: /as operator ### \(its function pg_notify may keep or send the values it is given\)/ });
    await assert.rejects(c.query('create cast (text as int8) with function pg_catalog.pg_advisory_lock(bigint)'), { code: '0A000', message: /as a cast \(its function pg_catalog\.pg_advisory_lock/ });
    await c.query('create operator #|# (leftarg = text, rightarg = text, function = textcat)');
    assert.deepEqual(await first("select email #|# '' from users where id = 1"), ['[EMAIL]']);
    await c.query('drop operator #|# (text, text)');
    // Made of built-ins that keep nothing, it runs (and its results are masked as a user-defined function's).
    await c.query('create aggregate cat(text) (sfunc = textcat, stype = text)');
    assert.deepEqual(await first('select cat(email) from users'), [null]);
    await c.query('drop aggregate cat(text)');
  });

  test('psql: an alias and an expression print redacted', async () => {
    const out = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const child = spawn('psql', ['-X', '-At', '-h', '127.0.0.1', '-p', String(proxy.port), '-U', 'agent', '-d', proxy.database, '-c', "select email as e, lower(email), u::text from users u where id = 2"], { env: { ...process.env, PGPASSWORD: proxy.token, PGSSLMODE: 'disable' } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d));
      child.stderr.on('data', (d: Buffer) => (stderr += d));
      child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.stdout, '[EMAIL]|[EMAIL]|\n');
  });
});
