import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { inspectSql } from '../../../src/protocols/postgres/inspect-sql.js';
import { strictestClass } from '../../../src/protocols/postgres/statement-classes.js';
import { parseThread } from '../../../src/protocols/postgres/parse-thread.js';

async function facts(sql: string) {
  const result = await inspectSql(sql);
  assert.ok(result.ok, `expected ${sql} to parse`);
  return result.statements;
}

describe('SQL inspection (libpg-query)', () => {
  test('classes and tables of each statement in a multi-statement query', async () => {
    const s = await facts('select a.x from s1.t1 a join t2 on true where x = $1; delete from t3; drop table if exists t4, s.t5; copy t6 to stdout; insert into t7 select * from t8; truncate t9; grant select on t10 to bob; create table t11 (id int)');
    assert.deepEqual(
      s.map((f) => [f.class, f.tables]),
      [
        ['select', ['s1.t1', 't2']],
        ['delete', ['t3']],
        ['drop', ['t4', 's.t5']],
        ['copy', ['t6']],
        ['insert', ['t7', 't8']],
        ['truncate', ['t9']],
        ['grant', ['t10']],
        ['ddl', ['t11']],
      ],
    );
    assert.equal(s[0]!.text, 'select a.x from s1.t1 a join t2 on true where x = $1');
    assert.equal(s[3]!.copyOut, true);
  });

  test('risky shapes: DELETE and UPDATE without WHERE', async () => {
    assert.deepEqual((await facts('delete from accounts'))[0]!.risky, ['delete-without-where']);
    assert.deepEqual((await facts('update accounts set balance = 0'))[0]!.risky, ['update-without-where']);
    assert.deepEqual((await facts('delete from accounts where id = 1'))[0]!.risky, []);
  });

  test('security: statements whose tables cannot be known from their text carry unknown-tables', async () => {
    const risky = async (sql: string) => (await facts(sql))[0]!.risky;
    assert.deepEqual(await risky("do $$ begin execute 'drop table payroll'; end $$"), ['anonymous-code-block', 'unknown-tables']);
    assert.deepEqual(await risky("create function f() returns void language sql as 'delete from payroll'"), ['routine-body', 'unknown-tables']);
    assert.deepEqual(await risky('create procedure p() begin atomic delete from payroll; end'), ['routine-body', 'unknown-tables']);
    assert.deepEqual(await risky('call p()'), ['user-function', 'unknown-tables']);
    assert.deepEqual(await risky('select f() from orders'), ['user-function', 'unknown-tables']);
    assert.deepEqual(await risky('select public.lower(x) from orders'), ['user-function', 'unknown-tables']);
    assert.deepEqual(await risky('create table t (a int default f())'), ['user-function', 'unknown-tables']);
    assert.deepEqual(await risky('create trigger t after insert on orders for each row execute function f()'), ['user-function', 'unknown-tables']);
    assert.deepEqual(await risky("select query_to_xml('select * from payroll', true, true, '')"), ['sql-in-text', 'unknown-tables']);
    assert.deepEqual(await risky("select * from pg_catalog.table_to_xml('payroll', true, true, '')"), ['sql-in-text', 'unknown-tables']);
    assert.deepEqual(await risky("select dblink('host=x', 'select * from payroll')"), ['remote-server', 'unknown-tables']);
    // A file's content may be a table's data file: its tables are unknown; a listing is not.
    assert.deepEqual(await risky("select pg_read_file('/etc/passwd')"), ['server-file', 'unknown-tables']);
    assert.deepEqual(await risky("select pg_read_binary_file(pg_relation_filepath('payroll'))"), ['server-file', 'unknown-tables']);
    assert.deepEqual(await risky("select pg_ls_dir('.')"), ['server-file']);
    assert.deepEqual(await risky("copy t from program 'psql -c \"copy payroll to stdout\"'"), ['copy-server-file', 'unknown-tables']);
    assert.deepEqual(await risky("copy t to '/tmp/t.csv'"), ['copy-server-file']);
    assert.deepEqual(await risky('prepare p as select f()'), ['user-function', 'unknown-tables']);
    // Built-ins, including the ones SQL syntax calls (extract, substring … from, similar to), are known.
    assert.deepEqual(await risky("select count(*), lower(a), now(), extract(year from now()), substring(a from 2), a similar to 'x', pg_catalog.upper(a) from t"), []);
  });

  test('PREPARE and EXPLAIN ANALYZE take the class of the statement they run', async () => {
    assert.equal((await facts('prepare p as delete from x'))[0]!.class, 'delete');
    assert.equal((await facts('explain analyze delete from x'))[0]!.class, 'delete');
    assert.equal((await facts('explain delete from x'))[0]!.class, 'explain');
  });

  test('security: a statement that runs a DELETE, UPDATE or INSERT inside it takes that class (a data-modifying WITH, COPY of a DML … RETURNING)', async () => {
    const cases: [string, string, string[]][] = [
      ['with d as (delete from payroll where id = 1 returning id) select * from d', 'delete', []],
      ['with d as (delete from payroll returning id) select count(*) from d', 'delete', ['delete-without-where']],
      ['with u as (update payroll set pay = 0 returning id) insert into audit select * from u', 'update', ['update-without-where']],
      ['with i as (insert into payroll values (1) returning id) select * from i', 'insert', []],
      ['copy (delete from payroll where id = 1 returning id) to stdout', 'delete', []],
      ['explain analyze with d as (delete from payroll returning id) select * from d', 'delete', ['delete-without-where']],
      ['explain analyze delete from payroll', 'delete', ['delete-without-where']],
      ['prepare p as with d as (delete from payroll where id = $1 returning id) select * from d', 'delete', []],
      ['with s as (select 1) select * from s', 'select', []],
      ['copy (select 1) to stdout', 'copy', []],
      // DDL is stricter than DELETE: CREATE TABLE AS keeps its class, with the DELETE's risky shapes.
      ['create table x as with d as (delete from payroll returning *) select * from d', 'ddl', ['delete-without-where']],
    ];
    for (const [sql, cls, risky] of cases) {
      const [f] = await facts(sql);
      assert.equal(f!.class, cls, sql);
      assert.deepEqual(f!.risky.filter((r) => r.endsWith('-without-where')), risky, sql);
      if (sql.includes('payroll')) assert.ok(f!.tables.includes('payroll'), sql);
    }
  });

  test('statement texts are cut by byte offsets (multi-byte characters)', async () => {
    const s = await facts("select 'é'; select 2");
    assert.deepEqual(s.map((f) => f.text), ["select 'é'", 'select 2']);
  });

  test('unparseable SQL is reported with the parser message', async () => {
    assert.deepEqual(await inspectSql('selec 1'), { ok: false, error: 'syntax error at or near "selec"' });
  });

  test('empty queries have no statements', async () => {
    assert.deepEqual(await facts(''), []);
    assert.deepEqual(await facts(' ; -- nothing'), []);
  });

  test('security: a non-UTF8 client encoding cannot be set', async () => {
    assert.equal((await facts("set client_encoding = 'SJIS'"))[0]!.unsupported, 'only the UTF8 client encoding is supported');
    assert.equal((await facts("set client_encoding = 'UTF8'"))[0]!.unsupported, undefined);
  });

  test('security: a table nested deep in subqueries is still named (a depth cap hid it from table rules)', async () => {
    // PostgreSQL runs 400 nested subqueries; the parse tree is thousands of levels deep.
    const n = 400;
    const sql = `select * from ${'(select * from '.repeat(n)}hr.salaries${') x'.repeat(n)}`;
    assert.deepEqual((await facts(sql))[0]!.tables, ['hr.salaries']);
    const order = await facts('select * from a, (select * from b join c on true) s where x in (select y from d)');
    assert.deepEqual(order[0]!.tables, ['a', 'b', 'c', 'd']);
  });

  test('security: a long text is parsed off the event loop (a 700 KB statement stalled every session for seconds)', async () => {
    const sql = `select * from accounts where ${Array.from({ length: 60_000 }, (_, i) => `id = ${i}`).join(' or ')}`;
    await inspectSql('select 1'); // the parser module is loaded (once per process)
    let last = performance.now();
    let longestGap = 0;
    const ticker = setInterval(() => {
      const now = performance.now();
      longestGap = Math.max(longestGap, now - last);
      last = now;
    }, 5);
    const started = performance.now();
    const [result] = await Promise.all([facts(sql), facts(`${'select 1;'.repeat(20_000)} drop table x`), facts(sql.replace('accounts', 'ledger'))]).finally(() => clearInterval(ticker));
    longestGap = Math.max(longestGap, performance.now() - last); // a parse on the loop shows only here: no tick ran during it
    assert.deepEqual(result[0]!.tables, ['accounts']);
    // On the loop, the loop stalled for the whole inspection (0.5 to 3 s); off it, the loop
    // only waits for the answers. Relative, so that a loaded machine slows both alike.
    const took = performance.now() - started;
    assert.ok(longestGap < took / 2, `the event loop stalled ${longestGap.toFixed(0)} ms of the ${took.toFixed(0)} ms inspection took`);
    const many = await facts(`${'select 1;'.repeat(20_000)} drop table x`);
    assert.equal(many.length, 20_001);
    assert.equal(many[20_000]!.class, 'drop');
  });

  test('the parser thread is ended once idle (its memory grows to the largest text parsed), and started again when needed', async () => {
    const idleMs = parseThread.idleMs;
    parseThread.idleMs = 50;
    try {
      const long = `select * from accounts where ${Array.from({ length: 3_000 }, (_, i) => `id = ${i}`).join(' or ')}`;
      assert.deepEqual((await facts(long))[0]!.tables, ['accounts']);
      assert.equal(parseThread.running(), true);
      const until = Date.now() + 5_000;
      while (parseThread.running() && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(parseThread.running(), false, 'the idle thread was ended');
      assert.deepEqual((await facts(long.replace('accounts', 'ledger')))[0]!.tables, ['ledger']);
    } finally {
      parseThread.idleMs = idleMs;
    }
  });

  test('which statements may change search_path (a bare name is then looked up again)', async () => {
    const changes = async (sql: string) => (await facts(sql)).map((f) => f.searchPath === true);
    // Another setting first: a text of the same shape must not answer for search_path's.
    assert.deepEqual(await changes("select set_config('app.tenant', '7', false)"), [false]);
    assert.deepEqual(await changes("select set_config('search_path', '7', false)"), [true]);
    assert.deepEqual(await changes("select pg_catalog.set_config(new_value => 'x', setting_name => 'Search_Path', is_local => true)"), [true]);
    assert.deepEqual(await changes("select set_config(setting_name => 'app.x', new_value => 'y', is_local => false)"), [false]);
    assert.deepEqual(await changes("select set_config($1, $2, false); select set_config(lower('SEARCH_PATH'), 'x', false); select set_config(name, 'x', false) from s"), [true, true, true]);
    assert.deepEqual(await changes("select 1 where exists (select set_config('role', 'bob', false))"), [true]);
    assert.deepEqual(await changes("update pg_settings set setting = 'x' where name = 'search_path'; select * from pg_settings"), [true, false]);
    assert.deepEqual(await changes('select my_function(); call p(); do $$ begin end $$; select lower(x) from t'), [true, true, true, false]);
    assert.deepEqual(await changes('set local search_path = a; reset role; reset all; discard all; set work_mem = 1'), [true, true, true, true, false]);
    assert.deepEqual((await facts('rollback to savepoint a; rollback')).map((f) => f.revertsSettings === true), [true, false]);
  });

  test('the strictest class wins', () => {
    assert.equal(strictestClass(['select', 'drop', 'insert']), 'drop');
    assert.equal(strictestClass([]), 'empty');
  });
});
