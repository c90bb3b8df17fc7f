// A private PostgreSQL cluster for tests that need what the shared server (trust auth,
// no TLS) cannot give: password authentication (SCRAM-SHA-256, md5, cleartext) and TLS.
// initdb + postgres on a free port in a temp dir, run as the `postgres` OS user when
// the tests run as root (PostgreSQL refuses root). Returns { skip } when the server
// binaries are missing.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PrivatePostgres {
  readonly port: number;
  /** Roles: scram_user / md5_user / clear_user with passwords pw-scram / pw-md5 / pw-clear. */
  stop(): Promise<void>;
}

const bin = ['/usr/lib/postgresql/17/bin', '/usr/lib/postgresql/16/bin', '/usr/lib/postgresql/15/bin'].find((d) => existsSync(join(d, 'initdb')));

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise((r) => server.close(r));
  return port;
}

export async function startPrivatePostgres(tls: { cert: string; key: string }): Promise<PrivatePostgres | { skip: string }> {
  if (!bin) return { skip: 'PostgreSQL server binaries (initdb) not found under /usr/lib/postgresql' };
  const root = process.getuid?.() === 0;
  const asUser = (cmd: string, args: string[]) => (root ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]) as [string, string[]];
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-pg-'));
  const data = join(dir, 'data');
  const uid = root ? Number(execFileSync('id', ['-u', 'postgres']).toString()) : undefined;
  const gid = root ? Number(execFileSync('id', ['-g', 'postgres']).toString()) : undefined;
  if (root) chownSync(dir, uid!, gid!);
  execFileSync(...asUser(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']), { stdio: 'ignore' });
  writeFileSync(join(data, 'server.crt'), tls.cert);
  writeFileSync(join(data, 'server.key'), tls.key);
  chmodSync(join(data, 'server.key'), 0o600);
  if (root) {
    chownSync(join(data, 'server.crt'), uid!, gid!);
    chownSync(join(data, 'server.key'), uid!, gid!);
  }
  writeFileSync(
    join(data, 'pg_hba.conf'),
    ['local all all trust', 'host all scram_user 127.0.0.1/32 scram-sha-256', 'host all md5_user 127.0.0.1/32 md5', 'host all clear_user 127.0.0.1/32 password', 'host all all 127.0.0.1/32 reject', ''].join('\n'),
  );
  const port = await freePort();
  const child: ChildProcess = spawn(...asUser(join(bin, 'postgres'), ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'ssl=on', '-c', 'fsync=off']), { stdio: 'ignore' });
  const psql = (sql: string) => execFileSync('psql', ['-X', '-q', '-h', dir, '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-c', sql], { stdio: 'pipe' });
  for (let i = 0; ; i++) {
    try {
      psql('select 1');
      break;
    } catch (error) {
      if (i > 100) throw error;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  psql("create role scram_user login password 'pw-scram'");
  psql("set password_encryption = 'md5'; create role md5_user login password 'pw-md5'");
  psql("create role clear_user login password 'pw-clear'");
  return {
    port,
    async stop() {
      // runuser does not pass signals on: pg_ctl stops the server itself (fast shutdown).
      const exited = child.exitCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', r));
      execFileSync(...asUser(join(bin, 'pg_ctl'), ['-D', data, 'stop', '-m', 'fast', '-w']), { stdio: 'ignore' });
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
