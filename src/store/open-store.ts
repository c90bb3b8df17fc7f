// Opens the configured store (SQLite file or PostgreSQL), runs migrations, and hands
// back one Kysely instance. Every concern reads and writes through it.

import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, type MigrationProvider } from 'kysely';
import pg from 'pg';
import { buildMigrations, type DialectName } from './migrations.js';
import type { Database } from './schema.js';

export type StoreConfig = { readonly sqlite: { readonly path: string } } | { readonly postgres: { readonly url: string; readonly schema?: string | undefined } };

export interface Store {
  readonly db: Kysely<Database>;
  readonly dialect: DialectName;
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
    mkdirSync(dirname(config.sqlite.path), { recursive: true });
    const database = new SQLite(config.sqlite.path);
    // WAL lets the CLI read while the gateway writes; NORMAL survives a process crash
    // (a committed transaction is in the WAL) at a fraction of FULL's fsync cost.
    database.pragma('journal_mode = WAL');
    database.pragma('synchronous = NORMAL');
    database.pragma('busy_timeout = 5000');
    db = new Kysely<Database>({ dialect: new SqliteDialect({ database }) });
    dialect = 'sqlite';
  } else {
    const pool = new pg.Pool({ connectionString: config.postgres.url, max: 10, types: pgTypes });
    if (config.postgres.schema) {
      const schema = config.postgres.schema;
      pool.on('connect', (client) => {
        client.query(`set search_path to "${schema}"`).catch(() => undefined);
      });
    }
    pool.on('error', () => undefined); // idle client errors surface on the next query
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    dialect = 'postgres';
  }
  if (options.migrate !== false) {
    try {
      await migrate(db, dialect);
    } catch (error) {
      await db.destroy();
      throw error;
    }
  }
  return { db, dialect, close: () => db.destroy() };
}

export async function migrate(db: Kysely<any>, dialect: DialectName): Promise<void> {
  const provider: MigrationProvider = { getMigrations: async () => buildMigrations(dialect) };
  const migrator = new Migrator({ db, provider, migrationTableName: 'gatehouse_migrations', migrationLockTableName: 'gatehouse_migrations_lock' });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    throw new StoreError(`store migration ${failed ?? ''} failed: ${(error as Error).message}`, { cause: error });
  }
}
