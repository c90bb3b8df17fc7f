// COPY … TO STDOUT on a connection with column rules (`email: redact, dob: null, phone:
// partial`): was refused outright, even `copy (select full_name, notes …)`, which reads no
// masked column. The gateway now describes the COPY's columns on the database and masks
// its rows field by field, in text and CSV, with their options; what leaves loads back
// with COPY FROM, and columns no rule masks are the bytes the database sent.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, test } from 'node:test';
import pg from 'pg';
import { MaskPlanner } from '../../../src/mask/index.js';
import { entityMasking } from '../../../src/protocols/postgres/entity-masking.js';
import { copy } from '../../helpers/pg-copy.js';
import { startTestProxy, withProxyClients, type TestProxy } from '../../helpers/postgres-proxy.js';

const columns = new Map([['email', 'redact'], ['dob', 'null'], ['phone', 'partial']] as const);
const proxyOrSkip = await startTestProxy({ masking: { columns } });
const skip = 'skip' in proxyOrSkip ? proxyOrSkip.skip : undefined;

// Values with the text format's escapes, CSV's quotes, the delimiters used below, NULLs.
const setup = `create table patients (id int primary key, full_name text, email text, dob date, phone text, notes text);
  insert into patients values
    (1, 'Ann Lee', 'ann@example.com', '1980-02-03', '+1 555 010 2233', 'plain'),
    (2, 'Bob "the" O''Brien', 'b\tob@ex,ample.com', null, '555-01;99', e'tab\\there, newline\\nthere\\\\slash|pipe;semi'),
    (3, e'Ca\\\\rl; \\r', null, '2001-12-31', null, 'quote '' and "double" and NULL'),
    (4, '', e'x|y\\\\z"q''', '1999-01-01', '12', ''),
    (5, 'NULL', 'NULL', null, e'12345\\n78', null),
    (6, 'Dee', 'dee@example.com', null, 'abcd''|ef', null);
  create table patients_back (like patients);
  create table visits (id int, email text, total int, doubled int generated always as (total * 2) stored);
  insert into visits (id, email, total) values (1, 'ann@example.com', 5)`;

