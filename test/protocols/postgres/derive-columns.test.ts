// Which result columns carry values derived from which columns (derive-columns.ts), in
// process, on libpg-query's trees: the masking of derived columns rests on this.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { inspectSql } from '../../../src/protocols/postgres/inspect-sql.js';

async function derived(sql: string) {
  const r = await inspectSql(sql);
  assert.ok(r.ok);
  return r.statements[0]!.derived;
}

describe('derived result columns', () => {
  test('plain columns and value-free expressions derive nothing (ordinary statements stay lean)', async () => {
    assert.equal(await derived('select aid, abalance from pgbench_accounts where aid = $1'), undefined);
    assert.equal(await derived('select * from users u join orders o on o.uid = u.id'), undefined);
    assert.equal(await derived('select count(*), count(email), now(), 1 from users'), undefined);
    assert.equal(await derived('update accounts set balance = balance where id = 2'), undefined);
    // A column computed from itself is kept under its own name: a store (a `partial` rule on it would show another part).
    assert.deepEqual(await derived('update accounts set balance = balance + 1 where id = 2'), { stores: [{ target: 'column "balance" of table accounts', name: 'balance', sources: ['balance'], wholeRow: false }] });
  });

  test('aliases, expressions and whole rows name their sources and position', async () => {
    assert.deepEqual(await derived('select id, email as e, lower(name) from users'), { results: [{ name: 'e', position: 1, sources: ['email'], wholeRow: false, copyOf: 'email' }, { name: 'lower', position: 2, sources: ['name'], wholeRow: false }] });
    assert.deepEqual(await derived('select to_json(u) from users u'), { results: [{ name: 'to_json', position: 0, sources: ['u'], wholeRow: true }] });
    assert.deepEqual(await derived('select *, email || \'\' as x from users'), { results: [{ name: 'x', position: -1, sources: ['email'], wholeRow: false }] });
  });

  test('through subqueries, CTEs with column names, and UNION by position', async () => {
    assert.deepEqual((await derived('with c(x) as (select email from users) select * from c'))?.results?.[0]?.sources, ['email']);
    assert.deepEqual((await derived('select s.e from (select upper(email) as e from users) s'))?.results?.[0]?.sources, ['e', 'email']);
    assert.deepEqual((await derived('select name from a union select email from b'))?.results, [{ name: 'name', position: 0, sources: ['name', 'email'], wholeRow: false }]);
    assert.deepEqual(await derived('select * from a union select lower(email) from b'), { any: true });
    // The right branch's values land under the left's names by position: past a `*`, anywhere.
    assert.deepEqual(await derived('select * from orders union all select id, email from users'), { any: true });
    assert.deepEqual(await derived('select * from orders union all select * from users'), { any: true });
    assert.deepEqual(await derived('select * from (select o.* from orders o union select u.id, u.email from users u) s'), { any: true });
  });

  test('stored values: a view, INSERT … SELECT and UPDATE … SET under another name', async () => {
    assert.deepEqual((await derived('create view v as select email as contact from users'))?.stores, [{ target: 'column "contact" of view v', name: 'contact', sources: ['email'], wholeRow: false }]);
    assert.deepEqual((await derived('insert into archive (contact) select email from users'))?.stores, [{ target: 'column "contact" of table archive', name: 'contact', sources: ['email'], wholeRow: false }]);
    assert.deepEqual((await derived('update users set notes = email'))?.stores, [{ target: 'column "notes" of table users', name: 'notes', sources: ['email'], wholeRow: false }]);
  });
});
