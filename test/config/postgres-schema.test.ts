import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, parseConfig } from '../../src/config/index.js';
import { parseAgentConfig } from '../../src/agent/agent-config.js';
import type { AgentHub } from '../../src/agent/agent-hub.js';
import { buildPostgresConnections } from '../../src/server/build-postgres-connections.js';
import { maskPlannerFromConfig } from '../../src/mask/index.js';

const env = { PG_PASSWORD: 'pw' };
const connection = (fields: string) => `connections:\n  - { name: warehouse, type: postgres, ${fields} }\n`;
const valid = 'listen: { port: 6432 }, allowPlaintext: true, target: "postgres://db.internal:5433/warehouse", credential: { user: gatehouse, secret: "${PG_PASSWORD}" }, access: { groups: [analysts] }';

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
      { ...c, masking: undefined, maskingWith: undefined },
      {
        name: 'warehouse',
        listen: { host: '127.0.0.1', port: 6432 },
        serverTls: undefined,
        allowPlaintext: true,
        target: { host: 'db.internal', port: 5433, database: 'warehouse', user: 'gatehouse', password: 'pw', tls: { mode: 'verify-full', ca: undefined }, connectTimeoutMs: 10_000, maxMessageBytes: 1024 ** 3 },
        maxRows: undefined,
        statementTimeoutMs: undefined,
        maxMessageBytes: 1024 * 1024,
        masking: undefined,
        maskingWith: undefined,
        loginTimeoutMs: 30_000,
      },
    );
    assert.deepEqual([...c!.masking.columns], [['email', 'redact']]);
  });

  test('masking profiles: named in masking.profiles; an unknown one is refused with its path', () => {
    const masking = 'masking: { profiles: { pii: { entities: [EMAIL] } } }';
    const config = parseConfig(`${connection(`${valid}, masking: { profiles: [pii] }`)}\n${masking}\n`, 'gatehouse.yaml', env);
    const [c] = buildPostgresConnections(config, { planner: maskPlannerFromConfig(config.masking) });
    assert.ok(c!.masking.entities, 'the connection scans values with its profile');
    assert.equal(c!.masking.recorded, undefined, 'a profile for answers leaves the recorded statement as sent');
    assert.ok(c!.maskingWith!(['pii']).entities);
    assert.deepEqual(issuesOf(`${connection(`${valid}, masking: { profiles: [pii, nope] }`)}\n${masking}\n`), ['connections[0].masking.profiles[1]: no masking profile named "nope" in masking.profiles']);
  });

  test('security: a password in the target URL is refused (it belongs in credential.secret)', () => {
    assert.deepEqual(issuesOf(connection(valid.replace('postgres://db.internal', 'postgres://u:p@db.internal'))), ['connections[0].target: must not carry a user or password: put them in credential']);
  });

  test('a target that is not a URL at all is a config issue with its path, not a crash', () => {
    assert.deepEqual(issuesOf(connection(valid.replace('postgres://db.internal:5433/warehouse', 'not a url'))), ['connections[0].target: must be a postgres://host:port/dbname URL']);
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

  test('masking.columns: an unquoted null (YAML null) is the null operator, as written', () => {
    const config = parseConfig(connection(`${valid}, masking: { columns: { dob: null, notes: "null", ssn: partial } }`), 'gatehouse.yaml', env);
    assert.deepEqual((config.connections[0] as { masking: { columns: Record<string, string> } }).masking.columns, { dob: 'null', notes: 'null', ssn: 'partial' });
  });

  test('a listener no client could log in to (no certificate, allowPlaintext defaulting to false) is refused', () => {
    const noTls = valid.replace('allowPlaintext: true, ', '');
    const message = 'connections[0]: no client could log in: give the listener a certificate (serverTls, or gateway.tls), or set allowPlaintext: true where the path is trusted (the API key then crosses in clear)';
    assert.deepEqual(issuesOf(connection(noTls)), [message]);
    assert.deepEqual(issuesOf(connection(`${noTls}, allowPlaintext: false`)), [message]);
    assert.doesNotThrow(() => parseConfig(connection(`${noTls}, serverTls: { cert: "\${PG_PASSWORD}", key: "\${PG_PASSWORD}" }`), 'gatehouse.yaml', env));
    assert.doesNotThrow(() => parseConfig(`gateway: { tls: { cert: "\${PG_PASSWORD}", key: "\${PG_PASSWORD}" } }\n${connection(noTls)}`, 'gatehouse.yaml', env));
  });

  test('a credential is required without via', () => {
    assert.deepEqual(issuesOf(connection(valid.replace(', credential: { user: gatehouse, secret: "${PG_PASSWORD}" }', ''))), ['connections[0].credential: is required (the role and password the gateway logs in to the database with)']);
  });
});

