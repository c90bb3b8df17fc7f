// Regression: on a connection with a column rule on `name` (a customers table's), psql's
// `\d`, `\dt`, `\dn`, `\l` listed every relation as "[NAME]": column rules match result
// column names, and psql names its listing's column "Name". A SELECT that names only
// pg_catalog and information_schema relations, qualified, and runs nothing unseen, carries
// no user table's value: its column rules no longer apply (masking profiles still do).
// A user table, or a bare catalog name (`pg_class` could be a table on the search_path),
// is masked as before.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, test } from 'node:test';
import type pg from 'pg';
import { startTestProxy, withProxyClients, type TestProxy } from '../../helpers/postgres-proxy.js';

const columns = new Map([['name', 'redact'], ['email', 'redact']] as const);
const proxyOrSkip = await startTestProxy({ masking: { columns } });
const skip = 'skip' in proxyOrSkip ? proxyOrSkip.skip : undefined;

describe('PostgreSQL proxy: column rules and reads of the system catalogs', { skip }, () => {
  const proxy = proxyOrSkip as TestProxy;
  let c: pg.Client;
  withProxyClients(proxy, "create table customers (id int, name text, email text); insert into customers values (1, 'Ann Lee', 'ann@example.com')", (clients) => ({ client: c } = clients));

  test("psql's \\dt and \\d list names as they are", async () => {
    const run = await psql(proxy, ['-c', '\\dt', '-c', '\\d customers']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^ public \| customers \| table \| /m);
    assert.match(run.stdout, /Table "public\.customers"/);
    assert.doesNotMatch(run.stdout, /\[NAME\]/);
  });

  test('a qualified catalog read is not masked by name, simple and extended; a user table and a bare catalog name are', async () => {
    const catalog = 'select c.relname as "Name", n.nspname as name from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace where c.relname = $1';
    assert.deepEqual((await c.query(catalog.replace('$1', "'customers'"))).rows, [{ Name: 'customers', name: 'public' }]);
    assert.deepEqual((await c.query(catalog, ['customers'])).rows, [{ Name: 'customers', name: 'public' }]);
    assert.deepEqual((await c.query('select name, email from customers')).rows, [{ name: '[NAME]', email: '[EMAIL]' }]);
    assert.deepEqual((await c.query("select relname as name from pg_class where relname = 'customers'")).rows, [{ name: '[NAME]' }]);
    // A user table beside the catalog: masked.
    assert.deepEqual((await c.query("select u.name from pg_catalog.pg_class c, customers u where c.relname = 'customers'")).rows, [{ name: '[NAME]' }]);
  });
});

function psql(proxy: TestProxy, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('psql', ['-X', '-P', 'pager=off', '-h', '127.0.0.1', '-p', String(proxy.port), '-U', 'agent', '-d', proxy.database, ...args], { env: { ...process.env, PGPASSWORD: proxy.token, PGSSLMODE: 'disable' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end();
  });
}
