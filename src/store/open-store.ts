// Opens the configured store (SQLite file or PostgreSQL), runs migrations, and hands
// back one Kysely instance. Every concern reads and writes through it.

import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, type MigrationProvider } from 'kysely';
import pg from 'pg';
import { buildMigrations, type DialectName } from './migrations.js';
import type { Database } from './schema.js';
import { tuneSqliteConnection } from './sqlite-connection.js';

export type StoreConfig = { readonly sqlite: { readonly path: string } } | { readonly postgres: { readonly url: string; readonly schema?: string | undefined } };

export interface Store {
  readonly db: Kysely<Database>;
  readonly dialect: DialectName;
  /** The SQLite file (undefined on PostgreSQL), for writers that open their own connection. */
  readonly sqlitePath: string | undefined;
  close(): Promise<void>;
}

export class StoreError extends Error {}

// PostgreSQL int8 (OID 20) arrives as a string by default; our int8 values are epoch
// milliseconds and byte counts, well inside Number's exact range.
const pgTypes = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 20) return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format as 'text');
  },
};

export async function openStore(config: StoreConfig, options: { migrate?: boolean } = {}): Promise<Store> {
  let db: Kysely<Database>;
  let dialect: DialectName;
  if ('sqlite' in config) {
    // The file holds prompts and answers, like the record journal beside it (0700/0600):
    // a new one is created for its owner only (SQLite gives -wal/-shm the file's mode).
    let database: SQLite.Database;
    try {
      mkdirSync(dirname(config.sqlite.path), { recursive: true, mode: 0o700 });
      try {
        closeSync(openSync(config.sqlite.path, 'wx', 0o600));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      database = new SQLite(config.sqlite.path);
    } catch (error) {
      throw sqliteOpenError(config.sqlite.path, error);
    }
    // WAL lets the CLI read while the gateway writes (the per-connection settings are
    // in sqlite-connection.ts). busy_timeout first: switching to WAL itself needs the lock another process may hold.
    database.pragma('busy_timeout = 5000');
    // Switching a new file to WAL needs an exclusive lock, for which SQLite may answer
    // "locked" at once when other processes open the same new file: retry briefly.
    for (let attempt = 1; ; attempt++) {
      try {
        database.pragma('journal_mode = WAL');
        break;
      } catch (error) {
        const code = (error as { code?: string }).code ?? '';
        if (!code.startsWith('SQLITE_BUSY') || attempt >= 50) {
          database.close();
          throw error;
        }
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20 * Math.min(attempt, 5));
      }
    }
    tuneSqliteConnection(database, { busyTimeoutMs: 5000 });
    cachePreparedStatements(database);
    db = new Kysely<Database>({ dialect: new SqliteDialect({ database }) });
    dialect = 'sqlite';
  } else {
    const schema = config.postgres.schema;
    const pool = new pg.Pool({
      connectionString: config.postgres.url,
      max: 10,
      // A database host that does not answer (dropped packets, not a refusal) fails a
      // query after this long instead of hanging it, and the caller with it.
      connectionTimeoutMillis: 10_000,
      types: pgTypes,
      // The schema name is validated by the config schema ([a-z_][a-z0-9_]*).
      ...(schema ? { options: `-c search_path=${schema}` } : {}),
    });
    pool.on('error', () => undefined); // idle client errors surface on the next query
    // pg-pool listens for errors only on idle clients: one checked out (a query or a
    // transaction running) whose connection drops emits 'error' with no listener, which
    // would kill the process. The query it ran fails with the same error anyway.
    pool.on('connect', (client) => client.on('error', () => undefined));
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    dialect = 'postgres';
  }
  if (options.migrate !== false) {
    try {
      await migrate(db, dialect, 'postgres' in config ? config.postgres.schema : undefined);
    } catch (error) {
      await db.destroy();
      throw error;
    }
  }
  return { db, dialect, sqlitePath: 'sqlite' in config ? config.sqlite.path : undefined, close: () => db.destroy() };
}