describe('config: type postgres connections via an agent', () => {
  const agents = 'agents: { listen: { port: 0 }, tls: { cert: "${PG_PASSWORD}", key: "${PG_PASSWORD}" } }\n';
  const via = 'listen: { port: 6432 }, allowPlaintext: true, via: "agent:dc1", access: { groups: [analysts] }';

  test('no target, no credential needed; the listener dials the agent hub; clients name the connection as their database', async () => {
    const config = parseConfig(agents + connection(via), 'gatehouse.yaml', env);
    const opened: unknown[] = [];
    const hub = { openStream: async (request: unknown) => (opened.push(request), undefined as never) } as unknown as AgentHub;
    const [c] = buildPostgresConnections(config, { agentHub: hub });
    const { dial, ...target } = c!.target;
    assert.deepEqual(target, { host: 'agent:dc1', port: 0, database: 'warehouse', user: '', password: '', tls: { mode: 'disable' }, connectTimeoutMs: 10_000, maxMessageBytes: 1024 ** 3 });
    await dial!();
    assert.deepEqual(opened, [{ agent: 'dc1', connection: 'warehouse', credential: undefined, acceptTimeoutMs: 10_000, near: undefined }]);
  });

  test('a gateway-held credential is sent with each stream', async () => {
    const config = parseConfig(agents + connection(`${via}, credential: { user: gatehouse, secret: "\${PG_PASSWORD}" }`), 'gatehouse.yaml', env);
    const opened: { credential?: unknown }[] = [];
    const hub = { openStream: async (request: { credential?: unknown }) => (opened.push(request), undefined as never) } as unknown as AgentHub;
    const [c] = buildPostgresConnections(config, { agentHub: hub });
    assert.equal(c!.target.password, '', 'the gateway itself never logs in with it');
    await c!.target.dial!();
    assert.deepEqual(opened[0]!.credential, { user: 'gatehouse', secret: 'pw' });
  });

  test('a target, tls settings, or no agents section are refused with their paths', () => {
    assert.deepEqual(issuesOf(connection(`${via}, target: "postgres://db:5432/w", tls: { mode: require }`)), [
      'connections[0].via: needs an agents: section (the endpoint agents dial in to)',
      "connections[0].target: must not be set with via: the agent's own config holds the target",
      "connections[0].tls: must not be set with via: the agent's own config holds the database's TLS settings",
    ]);
  });

  test("the agent's config: a postgres target that is not a URL is an issue with its path, not a crash", () => {
    assert.throws(
      () => parseAgentConfig('name: dc1\nconnections:\n  - { name: w, type: postgres, target: "not a url", credential: { user: u, secret: "${PG_PASSWORD}" } }\n', 'agent.yaml', env),
      (error: ConfigError) => {
        assert.ok(error instanceof ConfigError, String(error));
        assert.deepEqual(error.issues, ['connections[0].target: must be a postgres://host:port/dbname URL']);
        return true;
      },
    );
  });

  test("the agent's config: an unquoted ${VAR} in a flow mapping is refused with a hint to quote it", () => {
    assert.throws(
      () => parseAgentConfig('name: edge\nconnections:\n  - name: llm\n    target: http://10.0.0.5:8000/v1\n    credential: { secret: ${PG_PASSWORD} }\n', 'agent.yaml', env),
      (error: ConfigError) => {
        assert.deepEqual(error.issues, ['(yaml): Unexpected flow-map-start at node end at line 5, column 28 (in a flow mapping "{ … }", quote a reference: "${VAR}")']);
        return true;
      },
    );
  });

  test("the agent's config: a postgres connection with its database, TLS and an optional credential", () => {
    const config = parseAgentConfig(
      `name: dc1
connections:
  - { name: llm, target: "http://10.0.0.5:8000/v1" }
  - { name: warehouse, type: postgres, target: "postgres://10.0.0.7/warehouse", credential: { user: gatehouse, secret: "\${PG_PASSWORD}" } }
  - { name: reports, type: postgres, target: "postgres://10.0.0.8:5433/reports", tls: { mode: disable } }
`,
      'agent.yaml',
      env,
    );
    assert.deepEqual(config.connections.map((c) => (c.type === 'postgres' ? [c.type, c.name, c.target, c.credential, c.tls, c.timeouts] : [c.type, c.name, c.target])), [
      ['http', 'llm', 'http://10.0.0.5:8000/v1'],
      ['postgres', 'warehouse', 'postgres://10.0.0.7/warehouse', { user: 'gatehouse', secret: 'pw' }, { mode: 'verify-full' }, { connect: 10_000 }],
      ['postgres', 'reports', 'postgres://10.0.0.8:5433/reports', undefined, { mode: 'disable' }, { connect: 10_000 }],
    ]);
    assert.throws(
      () => parseAgentConfig('name: dc1\nconnections:\n  - { name: w, type: postgres, target: "postgres://u:p@db/w", credential: { user: u, secret: hunter2 } }\n', 'agent.yaml', env),
      (error: ConfigError) => {
        assert.deepEqual(error.issues, ['connections[0].target: must not carry a user or password: put them in credential', 'connections[0].credential.secret: a secret must be a reference (${ENV_VAR} or file:/path), not a literal value']);
        return true;
      },
    );
  });
});
