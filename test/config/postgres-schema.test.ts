import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, parseConfig } from '../../src/config/index.js';
import { buildPostgresConnections } from '../../src/server/build-postgres-connections.js';

const env = { PG_PASSWORD: 'pw' };
const connection = (fields: string) => `connections:\n  - { name: warehouse, type: postgres, ${fields} }\n`;
const valid = 'listen: { port: 6432 }, target: "postgres://db.internal:5433/warehouse", credential: { user: gatehouse, secret: "${PG_PASSWORD}" }, access: { groups: [analysts] }';

function issuesOf(source: string): readonly string[] {
  try {
    parseConfig(source, 'gatehouse.yaml', env);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.issues;
  }
  assert.fail('expected the config to be refused');
}

describe('config: type postgres connections', () => {
  test('defaults, and what the listener is built from', () => {
    const config = parseConfig(connection(`${valid}, masking: { columns: { Email: redact } }`), 'gatehouse.yaml', env);
    const [c] = buildPostgresConnections(config);
    assert.deepEqual(
      { ...c, masking: undefined },
      {
        name: 'warehouse',
        listen: { host: '127.0.0.1', port: 6432 },
        serverTls: undefined,
        allowPlaintext: false,
        target: { host: 'db.internal', port: 5433, database: 'warehouse', user: 'gatehouse', password: 'pw', tls: { mode: 'verify-full', ca: undefined }, connectTimeoutMs: 10_000, maxMessageBytes: 1024 ** 3 },
        maxRows: undefined,
        statementTimeoutMs: undefined,
        maxMessageBytes: 1024 * 1024,
        masking: undefined,
        loginTimeoutMs: 30_000,
      },
    );
    assert.deepEqual([...c!.masking.columns], [['email', 'redact']]);
  });

  test('security: a password in the target URL is refused (it belongs in credential.secret)', () => {
    assert.deepEqual(issuesOf(connection(valid.replace('postgres://db.internal', 'postgres://u:p@db.internal'))), ['connections[0].target: must not carry a user or password: put them in credential']);
  });

  test('security: a literal credential secret is refused', () => {
    assert.deepEqual(issuesOf(connection(valid.replace('"${PG_PASSWORD}"', 'hunter2'))), ['connections[0].credential.secret: a secret must be a reference (${ENV_VAR} or file:/path), not a literal value']);
  });

  test('a target without a database, a bad TLS mode and an unknown masking operator are refused with their paths', () => {
    assert.deepEqual(issuesOf(connection(`${valid.replace('/warehouse', '')}, tls: { mode: prefer }, masking: { columns: { ssn: hash } }`)), [
      'connections[0].target: must name the database: postgres://host:port/dbname',
      'connections[0].tls.mode: Invalid option: expected one of "disable"|"require"|"verify-full"',
      'connections[0].masking.columns.ssn: Invalid option: expected one of "redact"|"partial"|"null"',
    ]);
  });
});
