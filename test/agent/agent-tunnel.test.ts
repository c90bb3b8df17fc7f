// The agent tunnel in-process: a real gateway, real agents over HTTP/2 + TLS, targets on
// 127.0.0.2 that the gateway's config never names, driven by the official openai client.

import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { parseAgentConfig } from '../../src/agent/agent-config.js';
import { startAgent } from '../../src/agent/agent-client.js';
import { createLogger } from '../../src/observability/index.js';
import { makeTestPki, type TestPki } from '../helpers/tls.js';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { agentKey, startTestAgent, startTunnelGateway, waitFor, type TunnelGateway } from './helpers.js';

const upstreamKey = 'sk-target-only-on-the-agent';

describe('agent tunnel: OpenAI traffic through an agent', () => {
  let upstream: DemoUpstream;
  let gw: TunnelGateway;
  let client: OpenAI;
  let stopAgent: () => Promise<void>;

  before(async () => {
    upstream = await startDemoUpstream({ host: '127.0.0.2', apiKey: upstreamKey, streamDelayMs: 30 });
    gw = await startTunnelGateway(`  - name: demo
    type: openai
    via: agent:edge
    access: { groups: [ml] }
`);
    const key = await agentKey(gw, 'edge-1', ['agent:edge']);
    const { agent } = await startTestAgent(gw, key, `name: edge
connections:
  - name: demo
    target: ${upstream.url}
    credential: { secret: "\${TARGET_KEY}" }
`, { TARGET_KEY: upstreamKey });
    stopAgent = () => agent.close();
    client = new OpenAI({ baseURL: `${gw.gateway.dataPlaneUrl}/c/demo`, apiKey: gw.callerKey, maxRetries: 0 });
  });

  after(async () => {
    await stopAgent?.();
    await gw?.close();
    await upstream?.close();
  });

  test('a chat completion goes through the agent, with the credential resolved on the agent', async () => {
    const { data, response } = await client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'hello agent' }] }).withResponse();
    assert.equal(data.choices[0]!.message.content, 'Demo reply to: hello agent');
    assert.equal(upstream.lastAuthorization(), `Bearer ${upstreamKey}`);
    const id = response.headers.get('gatehouse-exchange-id')!;
    const record = await fetch(`${gw.gateway.adminUrl}/api/sessions/${id}`, { headers: { authorization: `Bearer ${gw.adminKey}` } }).then((r) => r.json() as Promise<Record<string, unknown>>);
    assert.equal(record['complete'], true, JSON.stringify({ errorCode: record['errorCode'], errorDetail: record['errorDetail'], status: record['status'], endedAt: record['endedAt'] }));
    assert.equal(record['status'], 200);
    assert.equal(record['subject'], 'key:caller');
  });

  test('a streamed completion arrives in several chunks, incrementally', async () => {
    const stream = await client.chat.completions.create({ model: 'demo-chat', stream: true, messages: [{ role: 'user', content: 'one two three four five' }] });
    const arrivals: number[] = [];
    let text = '';
    for await (const chunk of stream) {
      arrivals.push(Date.now());
      text += chunk.choices[0]?.delta?.content ?? '';
    }
    assert.equal(text, 'Demo reply to: one two three four five');
    assert.ok(arrivals.length >= 4, `expected several chunks, got ${arrivals.length}`);
    // 30 ms between frames upstream: the chunks were not buffered into one burst.
    assert.ok(arrivals.at(-1)! - arrivals[0]! >= 60, `chunks arrived within ${arrivals.at(-1)! - arrivals[0]!} ms`);
  });

  test('GET /api/agents shows the agent and the route it serves', async () => {
    const res = await fetch(`${gw.gateway.adminUrl}/api/agents`, { headers: { authorization: `Bearer ${gw.adminKey}` } });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { enabled: boolean; agents: Array<Record<string, unknown>>; routes: unknown[] };
    assert.equal(body.enabled, true);
    assert.equal(body.agents.length, 1);
    assert.equal(body.agents[0]!['name'], 'edge');
    assert.equal(body.agents[0]!['subject'], 'key:edge-1');
    assert.deepEqual(body.agents[0]!['connections'], ['demo']);
    assert.deepEqual(body.routes, [{ connection: 'demo', agent: 'edge', connectedAgents: 1 }]);
    const metrics = await fetch(`${gw.gateway.adminUrl}/metrics`).then((r) => r.text());
    assert.match(metrics, /gatehouse_agents_connected\{agent="edge"\} 1/);
    assert.match(metrics, /gatehouse_agent_exchanges_in_flight\{agent="edge",session="ag_[^"]+"\} 0/);
  });

  test('with the agent gone, the caller gets 503 agent_unavailable, and the agent coming back restores traffic', async () => {
    await stopAgent();
    await waitFor(async () => {
      const s = await fetch(`${gw.gateway.adminUrl}/api/agents`, { headers: { authorization: `Bearer ${gw.adminKey}` } }).then((r) => r.json() as Promise<{ agents: unknown[] }>);
      return s.agents.length === 0;
    }, 'the agent to be gone');
    await assert.rejects(client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'x' }] }), (error: InstanceType<typeof OpenAI.APIError>) => {
      assert.equal(error.status, 503);
      assert.equal(error.code, 'agent_unavailable');
      assert.equal((error.error as { message: string }).message, 'No agent serving this connection is connected to the gateway.');
      return true;
    });
    const key = await agentKey(gw, 'edge-2', ['agent:edge']);
    const { agent } = await startTestAgent(gw, key, `name: edge
connections:
  - name: demo
    target: ${upstream.url}
    credential: { secret: "\${TARGET_KEY}" }
`, { TARGET_KEY: upstreamKey });
    stopAgent = () => agent.close();
    const data = await client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'back' }] });
    assert.equal(data.choices[0]!.message.content, 'Demo reply to: back');
  });
});

