// The gateway config both PostgreSQL benches run (bench/postgres.ts, bench/postgres-ab.ts):
// one `type: postgres` connection with inspection, a masking rule, limits and, unless
// turned off, recording — as in production. And a free port for its listener.

import { createServer } from 'node:net';

/** A port free now, for a postgres listener (logs stay at warn, so it is not read from them). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface PostgresBenchConfig {
  /** The listener's port (a free one, picked by the bench). */
  readonly port: number;
  /** host:port of the database, and its name. */
  readonly databaseHost: string;
  readonly database: string;
  readonly user: string;
  readonly recording: boolean;
}

export function postgresBenchConfig(c: PostgresBenchConfig): string {
  return `gateway:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: 0 }
  groups: [admins]
log: { level: warn }
recording: { enabled: ${c.recording} }
connections:
  - name: bench
    type: postgres
    listen: { host: 127.0.0.1, port: ${c.port} }
    allowPlaintext: true
    target: postgres://${c.databaseHost}/${c.database}
    credential: { user: ${c.user}, secret: "\${PG_SECRET}" }
    tls: { mode: disable }
    limits: { maxRows: 100000, statementTimeout: 30s }
    masking: { columns: { email: redact } }
    access: { groups: [bench] }
`;
}
