// Regression: a driver that asks for binary results (Npgsql, asyncpg, pgx; node-postgres
// with `binary: true`) got arrays, records, numerics, enums and xml past masking
// profiles unscanned: `array['mail ann@example.com']` arrived whole in binary, NULL in
// text. Binary values are now decoded to the texts they carry (binary-texts.ts), and one
// that carries an entity is sent as NULL, as its text form is; types that hold no text
// (timestamps, uuid, bytea) pass as the database sent them.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MaskPlanner } from '../../../src/mask/index.js';
import { numericText } from '../../../src/protocols/postgres/binary-texts.js';
import { cstring, int16, int32, message } from '../../../src/protocols/postgres/build-messages.js';
import { parseDataRow, parseRowDescription } from '../../../src/protocols/postgres/codec.js';
import { postgresMasking } from '../../../src/server/build-postgres-connections.js';
import { rawLogin } from '../../helpers/pg-raw.js';
import { startTestProxy, withProxyClients, type TestProxy } from '../../helpers/postgres-proxy.js';

const proxyOrSkip = await startTestProxy({
  ...postgresMasking({ name: 'db', masking: { columns: {}, profiles: ['pii'] } }, new MaskPlanner([{ name: 'pii', entities: ['EMAIL', 'CREDIT_CARD'], operator: 'redact', keepLast: 4, applyTo: 'response' }])),
});
const skip = 'skip' in proxyOrSkip ? proxyOrSkip.skip : undefined;

const query = `select 1 as id,
  array['mail ann@example.com', 'b']::text[] as tags,
  array['4111111111111111']::varchar[] as cards,
  4111111111111111::numeric as card,
  row('bob@example.com', 1) as pair,
  array[row('cy@example.com', 2)] as pairs,
  array['{"a": "dee@example.com"}'::jsonb] as docs,
  'eve@example.com'::mood as m,
  array['eve@example.com'::mood] as ms,
  '<a>fay@example.com</a>'::xml as x,
  array['x', 'y']::text[] as clean,
  1234.5::numeric as amount,
  '2024-05-06 07:08:09+00'::timestamptz as at,
  'gus@example.com'::bytea as raw`;
const scrubbed = ['tags', 'cards', 'card', 'pair', 'pairs', 'docs', 'm', 'ms', 'x'];

/** Runs `sql` as node-postgres and Npgsql do (Parse, Bind asking every column in `format`, Describe, Execute, Sync): each row by column name, the bytes as sent. */
async function rows(port: number, user: string, database: string, password: string, sql: string, format: 0 | 1): Promise<Record<string, Buffer | null>[]> {
  const raw = await rawLogin(port, user, database, password);
  try {
    raw.write(
      message('P', Buffer.concat([cstring(''), cstring(sql), int16(0)])),
      message('B', Buffer.concat([cstring(''), cstring(''), int16(0), int16(0), int16(1), int16(format)])),
      message('D', Buffer.concat([Buffer.from('P'), cstring('')])),
      message('E', Buffer.concat([cstring(''), int32(0)])),
      message('S'),
    );
    const frames = await raw.untilReady(1);
    const error = frames.find((f) => f.type === 'E');
    assert.equal(error, undefined, error?.body.toString());
    const columns = parseRowDescription(frames.find((f) => f.type === 'T')!.body);
    return frames.filter((f) => f.type === 'D').map((f) => Object.fromEntries(parseDataRow(f.body).map((v, i) => [columns[i]!.name, v])));
  } finally {
    raw.close();
  }
}

describe('PostgreSQL proxy: masking profiles over binary-format results', { skip }, () => {
  const proxy = proxyOrSkip as TestProxy;
  withProxyClients(proxy, "create type mood as enum ('ok', 'eve@example.com')", () => undefined);
  const direct = () => new URL(proxy.directUrl);
  const viaDirect = (sql: string, format: 0 | 1) => rows(Number(direct().port || 5432), direct().username || 'postgres', proxy.database, 'unused', sql, format);
  const viaProxy = (sql: string, format: 0 | 1) => rows(proxy.port, 'agent', proxy.database, proxy.token, sql, format);

  test('arrays, records, numerics, enums and xml that carry an entity are NULL in binary as in text; the rest is as the database sent it', async () => {
    const [sent] = await viaDirect(query, 1);
    const [binary] = await viaProxy(query, 1);
    const [text] = await viaProxy(query, 0);
    for (const name of scrubbed) {
      assert.notEqual(sent![name], null, `${name} is not NULL in the database's answer`);
      assert.equal(binary![name], null, `${name} in binary`);
      assert.equal(text![name], null, `${name} in text`);
    }
    for (const name of ['id', 'clean', 'amount', 'at', 'raw']) assert.deepEqual(binary![name], sent![name], `${name} is left as sent`);
  });

  test('binary numerics are read as the database writes them', async () => {
    const values = ['0', '-1.5', '0.0001', '12345678.000100', '1e-20', 'NaN', '100000000', '-0.00', '123.4500', '4111111111111111', '99999999999999999999.99', 'Infinity', '-Infinity', '0.5e-3'];
    const sql = `select v::numeric as n from (values ${values.map((v) => `('${v}')`).join(', ')}) t(v)`;
    const binary = await viaDirect(sql, 1);
    const text = await viaDirect(sql, 0);
    assert.deepEqual(binary.map((r) => numericText(r.n!)), text.map((r) => r.n!.toString('utf8')));
  });
});
