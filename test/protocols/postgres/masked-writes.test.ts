// Regression: an ORM that saves every column of a row it read (Hibernate without
// @DynamicUpdate, knex `update(row)`, a form that round-trips a record) wrote the masks
// the gateway had shown it over the stored values: `[EMAIL]` replaced the email, and
// `*******1120` the SSN, silently. Such a write (a Bind parameter equal to the column's
// mask) is now refused, and nothing is written.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pg from 'pg';
import { startTestProxy, withProxyClients, type TestProxy } from '../../helpers/postgres-proxy.js';

const proxyOrSkip = await startTestProxy({ masking: { columns: new Map([['email', 'redact'], ['ssn', 'partial']]) } });
const skip = 'skip' in proxyOrSkip ? proxyOrSkip.skip : undefined;

describe('PostgreSQL proxy: masks written back over the values they stand for', { skip }, () => {
  const proxy = proxyOrSkip as TestProxy;
  let direct: pg.Client;
  let c: pg.Client;
  withProxyClients(proxy, `create table users (id int primary key, name text, email text, ssn text, notes text);
      insert into users values (1, 'Ann', 'ann@example.com', '078-05-1120', null)`, (clients) => ({ direct, client: c } = clients));

  const stored = async () => (await direct.query('select name, email, ssn, notes from users where id = 1')).rows[0];
  const refused = async (sql: string, params: unknown[]) => {
    const error = await c.query(sql, params).then(() => undefined, (e: Error & { code?: string }) => e);
    assert.ok(error, `${sql} ran`);
    assert.equal(error.code, '0A000');
    assert.match(error.message, /that is how the gateway shows the column masked \(masking\.columns\), not its value, and it would replace the stored value; it was not run\. Write only the columns the client changed\./);
    return error.message;
  };

  test('a row read masked and saved whole is refused, naming the column; nothing is written', async () => {
    const row = (await c.query('select * from users where id = $1', [1])).rows[0];
    assert.deepEqual(row, { id: 1, name: 'Ann', email: '[EMAIL]', ssn: '*******1120', notes: null });
    const message = await refused('update users set name = $1, email = $2, ssn = $3, notes = $4 where id = $5', ['Ann Lee', row.email, row.ssn, row.notes, 1]);
    assert.match(message, /^The statement would write "\[EMAIL\]" into column "email": /);
    assert.match(await refused('update users set ssn = $1::text where id = $2', [row.ssn, 1]), /write "\*\*\*\*\*\*\*1120" into column "ssn"/);
    assert.match(await refused('insert into users (id, name, email) values ($1, $2, $3), ($4, $5, $6)', [2, 'Bob', 'bob@example.com', 3, 'Cy', '[EMAIL]']), /"\[EMAIL\]" into column "email"/);
    await refused('insert into users (id, email) values ($1, $2) on conflict (id) do update set email = $3', [1, 'x@example.com', '[EMAIL]']);
    assert.deepEqual(await stored(), { name: 'Ann', email: 'ann@example.com', ssn: '078-05-1120', notes: null });
  });

  test('writing only what changed runs; so do real values, and a label in a column no rule masks', async () => {
    await c.query('update users set name = $1 where id = $2', ['Ann Lee', 1]);
    await c.query('update users set notes = $1, ssn = $2 where id = $3', ['[EMAIL]', '078-05-1121', 1]);
    assert.deepEqual(await stored(), { name: 'Ann Lee', email: 'ann@example.com', ssn: '078-05-1121', notes: '[EMAIL]' });
  });
});
