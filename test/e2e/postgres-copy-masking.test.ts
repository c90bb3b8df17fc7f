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
import { copy } from '../helpers/pg-copy.js';
import { createTestPostgresDatabase } from '../helpers/databases.js';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const run = promisify(execFile);
const database = await createTestPostgresDatabase();
const skip = 'skip' in database ? database.skip : undefined;

describe('COPY … TO STDOUT on a PostgreSQL connection with column masking, end to end', { skip }, () => {
  const db = database as { url: string; drop(): Promise<void> };
  let gateway: GatewayProcess;
  let direct: pg.Client;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    const url = new URL(db.url);
    const dbname = url.pathname.slice(1);
    direct = new pg.Client({ connectionString: db.url });
    await direct.connect();
    await direct.query(`create table patients (id int primary key, full_name text, email text, dob date, phone text, notes text);
      insert into patients values
        (1, 'Ann Lee', 'ann@example.com', '1980-02-03', '+1 555 010 2233', e'allergic to "penicillin",\\tsee chart'),
        (2, 'Bob O''Brien', null, '1975-06-07', '555-0199', e'line one\\nline two \\\\ done');
      create table patients_back (like patients)`);
    gateway = await startGatewayProcess(
      `gateway:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: 0 }
  groups: [admins]
log: { level: info }
connections:
  - name: clinic
    type: postgres
    listen: { host: 127.0.0.1, port: 0 }
    allowPlaintext: true
    target: postgres://${url.host}/${dbname}
    credential: { user: postgres, secret: "\${PG_SECRET}" }
    tls: { mode: disable }
    masking: { columns: { email: redact, dob: "null", phone: partial } }
    access: { groups: [data-engineers] }
policy:
  rules:
    - { name: engineers-read, effect: allow, match: { groups: [data-engineers], connections: [clinic] } }
`,
      { env: { PG_SECRET: 'unused-with-trust-auth' } },
    );
    const key = await gateway.createKey('dana', ['data-engineers']);
    const port = await gateway.postgresPort('clinic');
    env = { ...process.env, PGPASSWORD: key, PGHOST: '127.0.0.1', PGPORT: String(port), PGUSER: 'dana', PGDATABASE: dbname, PGSSLMODE: 'disable' };
  });

  after(async () => {
    await direct?.end();
    await gateway?.stop();
    await db.drop();
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

  test('binary format stays refused, with why', async () => {
    const refused = await run('psql', ['-X', '-c', '\\copy patients to stdout with (format binary)'], { env }).catch((error: { stderr: string }) => error);
    assert.match((refused as { stderr: string }).stderr, /COPY … TO STDOUT on a connection with column masking rules is masked column by column, but its rows cannot be masked: it is in binary format/);
  });
});