describe('PostgreSQL proxy: COPY … TO STDOUT masked column by column', { skip }, () => {
  const proxy = proxyOrSkip as TestProxy;
  let direct: pg.Client;
  let c: pg.Client;
  withProxyClients(proxy, setup, (clients) => ({ direct, client: c } = clients));

  /** What the rows must read as: the rules applied to the table's values, as a SELECT through the gateway shows them. */
  const expected = `select id, full_name, case when email is null then null else '[EMAIL]' end as email, null::date as dob,
      case when phone is null then null when length(phone) >= 8 then repeat('*', length(phone) - 4) || right(phone, 4) else repeat('*', length(phone) - length(phone) / 4) || right(phone, length(phone) / 4) end as phone, notes
    from patients order by id`;

  /** Loads `out` back with COPY FROM (`options` as it was copied out) and reads it. */
  async function loadBack(out: string, options = ''): Promise<unknown[]> {
    await direct.query('truncate patients_back');
    await copy(direct, `copy patients_back from stdin ${options}`, out);
    return (await direct.query('select * from patients_back order by id')).rows;
  }

  const fields = (line: string, delimiter = '\t') => line.split(delimiter);

  test('a COPY of columns no rule masks passes byte for byte', async () => {
    const sql = 'copy (select full_name, notes from patients order by id) to stdout';
    const through = await copy(c, sql);
    assert.equal(through.out, (await copy(direct, sql)).out);
    assert.equal(through.tag, 'COPY 6');
    const csv = "copy (select id, full_name, notes from patients order by id) to stdout with (format csv, header, delimiter '|', null 'NULL')";
    assert.equal((await copy(c, csv)).out, (await copy(direct, csv)).out);
  });

  test('text format: masked columns masked, the rest as sent; the output loads back with COPY FROM', async () => {
    const sql = 'copy patients to stdout';
    const { out } = await copy(c, sql);
    const raw = (await copy(direct, sql)).out;
    const lines = out.split('\n');
    const rawLines = raw.split('\n');
    assert.equal(lines.length, rawLines.length);
    for (let i = 0; i < lines.length - 1; i++) {
      const [f, r] = [fields(lines[i]!), fields(rawLines[i]!)];
      assert.deepEqual([f[0], f[1], f[5]], [r[0], r[1], r[5]], 'id, full_name and notes are the bytes the database sent');
    }
    assert.equal(lines[0], '1\tAnn Lee\t[EMAIL]\t\\N\t***********2233\tplain');
    assert.deepEqual(await loadBack(out), (await direct.query(expected)).rows);
  });

  test('text format with another delimiter and NULL string; escapes in masked values', async () => {
    const options = "with (delimiter ';', null 'nil')";
    const { out } = await copy(c, `copy patients to stdout ${options}`);
    // The last 4 characters a partial value keeps are escaped: the delimiter (row 2), a line feed (row 5).
    assert.match(out, /^2;Bob "the" O'Brien;\[EMAIL\];nil;\*{5}1\\;99;tab/m);
    assert.match(out, /^5;NULL;\[EMAIL\];nil;\*{4}5\\n78;nil$/m);
    assert.deepEqual(await loadBack(out, options), (await direct.query(expected)).rows);
  });

  test('CSV with a header, odd delimiter, quote, escape and NULL string, and FORCE_QUOTE', async () => {
    const options = "with (format csv, header, delimiter '|', null 'NULL', quote '''', escape '\\', force_quote (full_name, email))";
    const { out } = await copy(c, `copy patients to stdout ${options}`);
    const raw = (await copy(direct, `copy patients to stdout ${options}`)).out;
    assert.equal(out.split('\n')[0], 'id|full_name|email|dob|phone|notes', 'the header is the column names');
    assert.match(out, /^1\|'Ann Lee'\|'\[EMAIL\]'\|NULL\|\*{11}2233\|plain$/m);
    // Row 5's full name 'NULL' stays quoted (it is not NULL), as the database sent it.
    assert.ok(out.includes("5|'NULL'|'[EMAIL]'|NULL|'****5\n78'|NULL\n"), out);
    assert.ok(out.includes("6|'Dee'|'[EMAIL]'|NULL|'****\\'|ef'|NULL\n"), out);
    assert.ok(raw.includes("5|'NULL'|'NULL'|NULL|'12345\n78'|NULL\n"), raw);
    assert.deepEqual(await loadBack(out, options.replace(', force_quote (full_name, email)', '')), (await direct.query(expected)).rows);
    const plain = await copy(c, 'copy patients to stdout with csv header');
    assert.deepEqual(await loadBack(plain.out, 'with csv header'), (await direct.query(expected)).rows);
  });

  test('a query: aliases and expressions over masked columns are masked as in SELECT results', async () => {
    const { out } = await copy(c, "copy (select id, email as contact, lower(email) || '!' as l, phone p, dob + 1 as next from patients where id <= 2 order by id) to stdout with csv");
    // Row 2's email held a comma, so the database quoted it: its label is not quoted (that
    // would tell). `phone p` is the column itself under an alias: its own rule, partial.
    assert.equal(out, '1,[EMAIL],[EMAIL],***********2233,\n2,[EMAIL],[EMAIL],*****1;99,\n');
    const select = await c.query("select id, email as contact, lower(email) || '!' as l, phone p, dob + 1 as next from patients where id <= 2 order by id");
    assert.deepEqual(select.rows.map((r: Record<string, unknown>) => [r.contact, r.l, r.p, r.next]), [['[EMAIL]', '[EMAIL]', '***********2233', null], ['[EMAIL]', '[EMAIL]', '*****1;99', null]]);
    const columnList = await copy(c, 'copy patients (phone, id) to stdout');
    assert.equal(columnList.out.split('\n')[0], '***********2233\t1');
  });

  test("a table's generated columns, which COPY leaves out, are left out of its description too", async () => {
    assert.equal((await copy(direct, 'copy visits to stdout')).out, '1\tann@example.com\t5\n');
    assert.equal((await copy(c, 'copy visits to stdout')).out, '1\t[EMAIL]\t5\n');
    assert.equal((await copy(c, 'copy public.visits (email, id) to stdout')).out, '[EMAIL]\t1\n');
  });

  test("psql's \\copy to stdout, and the session goes on", async () => {
    const run = await psql(proxy, ['-c', '\\copy patients to stdout with csv header']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^1,Ann Lee,\[EMAIL\],,\*{11}2233,plain$/m);
    assert.doesNotMatch(run.stdout, /ann@example\.com|1980-02-03|010 22/);
    await c.query('begin');
    assert.match((await copy(c, 'copy (select email from patients where id = 1) to stdout')).out, /^\[EMAIL\]\n$/);
    assert.deepEqual((await c.query('select email, full_name from patients where id = 1')).rows, [{ email: '[EMAIL]', full_name: 'Ann Lee' }]);
    await c.query('commit');
  });

  test('what cannot be masked is refused, with why', async () => {
    const refused = (why: RegExp) => ({ code: '0A000', message: new RegExp(`^COPY … TO STDOUT on a connection with column masking rules is masked column by column, but ${why.source}; it was not run\\.$`) });
    await assert.rejects(copy(c, 'copy patients to stdout with (format binary)'), refused(/its rows cannot be masked: it is in binary format, whose values the gateway cannot mask \(use the text or CSV format\)/));
    await assert.rejects(copy(c, "copy patients to stdout with (encoding 'LATIN1')"), refused(/its rows cannot be masked: its rows would be in encoding LATIN1; only UTF8 can be masked/));
    await assert.rejects(copy(c, 'copy (select nope from patients) to stdout'), refused(/the gateway could not learn its columns to mask them \(the database answered: 42703 column \(what it quotes is withheld by Gatehouse: this connection masks columns\)\)/));
    await assert.rejects(copy(c, 'select 1; copy patients to stdout'), { code: '0A000', message: /is masked column by column only when it is alone in its Query/ });
    await assert.rejects(copy(c, 'copy (insert into patients_back (id, notes) select id + 100, email from patients returning id) to stdout'), { code: '0A000', message: /^The statement would keep values of masked column "email" \(masking.columns\) as column "notes" of table patients_back/ });
    // The session is still in step.
    assert.deepEqual((await c.query('select count(*)::int as n from patients_back where id > 100')).rows, [{ n: 0 }]);
    // In a transaction block, a COPY refused so fails the block as a failed COPY would.
    await c.query('begin');
    await assert.rejects(copy(c, 'copy nope to stdout'), refused(/the gateway could not learn its columns to mask them \(the database answered: 42P01 .*\)/));
    await assert.rejects(c.query('select 1'), { code: '25P02' });
    await c.query('rollback');
    assert.equal((await copy(c, 'copy (select id from patients where id = 1) to stdout')).out, '1\n');
  });
});

const profilesOrSkip = await startTestProxy({
  masking: { columns: new Map([['email', 'redact']]), entities: entityMasking(new MaskPlanner([{ name: 'pii', entities: ['US_SSN'], operator: 'redact', keepLast: 4, applyTo: 'response' }]).plan(['pii'], 'response')!) },
});

describe('PostgreSQL proxy: COPY … TO STDOUT with column rules and masking profiles', { skip: 'skip' in profilesOrSkip ? profilesOrSkip.skip : undefined }, () => {
  const proxy = profilesOrSkip as TestProxy;
  let c: pg.Client;
  withProxyClients(proxy, `create table people (id int, email text, notes text, n int);
    insert into people values (1, 'ann@example.com', e'ssn 536-22-8841\\tand a tab, "quoted"', 5), (2, 'bob@example.com', 'nothing', 7)`, (clients) => ({ client: c } = clients));

  test('profiles scan each field no rule masks, as in a SELECT', async () => {
    const { out } = await copy(c, 'copy people to stdout with csv');
    assert.equal(out, '1,[EMAIL],"ssn [US_SSN]\tand a tab, ""quoted""",5\n2,[EMAIL],nothing,7\n');
  });
});

function psql(proxy: TestProxy, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('psql', ['-X', '-h', '127.0.0.1', '-p', String(proxy.port), '-U', 'agent', '-d', proxy.database, ...args], { env: { ...process.env, PGPASSWORD: proxy.token, PGSSLMODE: 'disable' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end();
  });
}

const timeoutOrSkip = await startTestProxy({ masking: { columns: new Map([['email', 'redact']]) }, statementTimeoutMs: 300 });

describe('PostgreSQL proxy: describing a COPY counts against statementTimeout', { skip: 'skip' in timeoutOrSkip ? timeoutOrSkip.skip : undefined }, () => {
  const proxy = timeoutOrSkip as TestProxy;
  let direct: pg.Client;
  let c: pg.Client;
  withProxyClients(proxy, `create table people (id int, email text); insert into people values (1, 'ann@example.com')`, (clients) => ({ direct, client: c } = clients));

  test('a COPY whose table another session holds locked is cancelled past the limit, and the session goes on', async () => {
    await direct.query('begin');
    await direct.query('lock table people in access exclusive mode');
    try {
      await assert.rejects(copy(c, 'copy people to stdout'), { code: '57014', message: 'The statement ran longer than 300 ms, the limit on connection "db" (statementTimeout), and was cancelled.' });
    } finally {
      await direct.query('rollback');
    }
    assert.equal((await copy(c, 'copy people to stdout')).out, '1\t[EMAIL]\n');
    assert.deepEqual((await c.query('select id from people')).rows, [{ id: 1 }]);
  });
});