describe('agent: a failed link is logged with its cause, a closed one not at all', () => {
  let gw: TunnelGateway;
  let otherPki: TestPki;

  before(async () => {
    gw = await startTunnelGateway(`  - name: demo
    type: openai
    via: agent:edge
    access: { groups: [ml] }
`);
    otherPki = makeTestPki();
  });
  after(async () => {
    await gw?.close();
    rmSync(otherPki.dir, { recursive: true, force: true });
  });

  /** Runs an agent against `gatewayUrl` until it has failed twice; returns the logged failures. */
  async function failures(gatewayUrl: string, ca: string): Promise<string[]> {
    const lines: Array<Record<string, unknown>> = [];
    const logger = createLogger('warn', { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    const config = parseAgentConfig('name: edge\nconnections:\n  - { name: demo, target: "http://127.0.0.2:9" }\n', join(gw.pki.dir, 'agent.yaml'));
    const agent = startAgent({ gatewayUrl, key: await agentKey(gw, `edge-${lines.length}-${Date.now()}`, ['agent:edge']), ca, config: { ...config, reconnect: { initial: 50, max: 100 } }, logger, version: 'test' });
    const failed = () => lines.filter((l) => l['msg'] === 'agent link failed');
    await waitFor(() => failed().length >= 2, 'two failed links');
    await agent.close();
    return failed().map((l) => String(l['err']));
  }

  test('a gateway certificate the CA did not sign: the TLS error, not "the gateway closed the link"', async () => {
    for (const err of await failures(gw.agentsUrl, otherPki.ca)) assert.match(err, /certificate/);
  });

  test('a clean close (SIGTERM, or drain over) logs no failed link', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = createLogger('warn', { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    const config = parseAgentConfig('name: edge\nconnections:\n  - { name: demo, target: "http://127.0.0.2:9" }\n', join(gw.pki.dir, 'agent.yaml'));
    let connected!: () => void;
    const welcomed = new Promise<void>((resolve) => (connected = resolve));
    const agent = startAgent({ gatewayUrl: gw.agentsUrl, key: await agentKey(gw, 'edge-clean', ['agent:edge']), ca: gw.pki.ca, config, logger, version: 'test', onState: (line) => line.startsWith('connected') && connected() });
    await welcomed;
    await agent.drain(1_000);
    assert.deepEqual(lines, []);
  });

  test('nothing listening: ECONNREFUSED, not "the gateway closed the link"', async () => {
    const probe = createNetServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    for (const err of await failures(`https://127.0.0.1:${port}`, gw.pki.ca)) assert.match(err, /ECONNREFUSED/);
  });
});
