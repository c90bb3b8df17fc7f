// End to end: masking profiles (entity detection) on a PostgreSQL connection, through
// the real `gatehouse` process, read with psql and node-postgres (text and binary
// results): free text, json / jsonb, inet and bigint values, a profile restricted to
// one column, a policy decision adding a profile for one group, the recorded statement
// masked by a request profile while the database stores what was sent, and the counts
// in the record.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';
import { createTestPostgresDatabase } from '../helpers/databases.js';
import type { GatewayProcess } from '../helpers/gateway-process.js';
import { withPostgresGateway, type PostgresGateway } from '../helpers/postgres-gateway.js';

const run = promisify(execFile);
const database = await createTestPostgresDatabase();
const skip = 'skip' in database ? database.skip : undefined;

describe('PostgreSQL connection with masking profiles, end to end', { skip }, () => {
  let pgGateway: PostgresGateway;
  let gateway: GatewayProcess;
  let analyst: string;
  let contractor: string;

  withPostgresGateway(
    database,
    {
      name: 'crm',
      setupSql: `create table customers (id int primary key, name text, notes text, phone text, contact jsonb, meta json, last_ip inet, card bigint, ssn text);
        insert into customers values
        (1, 'Ann Lee', 'reach ann@example.com or +1 415-555-2671', '+1 415-555-2671', '{"email": "ann@example.com", "tier": 3, "tags": ["vip"]}', '{"seen_from": "10.1.2.3"}', '192.168.7.9', 4111111111111111, '536-22-8841'),
        (2, 'Bo Chen', 'no contact details', '+1 212-555-0187', '{"tier": 1}', '{}', null, 42, null)`,
      connection: `    masking: { columns: { ssn: redact }, profiles: [pii, notes-phones, scrub-statements] }
    access: { groups: [analysts, contractors] }`,
      sections: `masking:
  profiles:
    pii: { entities: [EMAIL, US_SSN, IP_ADDRESS, CREDIT_CARD] }
    notes-phones: { entities: [PHONE], fields: [notes] }
    all-phones: { entities: [PHONE] }
    scrub-statements: { entities: [EMAIL], applyTo: request }
policy:
  rules:
    - { name: analysts-read, effect: allow, match: { groups: [analysts], connections: [crm] } }
    - { name: contractors-no-phones, effect: allow, match: { groups: [contractors], connections: [crm] }, obligations: { mask: [all-phones] } }
`,
    },
    (started) => {
      pgGateway = started;
      gateway = started.gateway;
    },
  );
  before(async () => {
    analyst = await gateway.createKey('ana', ['analysts']);
    contractor = await gateway.createKey('carl', ['contractors']);
  });

  const client = async (user: string, password: string): Promise<pg.Client> => {
    const c = new pg.Client(pgGateway.clientConfig(user, password, { ssl: false }));
    await c.connect();
    return c;
  };

  test('psql: entities in free text are replaced, a profile restricted to a column masks only it, values of other types that carry one are NULL', async () => {
    const env = pgGateway.psqlEnv('ana', analyst);
    const { stdout } = await run('psql', ['-X', '-At', '-F', '|', '-c', 'select name, notes, phone, last_ip, card, ssn from customers order by id'], { env });
    assert.equal(stdout, ['Ann Lee|reach [EMAIL] or [PHONE]|+1 415-555-2671|||[SSN]', 'Bo Chen|no contact details|+1 212-555-0187||42|'].join('\n') + '\n');
  });

  test('node-postgres: json and jsonb stay valid JSON with their string values masked; text and binary results alike', async () => {
    const c = await client('ana', analyst);
    try {
      const { rows } = await c.query('select contact, meta, notes from customers where id = $1', [1]);
      assert.deepEqual(rows, [{ contact: { email: '[EMAIL]', tier: 3, tags: ['vip'] }, meta: { seen_from: '[IP_ADDRESS]' }, notes: 'reach [EMAIL] or [PHONE]' }]);
      // Binary results: bigint and inet are decoded to be scanned; a value carrying an entity is NULL.
      const binary = await c.query({ text: 'select card, last_ip, notes from customers order by id', binary: true } as pg.QueryConfig);
      assert.equal(binary.rows[0].card, null);
      assert.equal(binary.rows[0].last_ip, null);
      assert.equal(Buffer.from(binary.rows[0].notes).toString(), 'reach [EMAIL] or [PHONE]');
      assert.notEqual(binary.rows[1].card, null, 'a number that is no entity passes');
    } finally {
      await c.end();
    }
  });

  test("a policy decision's obligations.mask adds a profile for one group only", async () => {
    const c = await client('carl', contractor);
    try {
      const { rows } = await c.query('select phone from customers order by id');
      assert.deepEqual(rows, [{ phone: '[PHONE]' }, { phone: '[PHONE]' }]);
    } finally {
      await c.end();
    }
    const a = await client('ana', analyst);
    try {
      assert.deepEqual((await a.query('select phone from customers where id = 2')).rows, [{ phone: '+1 212-555-0187' }]);
    } finally {
      await a.end();
    }
  });

  test('a request profile masks the recorded statement; the database stores what was sent; the record counts what was masked', async () => {
    const c = await client('ana', analyst);
    try {
      await c.query("insert into customers (id, name, notes) values (3, 'Cy', 'write to cy@example.org')");
      await c.query('update customers set notes = $1 where id = $2', ['now dee@example.net', 3]);
      assert.deepEqual((await c.query('select notes from customers where id = 3')).rows, [{ notes: 'now [EMAIL]' }]);
    } finally {
      await c.end();
    }
    const direct = new pg.Client({ connectionString: pgGateway.directUrl });
    await direct.connect();
    assert.deepEqual((await direct.query('select notes from customers where id = 3')).rows, [{ notes: 'now dee@example.net' }]);
    await direct.end();

    await new Promise((r) => setTimeout(r, 300));
    const exchanges = async (operation: string) => JSON.parse((await gateway.cli(['sessions', 'list', '--connection', 'crm', '--operation', operation, '--json'])).stdout) as { id: string }[];
    const show = async (id: string) => JSON.parse((await gateway.cli(['sessions', 'show', id, '--json'])).stdout) as { request: { body: string; promptText: string | null }; maskCounts: Record<string, number> | null };
    const [insert] = await exchanges('sql.insert');
    const inserted = await show(insert!.id);
    assert.equal(JSON.parse(inserted.request.body).sql, "insert into customers (id, name, notes) values (3, 'Cy', 'write to [EMAIL]')");
    assert.equal(inserted.request.promptText, "insert into customers (id, name, notes) values (3, 'Cy', 'write to [EMAIL]')");
    assert.deepEqual(inserted.maskCounts, { EMAIL: 1 });
    const [update] = await exchanges('sql.update');
    assert.deepEqual(JSON.parse((await show(update!.id)).request.body).params, ['now [EMAIL]', '3']);
    // A search for the value finds nothing: the recording never held it.
    const { stdout } = await gateway.cli(['sessions', 'list', '--text', 'dee@example.net', '--json']);
    assert.deepEqual(JSON.parse(stdout), []);
    const { stdout: found } = await gateway.cli(['sessions', 'list', '--text', 'write', '--json']);
    assert.deepEqual((JSON.parse(found) as { id: string }[]).map((e) => e.id), [insert!.id]);
    const selects = await exchanges('sql.select');
    const counted = await Promise.all(selects.map(async (s) => (await show(s.id)).maskCounts));
    assert.ok(counted.some((counts) => counts?.EMAIL === 1 && counts?.PHONE === 1), `a select's record counts the entities masked in its rows: ${JSON.stringify(counted)}`);
  });
});