/** The operator's to fix (a path, a permission): said in one line, not a stack. */
export function sqliteOpenError(path: string, error: unknown): StoreError {
  const e = error as NodeJS.ErrnoException;
  return new StoreError(`cannot open the SQLite store ${path}: ${e.code && e.syscall ? `${e.code} (${e.syscall} ${e.path ?? ''})`.replace(' )', ')') : e.message}`, { cause: error });
}

/**
 * Kysely prepares every statement anew: reuse the last 256 prepared statements by SQL
 * text. Safe because Kysely runs one query at a time on its single SQLite connection.
 * Also makes every Kysely transaction BEGIN IMMEDIATE (see below).
 */
function cachePreparedStatements(database: SQLite.Database): void {
  const prepare = database.prepare.bind(database);
  const cache = new Map<string, SQLite.Statement>();
  database.prepare = ((text: string) => {
    // Kysely opens a transaction with a plain BEGIN, which takes the write lock only at
    // the first write: a transaction that read first then fails with SQLITE_BUSY_SNAPSHOT
    // if another connection (the recorder's, another process) committed meanwhile, and
    // the busy timeout does not cover that. BEGIN IMMEDIATE waits for the lock up front.
    const source = text === 'begin' ? 'begin immediate' : text;
    let statement = cache.get(source);
    if (statement === undefined) {
      statement = prepare(source);
      cache.set(source, statement);
      if (cache.size > 256) cache.delete(cache.keys().next().value!);
    }
    return statement;
  }) as typeof database.prepare;
}

export async function migrate(db: Kysely<any>, dialect: DialectName, schema?: string): Promise<void> {
  const provider: MigrationProvider = { getMigrations: async () => buildMigrations(dialect) };
  const migrator = new Migrator({
    db,
    provider,
    migrationTableName: 'gatehouse_migrations',
    migrationLockTableName: 'gatehouse_migrations_lock',
    // Migrations are independent of each other and may be added out of name order.
    allowUnorderedMigrations: true,
    ...(schema ? { migrationTableSchema: schema } : {}),
  });
  // PostgreSQL migrations are serialised by the migrator's lock. SQLite has no such
  // lock: when two processes open a new file at once, the loser's migration fails
  // and rolls back, and a retry finds the work done.
  const attempts = dialect === 'sqlite' ? 5 : 1;
  for (let attempt = 1; ; attempt++) {
    const { error, results } = await migrator.migrateToLatest();
    if (!error) return;
    if (attempt < attempts) {
      await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
      continue;
    }
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    // The migration is the first statement: a database that cannot be reached or logged
    // in to failed here, and was reported as a failed migration, which sent operators
    // looking at the schema instead of the network, the role or the database name.
    if (!failed && dialect === 'postgres' && isConnectionFailure(error)) throw new StoreError(`cannot connect to the PostgreSQL store: ${(error as Error).message}`, { cause: error });
    // A rolling upgrade: a newer gateway migrated the store, an older one (or CLI) opens it.
    // Kysely calls that "corrupted migrations"; it is a version mismatch, refused (fail closed).
    const unknown = /previously executed migration (\S+) is missing/.exec((error as Error).message ?? '')?.[1];
    if (unknown) throw new StoreError(`the store was upgraded by a newer version of Gatehouse (it has migration ${unknown}, which this version does not know): run that version or a newer one; a store cannot be downgraded`, { cause: error });
    throw new StoreError(`store migration${failed ? ` ${failed}` : ''} failed: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Socket errors, TLS failures (a certificate not verified with `sslrootcert`, a server
 * without TLS under `sslmode=require`/`verify-full`), and SQLSTATE classes 08
 * (connection), 28 (authorization), 3D000 (no such database).
 */
function isConnectionFailure(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && (/^E[A-Z]+$/.test(code) || code.startsWith('08') || code.startsWith('28') || code === '3D000' || /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|^ERR_TLS|^ERR_SSL/.test(code))) return true;
  return /^(Connection terminated|The server does not support SSL connections)/.test((error as Error).message ?? '');
}
