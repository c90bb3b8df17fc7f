// Scale-out with an egress-only agent: two `gatehouse start` processes share one
// PostgreSQL store, and ONE `gatehouse agent` process is given both agent endpoints
// (`--gateway URL1,URL2`). It links to each, so a caller gets an answer through
// whichever gateway the load balancer picks; when one gateway stops, the agent keeps
// serving the other and says which link it lost; when that gateway is back, the agent
// links to it again. Before, `--gateway` took one URL and a second gateway answered
// `agent_unavailable` for every request its load balancer share sent it.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { createTestPostgresDatabase } from '../helpers/databases.js';
import { gatehouseBin, runCli, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { makeTestPki, type TestPki } from '../helpers/tls.js';

const upstreamKey = 'sk-target-key-only-the-agent-holds';
const database = await createTestPostgresDatabase();

describe('one agent, every gateway', { skip: 'skip' in database ? database.skip : false }, () => {
  const db = database as { url: string; drop(): Promise<void> };
  let upstream: DemoUpstream;
  let pki: TestPki;
  let config: string;
  const env = { STORE_URL: db.url };
  const store = 'store:\n  postgres: { url: "${STORE_URL}" }\n';
  const gateways: GatewayProcess[] = [];
  let agent: ChildProcess | undefined;
  let agentStderr = '';
  let callerKey: string;
  let keyFile: string;
  let agentConfig: string;

  const agentsUrl = (gateway: GatewayProcess) => /agent endpoint (\S+)/.exec(gateway.stderr())![1]!;
  const chat = (gateway: GatewayProcess) =>
    new OpenAI({ baseURL: `${gateway.url}/c/demo`, apiKey: callerKey, maxRetries: 0, timeout: 20_000 }).chat.completions.create({
      model: 'demo-chat',
      messages: [{ role: 'user', content: 'hello through the agent' }],
    });
  async function until(pattern: RegExp, ms = 20_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!pattern.test(agentStderr)) {
      if (Date.now() > deadline) throw new Error(`the agent never said ${pattern}:\n${agentStderr}`);
      if (agent?.exitCode !== null) throw new Error(`the agent exited with ${agent?.exitCode}:\n${agentStderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  before(async () => {
    upstream = await startDemoUpstream({ host: '127.0.0.2', apiKey: upstreamKey });
    pki = makeTestPki();
    config = `gateway:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: 0 }
  groups: [admins]
agents:
  listen: { host: 127.0.0.1, port: 0 }
  tls: { cert: file:${pki.certPath}, key: file:${pki.keyPath} }
  heartbeat: 1s
connections:
  - name: demo
    type: openai
    via: agent:edge
    access: { groups: [ml] }
`;
    gateways.push(...(await Promise.all([startGatewayProcess(config, { env, store }), startGatewayProcess(config, { env, store })])));
    callerKey = await gateways[0]!.createKey('ml-bot', ['ml']);
    keyFile = join(pki.dir, 'agent.key');
    agentConfig = join(pki.dir, 'agent.yaml');
    writeFileSync(keyFile, await gateways[0]!.createKey('edge-1', ['agent:edge'], ['--kind', 'agent']), { mode: 0o600 });
    writeFileSync(agentConfig, `name: edge
reconnect: { initial: 100ms, max: 500ms }
connections:
  - name: demo
    target: ${upstream.url}
    credential: { secret: "\${TARGET_KEY}" }
`);
  });

  after(async () => {
    if (agent && agent.exitCode === null && agent.signalCode === null) agent.kill('SIGKILL');
    for (const gateway of gateways) await gateway.stop();
    await upstream?.close();
    if (pki) rmSync(pki.dir, { recursive: true, force: true });
    await db.drop();
  });

  test('--gateway URL1,URL2: one agent serves both gateways, survives one of them stopping, and links to it again', async () => {
    const [a, b] = gateways as [GatewayProcess, GatewayProcess];
    agent = spawn(process.execPath, [gatehouseBin, 'agent', '--gateway', `${agentsUrl(a)},${agentsUrl(b)}`, '--key', `file:${keyFile}`, '--ca', pki.caPath, '--config', agentConfig], {
      env: { ...process.env, TARGET_KEY: upstreamKey, GATEHOUSE_LOG_LEVEL: 'error' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    agent.stderr!.on('data', (d: Buffer) => (agentStderr += d.toString()));
    await until(new RegExp(`connected to ${agentsUrl(a)} as edge`));
    await until(new RegExp(`connected to ${agentsUrl(b)} as edge`));

    for (const gateway of [a, b, a, b]) {
      const answer = await chat(gateway);
      assert.match(answer.choices[0]!.message.content ?? '', /hello through the agent/);
    }

    // Gateway a stops (a rolling restart): the agent says which link it lost and serves b on.
    const aUrl = agentsUrl(a);
    await a.stop();
    await until(new RegExp(`disconnected from ${aUrl.replace(/[.]/g, '\\.')} .*reconnecting in`));
    assert.match((await chat(b)).choices[0]!.message.content ?? '', /hello through the agent/);

    // A new gateway process on a's agent port: the agent's link to it comes back by itself.
    const port = new URL(aUrl).port;
    const again = await startGatewayProcess(config.replace('agents:\n  listen: { host: 127.0.0.1, port: 0 }', `agents:\n  listen: { host: 127.0.0.1, port: ${port} }`), { env, store });
    gateways.push(again);
    const connectedBefore = agentStderr.split(`connected to ${aUrl} as edge`).length;
    const deadline = Date.now() + 20_000;
    while (agentStderr.split(`connected to ${aUrl} as edge`).length === connectedBefore) {
      assert.ok(Date.now() < deadline, `the agent did not link to the restarted gateway:\n${agentStderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.match((await chat(again)).choices[0]!.message.content ?? '', /hello through the agent/);
  });

  test('--gateway refuses a URL that is not https:// and one given twice, naming it', async () => {
    const [a] = gateways as [GatewayProcess];
    const url = agentsUrl(a);
    const agentEnv = { ...process.env, TARGET_KEY: upstreamKey };
    const twice = await runCli(['agent', '--gateway', `${url},${url}`, '--key', `file:${keyFile}`, '--config', agentConfig], agentEnv);
    assert.equal(twice.code, 2, twice.stderr);
    assert.match(twice.stderr, new RegExp(`--gateway names ${url.replace(/[.]/g, '\\.')} twice: give each gateway once`));
    const plain = await runCli(['agent', '--gateway', `${url},http://127.0.0.1:9`, '--key', `file:${keyFile}`, '--config', agentConfig], agentEnv);
    assert.equal(plain.code, 2, plain.stderr);
    assert.match(plain.stderr, /--gateway: http:\/\/127\.0\.0\.1:9 is not an https:\/\/ URL/);
  });
});
