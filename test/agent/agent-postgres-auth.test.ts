// Where the database password lives, for a PostgreSQL connection through an agent,
// against a private cluster that asks for passwords (SCRAM-SHA-256, md5) over TLS:
// - only on the agent (`${ENV}` on the agent's host): the gateway's config has none;
// - only on the gateway: sent per session inside the tunnel; the agent has none;
// - on both: the agent's wins;
// - a wrong password on the agent: the client gets a clear FATAL, the gateway logs why.

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import pg from 'pg';
import type { Agent } from '../../src/agent/agent-client.js';
import { startPrivatePostgres, type PrivatePostgres } from '../helpers/private-postgres.js';
import { makeTestPki } from '../helpers/tls.js';
import { agentKey, startTestAgent, startTunnelGateway, type TunnelGateway } from './helpers.js';

const pki = makeTestPki();
const cluster = await startPrivatePostgres({ cert: pki.cert, key: pki.key });
const skip = 'skip' in cluster ? cluster.skip : undefined;

describe('PostgreSQL through an agent: the database password on the agent or on the gateway', { skip }, () => {
  const pgc = cluster as PrivatePostgres;
  let gw: TunnelGateway;
  let agent: Agent | undefined;
  // Made before any traffic: a key written while the recorder's worker writes can fail with SQLITE_BUSY.
  const keys: string[] = [];

  before(async () => {
    gw = await startTunnelGateway(
      `  - name: onagent
    type: postgres
    via: agent:pgauth
    listen: { host: 127.0.0.1, port: 0 }
    allowPlaintext: true
    access: { groups: [ml] }
  - name: ongateway
    type: postgres
    via: agent:pgauth
    listen: { host: 127.0.0.1, port: 0 }
    allowPlaintext: true
    credential: { user: md5_user, secret: "\${GW_PG_SECRET}" }
    access: { groups: [ml] }
`,
      { env: { GW_PG_SECRET: 'pw-md5' } },
    );
    for (let i = 0; i < 4; i++) keys.push(await agentKey(gw, `pgauth-${i}`, ['agent:pgauth']));
  });
  afterEach(async () => {
    await agent?.close();
    agent = undefined;
  });
  after(async () => {
    await gw?.close();
    await pgc.stop();
  });

  /** The agent's config: both connections to the private cluster over TLS (verify-full against the test CA). */
  async function startAgent(onagentCredential: string, ongatewayCredential = '', env: NodeJS.ProcessEnv = {}) {
    const entry = (name: string, credential: string) => `  - name: ${name}
    type: postgres
    target: postgres://localhost:${pgc.port}/postgres
    tls: { mode: verify-full, ca: "\${PG_CA}" }
${credential}`;
    ({ agent } = await startTestAgent(gw, keys.shift()!, `name: pgauth\nconnections:\n${entry('onagent', onagentCredential)}${entry('ongateway', ongatewayCredential)}`, { PG_CA: pki.ca, ...env }));
  }

  async function whoAmI(connection: string): Promise<{ user: string; ssl: boolean }> {
    const port = Number(gw.gateway.postgresListeners.get(connection)!.split(':').at(-1));
    const client = new pg.Client({ host: '127.0.0.1', port, user: 'caller', password: gw.callerKey, database: connection });
    client.on('error', () => undefined);
    await client.connect();
    try {
      const { rows } = await client.query('select current_user as user, ssl from pg_stat_ssl where pid = pg_backend_pid()');
      return rows[0] as { user: string; ssl: boolean };
    } finally {
      await client.end();
    }
  }

  test('held only by the agent (SCRAM-SHA-256, resolved from its own environment): the gateway config has none', async () => {
    await startAgent('    credential: { user: scram_user, secret: "${AGENT_PG_SECRET}" }\n', '', { AGENT_PG_SECRET: 'pw-scram' });
    assert.deepEqual(await whoAmI('onagent'), { user: 'scram_user', ssl: true });
  });

  test('held only by the gateway (md5): sent with the session inside the tunnel', async () => {
    await startAgent('');
    assert.deepEqual(await whoAmI('ongateway'), { user: 'md5_user', ssl: true });
  });

  test("held by both: the agent's wins", async () => {
    await startAgent('', '    credential: { user: scram_user, secret: "${AGENT_PG_SECRET}" }\n', { AGENT_PG_SECRET: 'pw-scram' });
    assert.deepEqual(await whoAmI('ongateway'), { user: 'scram_user', ssl: true });
  });

  test('a wrong password on the agent: a clear FATAL for the client, not a hang', async () => {
    await startAgent('    credential: { user: scram_user, secret: "${AGENT_PG_SECRET}" }\n', '', { AGENT_PG_SECRET: 'wrong' });
    await assert.rejects(whoAmI('onagent'), (error: pg.DatabaseError) => {
      assert.equal(error.severity, 'FATAL');
      assert.equal(error.code, '08001');
      assert.equal(error.detail, 'gatehouse code: upstream_unreachable');
      return true;
    });
  });
});
