import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { loadModule, scanSync } from 'libpg-query';
import { inspectSql, inspectSqlCached } from '../../../src/protocols/postgres/inspect-sql.js';
import { sqlShape } from '../../../src/protocols/postgres/sql-shape.js';

const marker = '\u0001';

/** The shape key built from PostgreSQL's own scanner (libpg-query scanSync): the reference. */
function referenceKey(text: string): string | undefined {
  let tokens;
  try {
    tokens = scanSync(text).tokens;
  } catch {
    return undefined;
  }
  const bytes = Buffer.from(text, 'utf8');
  const charAt = (byteOffset: number) => bytes.subarray(0, byteOffset).toString('utf8').length;
  let key = '';
  let from = 0;
  for (const t of tokens) {
    const kind = t.tokenName === 'SCONST' ? 'S' : t.tokenName === 'ICONST' ? 'I' : t.tokenName === 'FCONST' ? 'F' : undefined;
    if (!kind) continue;
    key += text.slice(from, charAt(t.start)) + marker + kind;
    from = charAt(t.end);
  }
  return key + text.slice(from);
}

const fragments = [
  'select', 'from', 't', 'aid', 'e', 'E', 'x', 'b', 'u', 'U', 'n', 'café', 'a$b', 'tbl_1',
  "'abc'", "'it''s'", "'a\\b'", "''", "'é'", "'--x'", "'/*'", "'$$'", "';'", "'",
  "E'a\\'b'", "e'\\n'", "E'\\x41'", "E'\\\\'", "E'it''s'", "U&'d!0061t'", "B'101'", "X'1F'", "N'x'",
  '$$a\'b$$', '$t$ x $$ y $t$', '$1', '$12', '$', '$a', '$1abc',
  '1', '42', '1.5', '.5', '1.', '1e5', '1e-3', '1E+7', '1e', '123abc', '0x1f', '1_000', '2147483648', '999999999', '1..2',
  '-- c\n', '/* c */', '/* a /* b */ c */', '/* unterminated', '--', '*/',
  '+', '-', '*', '/', '<>', '::', '=', ',', '.', '&', '(', ')', ';', '[', ']',
  '"T"', '"a""b"', '""', '"un',
];
const spaces = [' ', '\n', '\t', '', '\r\n', ''];

describe('SQL shapes (literal values normalised)', () => {
  before(() => loadModule());

  test('statements that differ only in literal values share a shape; texts are cut per statement', () => {
    const a = sqlShape('SELECT abalance FROM pgbench_accounts WHERE aid = 17;');
    const b = sqlShape('SELECT abalance FROM pgbench_accounts WHERE aid = 99412;');
    assert.ok(a && b);
    assert.equal(a.key, b.key);
    assert.deepEqual(b.statements, ['SELECT abalance FROM pgbench_accounts WHERE aid = 99412']);
    assert.equal(sqlShape("select 'x'")!.key, sqlShape("select $q$it's$q$")!.key);
    assert.equal(sqlShape("select e'a\\'b'")!.key, sqlShape("select 'ab'")!.key);
    assert.deepEqual(sqlShape("select ';' ; /* ; */ select (1;2) ;; -- ;\n")!.statements, ["select ';'", '/* ; */ select (1;2)', '-- ;']);
  });

  test('integers and other numbers, identifiers, comments and parameters are not mixed up', () => {
    assert.notEqual(sqlShape('fetch 5 from c')!.key, sqlShape('fetch 1.5 from c')!.key);
    assert.notEqual(sqlShape('select * from t1')!.key, sqlShape('select * from t2')!.key);
    assert.notEqual(sqlShape('select "a" from t')!.key, sqlShape('select "b" from t')!.key);
    assert.notEqual(sqlShape('select $1')!.key, sqlShape('select $2')!.key);
    assert.notEqual(sqlShape('select 1 -- a\n')!.key, sqlShape('select 1 -- b\n')!.key);
    assert.notEqual(sqlShape("select 'a' 'b'")!.key, sqlShape("select 'a'  'b'")!.key);
  });

  test('the lexer gives up where it is not sure', () => {
    for (const text of [
      "select U&'d!0061t' UESCAPE '!'",
      "select B'101'",
      "select x'1f'",
      "select n'x'",
      "select E'\\x41'",
      "select E'\\101'",
      "select E'\\u0041'",
      "select 'a'\n'b'",
      "select 'a' -- c\n 'b'",
      'select 123abc',
      'select 0x1f',
      'select 1_000',
      'select 1e',
      'select 1..2',
      'select 2147483648',
      "select 'unterminated",
      'select /* unterminated',
      'select $a',
      'select (1',
      'select 1)',
      'select \u0001',
    ]) {
      assert.equal(sqlShape(text), undefined, text);
    }
  });

  test('differential: where the lexer is sure, its literals are exactly the ones PostgreSQL\'s scanner finds', () => {
    let seed = 7;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    let sure = 0;
    for (let i = 0; i < 6000; i++) {
      const parts: string[] = [];
      const n = 1 + random(10);
      for (let j = 0; j < n; j++) parts.push(fragments[random(fragments.length)]!, spaces[random(spaces.length)]!);
      const text = parts.join('');
      const shape = sqlShape(text);
      if (!shape) continue;
      sure++;
      assert.equal(shape.key, referenceKey(text), `text ${JSON.stringify(text)}`);
    }
    assert.ok(sure > 1000, `only ${sure} texts were shaped`);
  });
});

