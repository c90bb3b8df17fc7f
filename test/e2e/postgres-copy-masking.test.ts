// End to end, as a new user met it: on a connection with `masking.columns: { email:
// redact, dob: "null", phone: partial }`, psql's `\copy patients to stdout with csv
// header` and `copy (select full_name, notes from patients) to stdout` were refused
// ("COPY … TO STDOUT is refused on a connection with column masking rules"). Through the
// real `gatehouse` process they now run: masked columns masked, the rest as the database
// sent them, and the export loads back with COPY FROM.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';
import { copy, copyExtended } from '../helpers/pg-copy.js';
import { createTestPostgresDatabase } from '../helpers/databases.js';
import { withPostgresGateway, type PostgresGateway } from '../helpers/postgres-gateway.js';

const run = promisify(execFile);
const database = await createTestPostgresDatabase();
const skip = 'skip' in database ? database.skip : undefined;

describe('COPY … TO STDOUT on a PostgreSQL connection with column masking, end to end', { skip }, () => {
  let pgGateway: PostgresGateway;
  let direct: pg.Client;
  let env: NodeJS.ProcessEnv;

  // Registered first: the direct client ends before the database is dropped.
  after(() => direct?.end());
  withPostgresGateway(
    database,
    {
      name: 'clinic',
      setupSql: `create table patients (id int primary key, full_name text, email text, dob date, phone text, notes text);
        insert into patients values
        (1, 'Ann Lee', 'ann@example.com', '1980-02-03', '+1 555 010 2233', e'allergic to "penicillin",\\tsee chart'),
        (2, 'Bob O''Brien', null, '1975-06-07', '555-0199', e'line one\\nline two \\\\ done');
        create table patients_back (like patients)`,
      connection: `    masking: { columns: { email: redact, dob: "null", phone: partial } }
    access: { groups: [data-engineers] }`,
      sections: `policy:
  rules:
    - { name: engineers-read, effect: allow, match: { groups: [data-engineers], connections: [clinic] } }
`,
    },
    (started) => (pgGateway = started),
  );
  before(async () => {
    direct = new pg.Client({ connectionString: pgGateway.directUrl });
    await direct.connect();
    env = pgGateway.psqlEnv('dana', await pgGateway.gateway.createKey('dana', ['data-engineers']));
  });

  test("psql's \\copy to stdout with csv header: masked, and it loads back with COPY FROM", async () => {
    const { stdout } = await run('psql', ['-X', '-c', '\\copy patients to stdout with csv header'], { env });
    assert.equal(
      stdout,
      'id,full_name,email,dob,phone,notes\n' +
        '1,Ann Lee,[EMAIL],,***********2233,"allergic to ""penicillin"",\tsee chart"\n' +
        '2,Bob O\'Brien,,,****0199,"line one\nline two \\ done"\n',
    );
    await copy(direct, 'copy patients_back from stdin with csv header', stdout);
    assert.deepEqual((await direct.query('select id, full_name, email, dob, phone, notes from patients_back order by id')).rows, [
      { id: 1, full_name: 'Ann Lee', email: '[EMAIL]', dob: null, phone: '***********2233', notes: 'allergic to "penicillin",\tsee chart' },
      { id: 2, full_name: "Bob O'Brien", email: null, dob: null, phone: '****0199', notes: 'line one\nline two \\ done' },
    ]);
  });

  test('a COPY of columns no rule masks is byte for byte what the database sends', async () => {
    const sql = 'copy (select full_name, notes from patients order by id) to stdout';
    const { stdout } = await run('psql', ['-X', '-c', `\\${sql}`], { env });
    assert.equal(stdout, (await copy(direct, sql)).out);
    assert.equal(stdout, "Ann Lee\tallergic to \"penicillin\",\\tsee chart\nBob O'Brien\tline one\\nline two \\\\ done\n");
  });

  test('the same COPY sent with the extended protocol (Parse, Bind, Describe, Execute, Sync) is masked the same, byte for byte', async () => {
    const client = new pg.Client(pgGateway.clientConfig('dana', env.PGPASSWORD!));
    await client.connect();
    try {
      const sql = 'copy patients to stdout with csv header';
      const extended = await copyExtended(client, sql);
      assert.equal(extended.out, (await copy(client, sql)).out);
      assert.match(extended.out, /^1,Ann Lee,\[EMAIL\],,\*{11}2233,/m);
    } finally {
      await client.end();
    }
  });

  test('binary format stays refused, with why', async () => {
    const refused = await run('psql', ['-X', '-c', '\\copy patients to stdout with (format binary)'], { env }).catch((error: { stderr: string }) => error);
    assert.match((refused as { stderr: string }).stderr, /COPY … TO STDOUT on a connection with column masking rules is masked column by column, but its rows cannot be masked: it is in binary format/);
  });
});
