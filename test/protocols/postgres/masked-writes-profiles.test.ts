// Regression: on a connection with masking profiles, a text read with the profile's
// labels in it (`call [EMAIL]` in a notes column, `{"mail":"[EMAIL]"}` in jsonb) and
// saved back whole by an ORM overwrote the stored text: the email inside it was lost.
// A Bind parameter carrying one of the profiles' labels, written into a column they mask,
// is now refused, and nothing is written.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type pg from 'pg';
import { MaskPlanner } from '../../../src/mask/index.js';
import { postgresMasking } from '../../../src/server/build-postgres-connections.js';
import { startTestProxy, withProxyClients, type TestProxy } from '../../helpers/postgres-proxy.js';

const proxyOrSkip = await startTestProxy({
  ...postgresMasking(
    { name: 'db', masking: { columns: {}, profiles: ['pii', 'cards'] } },
    new MaskPlanner([
      { name: 'pii', entities: ['EMAIL'], operator: 'redact', keepLast: 4, applyTo: 'response' },
      { name: 'cards', entities: ['CREDIT_CARD'], operator: 'hash', hashKey: 'k', keepLast: 4, applyTo: 'response' },
    ]),
  ),
});
const skip = 'skip' in proxyOrSkip ? proxyOrSkip.skip : undefined;

describe('PostgreSQL proxy: masking profile labels written back inside a text', { skip }, () => {
  const proxy = proxyOrSkip as TestProxy;
  let direct: pg.Client;
  let c: pg.Client;
  withProxyClients(proxy, `create table contacts (id int primary key, notes text, prefs jsonb);
      insert into contacts values (1, 'call ann@example.com, card 4111 1111 1111 1111', '{"mail":"ann@example.com","theme":"dark"}')`, (clients) => ({ direct, client: c } = clients));

  const stored = async () => (await direct.query('select notes, prefs from contacts where id = 1')).rows[0];
  const original = { notes: 'call ann@example.com, card 4111 1111 1111 1111', prefs: { mail: 'ann@example.com', theme: 'dark' } };
  const refused = async (sql: string, params: unknown[], label: string, column: string) => {
    const error = await c.query(sql, params).then(() => undefined, (e: Error & { code?: string }) => e);
    assert.ok(error, `${sql} ran`);
    assert.equal(error.code, '0A000');
    assert.equal(error.message, `The statement would write a value containing ${JSON.stringify(label)} into column "${column}": that is how the gateway's masking profiles show what they hide, not a value, and it would replace the stored text; it was not run. Write only the columns the client changed, with their real text.`);
  };

  test('a row read masked and saved whole is refused, text and jsonb, redact and hash labels; nothing is written', async () => {
    const row = (await c.query('select * from contacts where id = $1', [1])).rows[0];
    assert.match(row.notes, /^call \[EMAIL\], card \[CREDIT_CARD:[0-9a-f]{12}\]$/);
    assert.deepEqual(row.prefs, { mail: '[EMAIL]', theme: 'dark' });
    await refused('update contacts set notes = $1 where id = $2', [`${row.notes} (called back)`, 1], '[EMAIL]', 'notes');
    await refused('update contacts set prefs = $1::jsonb where id = $2', [JSON.stringify({ ...row.prefs, theme: 'light' }), 1], '[EMAIL]', 'prefs');
    const card = /\[CREDIT_CARD:[0-9a-f]{12}\]/.exec(row.notes)![0];
    await refused('insert into contacts (id, notes) values ($1, $2)', [2, `card ${card}`], card, 'notes');
    assert.deepEqual(await stored(), original);
  });

  test('real text runs, and so do brackets that are no label of the profiles', async () => {
    await c.query('update contacts set notes = $1 where id = $2', ['call bob@example.com [TODO] [PHONE]', 1]);
    await c.query('update contacts set prefs = $1 where id = $2', [JSON.stringify({ mail: 'bob@example.com' }), 1]);
    assert.deepEqual(await stored(), { notes: 'call bob@example.com [TODO] [PHONE]', prefs: { mail: 'bob@example.com' } });
  });
});
