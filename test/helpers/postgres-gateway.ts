// A `gatehouse` process (dist/) with one postgres connection in front of a fresh database
// on the machine's PostgreSQL, for end-to-end tests: the database's setup, the gateway's
// YAML (plaintext listener, trust authentication's unused secret), the process started
// before a suite's tests and stopped after them with the database dropped, and how
// clients reach it (node-postgres config, psql's environment).
//
//   const database = await createTestPostgresDatabase();
//   describe('…', { skip: 'skip' in database ? database.skip : undefined }, () => {
//     let pgGateway: PostgresGateway;
//     withPostgresGateway(database, { name: 'warehouse', connection: '    access: { groups: [analysts] }' }, (started) => (pgGateway = started));
//     …
//   });

import { after, before } from 'node:test';
import pg from 'pg';
import { startGatewayProcess, type GatewayProcess } from './gateway-process.js';

export interface PostgresGatewayOptions {
  /** The connection's name. */
  readonly name: string;
  /** More keys of the connection: YAML lines indented 4 spaces (`access`, `masking`, `limits` …). */
  readonly connection: string;
  /** Top-level sections besides `connections` (`policy`, `approvals`, `masking` …): YAML. */
  readonly sections?: string;
  /** SQL run on the database, directly, before the gateway starts. */
  readonly setupSql?: string;
}

export interface PostgresGateway {
  readonly gateway: GatewayProcess;
  /** The connection's listener. */
  readonly port: number;
  /** The database's name (the one clients name through the gateway). */
  readonly database: string;
  /** URL of the database itself (direct, for setup and checks). */
  readonly directUrl: string;
  /** node-postgres config for the gateway, as `user` with `password` (an API key). */
  clientConfig(user: string, password: string, extra?: pg.ClientConfig): pg.ClientConfig;
  /** psql's (and pgbench's) environment for the gateway, as `user` with `password`. */
  psqlEnv(user: string, password: string): NodeJS.ProcessEnv;
}

/** The gateway's YAML: one postgres connection `name` in front of `databaseUrl`, and `sections`. */
export function postgresGatewayYaml(databaseUrl: string, options: Pick<PostgresGatewayOptions, 'name' | 'connection' | 'sections'>): string {
  const url = new URL(databaseUrl);
  return `gateway:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: 0 }
  groups: [admins]
log: { level: info }
connections:
  - name: ${options.name}
    type: postgres
    listen: { host: 127.0.0.1, port: 0 }
    allowPlaintext: true
    target: postgres://${url.host}${url.pathname}
    credential: { user: postgres, secret: "\${PG_SECRET}" }
    tls: { mode: disable }
${options.connection}
${options.sections ?? ''}`;
}

/**
 * A suite's before and after around a gateway in front of `database` (created with
 * createTestPostgresDatabase; a `skip` one starts nothing): `ready` gets it once started;
 * after the suite's tests the process stops and the database is dropped, also when the
 * start failed. Hooks run in the order registered: an `after` that must run before the
 * stop (ending the suite's clients) is registered before this call.
 */
export function withPostgresGateway(database: { url: string; drop(): Promise<void> } | { skip: string }, options: PostgresGatewayOptions, ready: (started: PostgresGateway) => void): void {
  let gateway: GatewayProcess | undefined;
  before(async () => {
    if ('skip' in database) return;
    if (options.setupSql !== undefined) {
      const direct = new pg.Client({ connectionString: database.url });
      await direct.connect();
      try {
        await direct.query(options.setupSql);
      } finally {
        await direct.end();
      }
    }
    gateway = await startGatewayProcess(postgresGatewayYaml(database.url, options), { env: { PG_SECRET: 'unused-with-trust-auth' } });
    const port = await gateway.postgresPort(options.name);
    const name = new URL(database.url).pathname.slice(1);
    ready({
      gateway,
      port,
      database: name,
      directUrl: database.url,
      clientConfig: (user, password, extra = {}) => ({ host: '127.0.0.1', port, user, password, database: name, ...extra }),
      psqlEnv: (user, password) => ({ ...process.env, PGPASSWORD: password, PGHOST: '127.0.0.1', PGPORT: String(port), PGUSER: user, PGDATABASE: name, PGSSLMODE: 'disable' }),
    });
  });
  after(async () => {
    if ('skip' in database) return;
    await gateway?.stop();
    await database.drop();
  });
}
