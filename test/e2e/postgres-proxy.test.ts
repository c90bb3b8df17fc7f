// End to end: the real `gatehouse` process with a `type: postgres` connection in its
// config, an API key made with the CLI, and real clients: psql and pgbench (init,
// select-only, TPC-B-like), then `gatehouse sessions show` on the recorded session.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { createTestPostgresDatabase } from '../helpers/databases.js';
import type { GatewayProcess } from '../helpers/gateway-process.js';
import { withPostgresGateway, type PostgresGateway } from '../helpers/postgres-gateway.js';

const run = promisify(execFile);

/** Runs `command` with `input` on its stdin; resolves with what it wrote, whatever its exit code. */
function runWithInput(command: string, args: readonly string[], input: string, env: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(command, args, { env }, (error, stdout, stderr) => (error && typeof error.code !== 'number' ? reject(error) : resolve({ stdout, stderr })));
    child.stdin!.end(input);
  });
}

const database = await createTestPostgresDatabase();
const pgbenchMissing = await run('pgbench', ['--version']).then(
  () => undefined,
  () => 'pgbench is not installed (it comes with postgresql-contrib / postgresql-client); tests must not install it',
);
const skip = 'skip' in database ? database.skip : undefined;

describe('PostgreSQL connection, end to end', { skip }, () => {
  let pgGateway: PostgresGateway;
  let gateway: GatewayProcess;
  let token: string;

  withPostgresGateway(
    database,
    {
      name: 'warehouse',
      connection: `    limits: { maxRows: 100000, statementTimeout: 60s }
    masking: { columns: { filler: redact } }
    access: { groups: [analysts] }`,
      sections: `policy:
  rules:
    - { name: deny-notify, effect: deny, message: No NOTIFY here., match: { operations: [sql.notify] } }
    - { name: deny-secret, effect: deny, message: Secret tables are off limits., when: [{ fact: tables, includes: ['secret.*'] }] }
`,
    },
    (started) => {
      pgGateway = started;
      gateway = started.gateway;
    },
  );
  before(async () => {
    token = await gateway.createKey('bench-bot', ['analysts'], ['--kind', 'agent']);
  });

  const env = () => pgGateway.psqlEnv('bench-bot', token);

  test('the start log names the postgres connection', () => {
    assert.match(gateway.logs(), /"connections":\["warehouse"\],"policyVersion":"[0-9a-f]+","store":"sqlite","msg":"gateway started"/);
  });

  test('psql -c through the gateway process', async () => {
    const { stdout } = await run('psql', ['-X', '-At', '-c', 'select current_user, 1 + 1'], { env: env() });
    assert.equal(stdout, 'postgres|2\n');
  });

  test('pgbench -i, then select-only and TPC-B-like runs through the proxy', { skip: pgbenchMissing, timeout: 180_000 }, async () => {
    const init = await run('pgbench', ['-i', '-s', '1', '-q'], { env: env() });
    assert.match(init.stderr, /done in/);
    const selectOnly = await run('pgbench', ['-S', '-c', '2', '-j', '1', '-t', '200', '-n'], { env: env() });
    assert.match(selectOnly.stdout, /number of transactions actually processed: 400\/400/);
    assert.match(selectOnly.stdout, /number of failed transactions: 0 /);
    const tpcb = await run('pgbench', ['-c', '2', '-j', '1', '-t', '50', '-n'], { env: env() });
    assert.match(tpcb.stdout, /number of transactions actually processed: 100\/100/);
    const extended = await run('pgbench', ['-S', '-M', 'extended', '-c', '2', '-j', '1', '-t', '100', '-n'], { env: env() });
    assert.match(extended.stdout, /number of transactions actually processed: 200\/200/);
    // pgbench_accounts.filler is masked by the column rule: a label in place of the text.
    const { stdout } = await run('psql', ['-X', '-At', '-c', 'select filler from pgbench_accounts limit 1'], { env: env() });
    assert.equal(stdout, '[FILLER]\n');
  });

  test('psql: set_config(search_path) is followed, so a table made since in the new schema is refused by its rule', async () => {
    await run('psql', ['-X', '-c', 'create schema secret; create table accounts (id int); insert into accounts values (1)'], { env: env() });
    // One psql session: it learns `accounts` is public's, then another session makes secret.accounts.
    const script = `select 'public:' || id from accounts;
\\! psql -X -q -d '${pgGateway.directUrl}' -c 'create table secret.accounts (id int); insert into secret.accounts values (42)'
select set_config('search_path', 'secret', false);
select 'read:' || id from accounts;
`;
    const { stdout, stderr } = await runWithInput('psql', ['-X', '-At'], script, env());
    assert.match(stdout, /^public:1$/m);
    assert.match(stdout, /^secret$/m);
    assert.doesNotMatch(stdout, /read:/);
    assert.match(stderr, /ERROR: {2}Secret tables are off limits\. \(rule: deny-secret\)/);
  });

  test('gatehouse sessions show lists the statements of a PostgreSQL session', async () => {
    await run('psql', ['-X', '-At', '-c', "select 'marker-42'"], { env: env() });
    await new Promise((r) => setTimeout(r, 300));
    const { stdout: list } = await gateway.cli(['sessions', 'list', '--operation', 'sql.session', '--limit', '1', '--json']);
    const [session] = JSON.parse(list) as { id: string }[];
    assert.ok(session);
    const { stdout } = await gateway.cli(['sessions', 'show', session.id]);
    assert.match(stdout, /request {3}warehouse {2}sql\.session {2}Startup/);
    assert.match(stdout, /identity {2}key:bench-bot \[agent\]/);
    assert.match(stdout, /statements 1 recorded, 1 sent to the database/);
    assert.match(stdout, /sql\.select {2}allow {2}SELECT 1 \(1 rows\)/);
    assert.match(stdout, /select 'marker-42'/);
  });

  test('gatehouse sessions show counts a refused statement and names its rule', async () => {
    await run('psql', ['-X', '-At', '-c', "select 'marker-43'", '-c', 'notify somewhere'], { env: env() }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 300));
    const { stdout: list } = await gateway.cli(['sessions', 'list', '--operation', 'sql.session', '--limit', '1', '--json']);
    const [session] = JSON.parse(list) as { id: string }[];
    const { stdout } = await gateway.cli(['sessions', 'show', session!.id]);
    assert.match(stdout, /statements 2 recorded, 1 sent to the database/);
    assert.match(stdout, /sql\.notify {2}deny \(deny-notify\) {2}error access_denied/);
    const { stdout: denied } = await gateway.cli(['sessions', 'list', '--rule', 'deny-notify', '--json']);
    assert.equal((JSON.parse(denied) as unknown[]).length, 1);
  });
});