describe('inspection cache by shape', () => {
  test('a statement with new literal values is answered from the cache, with its own text', async () => {
    const first = await inspectSql("select * from cache_t where id = 1 and name = 'a'");
    assert.ok(first.ok);
    const hit = inspectSqlCached("select * from cache_t where id = 22 and name = 'it''s'");
    assert.ok(hit?.ok);
    assert.deepEqual(hit.statements.map((s) => [s.class, s.tables, s.text]), [['select', ['cache_t'], "select * from cache_t where id = 22 and name = 'it''s'"]]);
    assert.equal(inspectSqlCached('select * from cache_t where id = 1.5'), undefined, 'FCONST is another shape');
  });

  test('several statements: each gets its own text and facts', async () => {
    await inspectSql('delete from cache_a where id = 1; select 2');
    const hit = inspectSqlCached('delete from cache_a where id = 3; select 4');
    assert.ok(hit?.ok);
    assert.deepEqual(hit.statements.map((s) => [s.class, s.text, s.risky]), [['delete', 'delete from cache_a where id = 3', []], ['select', 'select 4', []]]);
  });

  test('security: SET client_encoding is never answered by shape (its facts read the literal)', async () => {
    const utf8 = await inspectSql("set client_encoding = 'UTF8'");
    assert.ok(utf8.ok && utf8.statements[0]!.unsupported === undefined);
    const sjis = await inspectSql("set client_encoding = 'SJIS'");
    assert.ok(sjis.ok);
    assert.equal(sjis.statements[0]!.unsupported, 'only the UTF8 client encoding is supported');
  });

  test('security: an unparseable text is not answered from the shape of a parseable one', async () => {
    assert.ok((await inspectSql('select * from cache_u where a = 1')).ok);
    // Same tokens up to the literal, but a zero-length quoted identifier after it: another key.
    const bad = await inspectSql('select * from cache_u where a = 1 ""');
    assert.equal(bad.ok, false);
  });

  test('statements the lexer cannot cut like the parser (BEGIN ATOMIC bodies) are cached by exact text', async () => {
    const text = 'create function cache_f() returns int language sql begin atomic select 1; select 2; end';
    const first = await inspectSql(text);
    assert.ok(first.ok);
    assert.equal(first.statements.length, 1);
    assert.deepEqual(inspectSqlCached(text), first);
    assert.equal(inspectSqlCached(text.replace('select 2', 'select 3')), undefined);
  });
});
