// Throwaway stores for tests, one per dialect: a SQLite file in a fresh temp dir, and a
// uniquely named PostgreSQL database created on the server at GATEHOUSE_TEST_POSTGRES_URL
// (default postgres://postgres@127.0.0.1:5432/postgres) and dropped afterwards.
//
// Outside CI an unreachable PostgreSQL skips the PostgreSQL variant, saying what is
// missing; with CI=true it fails instead, so a CI job cannot go green without it.
//
//   for (const dialect of await testDialects()) {
//     describe(`… on ${dialect.name}`, { skip: dialect.skip }, () => {
//       let database: TestDatabase;
//       beforeEach(async () => { database = await dialect.create(); });
//       afterEach(() => database.cleanup());
//       test('…', async () => { const store = await openStore(database.config); … });
//     });
//   }

import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { DialectName, StoreConfig } from '../../src/store/index.js';

export const defaultTestPostgresUrl = 'postgres://postgres@127.0.0.1:5432/postgres';

export function testPostgresAdminUrl(): string {
  return process.env.GATEHOUSE_TEST_POSTGRES_URL || defaultTestPostgresUrl;
}

const inCi = (): boolean => process.env.CI === 'true';

export interface TestDatabase {
  readonly config: StoreConfig;
  /** Removes the database (SQLite dir, or DROP DATABASE … WITH (FORCE)). Close stores first when you can. */
  cleanup(): Promise<void>;
}

export interface TestDialect {
  readonly name: DialectName;
  /** A reason to skip this dialect here, for `describe(…, { skip })`; undefined when it runs. */
  readonly skip: string | undefined;
  /** A fresh, empty database for one test (or one suite). */
  create(): Promise<TestDatabase>;
}

/** A fresh SQLite file in its own temp directory. */
export async function createTestSqliteDatabase(): Promise<TestDatabase> {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-test-'));
  return {
    config: { sqlite: { path: join(dir, 'gatehouse.db') } },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

async function adminQuery(adminUrl: string, text: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end().catch(() => undefined);
  }
}

function describeError(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return error.errors.map(describeError).join('; ');
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}

function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparseable GATEHOUSE_TEST_POSTGRES_URL>';
  }
}

/**
 * Creates an empty, uniquely named PostgreSQL database for a test (or a gateway under
 * test) and returns its URL; `drop()` removes it, closing any connections still open.
 * When the server is unreachable it returns `{ skip }` with the reason, except under
 * CI=true, where it throws.
 */
export async function createTestPostgresDatabase(): Promise<{ url: string; drop(): Promise<void> } | { skip: string }> {
  const adminUrl = testPostgresAdminUrl();
  const name = `gatehouse_test_${process.pid}_${randomBytes(6).toString('hex')}`;
  try {
    // template0 never has connections, so parallel test files cannot trip over each other.
    await adminQuery(adminUrl, `create database "${name}" template template0`);
  } catch (error) {
    const reason = `PostgreSQL not reachable at ${redact(adminUrl)}: ${describeError(error)}; set GATEHOUSE_TEST_POSTGRES_URL`;
    if (inCi()) throw new Error(`${reason} (required because CI=true)`, { cause: error });
    return { skip: reason };
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    url: url.toString(),
    async drop() {
      if (dropped) return;
      dropped = true;
      await adminQuery(adminUrl, `drop database if exists "${name}" with (force)`);
    },
  };
}

let postgresProbe: Promise<string | undefined> | undefined;

/** undefined when PostgreSQL is usable, else why not. Throws under CI=true. */
function probePostgres(): Promise<string | undefined> {
  postgresProbe ??= (async () => {
    const created = await createTestPostgresDatabase();
    if ('skip' in created) return created.skip;
    await created.drop();
    return undefined;
  })();
  return postgresProbe;
}

/**
 * Both dialects, PostgreSQL last. Under CI=true an unreachable PostgreSQL is not
 * skipped: its `create()` throws, so every PostgreSQL test fails with the reason.
 */
export async function testDialects(): Promise<TestDialect[]> {
  let skip: string | undefined;
  let failure: unknown;
  try {
    skip = await probePostgres();
  } catch (error) {
    failure = error;
  }
  return [
    { name: 'sqlite', skip: undefined, create: createTestSqliteDatabase },
    {
      name: 'postgres',
      skip,
      async create() {
        if (failure !== undefined) throw failure;
        const created = await createTestPostgresDatabase();
        if ('skip' in created) throw new Error(created.skip);
        return { config: { postgres: { url: created.url } }, cleanup: () => created.drop() };
      },
    },
  ];
}
