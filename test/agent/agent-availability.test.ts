// Availability and isolation through agents, in-process (real gateway, real agents over
// HTTP/2 + TLS, a target on 127.0.0.2):
// - requests spread over two agents; when one dies, the exchange it had taken fails
//   cleanly with agent_disconnected and those still queued complete via the other;
// - a caller that stops reading a large answer does not stall other exchanges on the
//   same tunnel (HTTP/2 per-stream flow control, RFC 9113 §5.2).
// Both once froze the whole process (a teardown inside an http2 'close' event:
// src/agent/h2-teardown.ts).

import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, afterEach, before, describe, test } from 'node:test';
import type { Agent } from '../../src/agent/agent-client.js';
import { agentKey, startTestAgent, startTunnelGateway, waitFor, type TunnelGateway } from './helpers.js';

const bigBytes = 64 * 1024 * 1024;

interface Target {
  readonly url: string;
  readonly seen: string[];
  bigBytesWritten: number;
  close(): Promise<void>;
}

/** /big streams 64 MiB as fast as the reader takes it; /slow/<ms> answers "ok" after ms; else "ok". */
async function startTarget(): Promise<Target> {
  const server: Server = createServer((req, res) => {
    target.seen.push(req.url ?? '');
    if (req.url?.endsWith('/big')) {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      let done = false;
      res.on('close', () => (done = true));
      const write = (): void => {
        while (!done && target.bigBytesWritten < bigBytes) {
          target.bigBytesWritten += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', write);
        }
        res.end();
      };
      return write();
    }
    const slow = /\/slow\/(\d+)$/.exec(req.url ?? '');
    setTimeout(() => res.end('ok'), slow ? Number(slow[1]) : 0);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.2', resolve));
  const target: Target = {
    url: `http://127.0.0.2:${(server.address() as AddressInfo).port}`,
    seen: [],
    bigBytesWritten: 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return target;
}

describe('agent availability and per-stream isolation', () => {
  let target: Target;
  let gw: TunnelGateway;
  let agents: Agent[] = [];

  before(async () => {
    target = await startTarget();
    gw = await startTunnelGateway(`  - name: raw
    type: http
    via: agent:edge
    access: { groups: [ml] }
`);
  });
  afterEach(async () => {
    for (const agent of agents) await agent.close();
    agents = [];
    await waitFor(async () => (await agentsStatus()).agents.length === 0, 'every agent to leave');
  });
  after(async () => {
    await gw?.close();
    await target?.close();
  });

  const call = (path: string) => fetch(`${gw.gateway.dataPlaneUrl}/c/raw${path}`, { headers: { authorization: `Bearer ${gw.callerKey}` } });
  const agentsStatus = () =>
    fetch(`${gw.gateway.adminUrl}/api/agents`, { headers: { authorization: `Bearer ${gw.adminKey}` } }).then((r) => r.json() as Promise<{ agents: unknown[] }>);
  const startAgentAt = async (keyName: string, prefix: string, concurrency: number) => {
    const { agent } = await startTestAgent(gw, await agentKey(gw, keyName, ['agent:edge']), `name: edge\nconcurrency: ${concurrency}\nconnections:\n  - { name: raw, target: "${target.url}${prefix}" }\n`);
    agents.push(agent);
    return agent;
  };

  test('two agents share the load; one dying fails its taken exchange with agent_disconnected and the queued ones complete via the other', async () => {
    target.seen.length = 0;
    const a = await startAgentAt('edge-a', '/a', 1);
    await startAgentAt('edge-b', '/b', 1);

    // Spread: two at once land on both agents (least outstanding first).
    const pair = await Promise.all([call('/slow/200'), call('/slow/200')]);
    assert.deepEqual(pair.map((r) => r.status), [200, 200]);
    assert.deepEqual(target.seen.map((p) => p.slice(0, 2)).sort(), ['/a', '/b']);

    // Six slow requests: each agent takes one, four wait in the gateway's queue.
    target.seen.length = 0;
    const pending = Array.from({ length: 6 }, () => call('/slow/600').then(async (r) => ({ status: r.status, body: await r.text() })));
    await waitFor(() => target.seen.length === 2, 'both agents to take one');
    await a.close(); // agent A leaves with its exchange taken
    const results = await Promise.all(pending);
    const failed = results.filter((r) => r.status !== 200);
    assert.equal(failed.length, 1, JSON.stringify(results));
    assert.equal(failed[0]!.status, 502);
    assert.equal((JSON.parse(failed[0]!.body) as { error: { code: string } }).error.code, 'agent_disconnected');
    assert.deepEqual(results.filter((r) => r.status === 200).map((r) => r.body), ['ok', 'ok', 'ok', 'ok', 'ok']);
    assert.equal(target.seen.filter((p) => p.startsWith('/b')).length, 5, `seen: ${target.seen.join(' ')}`);
    assert.equal(target.seen.filter((p) => p.startsWith('/a')).length, 1, `seen: ${target.seen.join(' ')}`);
  });

  test('a caller that stops reading a large answer does not stall other exchanges on the same tunnel', async () => {
    target.bigBytesWritten = 0;
    await startAgentAt('edge-fc', '/a', 64);
    // Caller A takes the headers of a 64 MiB answer and then reads nothing.
    const slowReader = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = httpRequest(`${gw.gateway.dataPlaneUrl}/c/raw/big`, { headers: { authorization: `Bearer ${gw.callerKey}` } }, resolve);
      req.on('error', reject);
      req.end();
    });
    assert.equal(slowReader.statusCode, 200);
    slowReader.pause();
    // The target is held back by backpressure well before it has written it all.
    await waitFor(() => target.bigBytesWritten > 0, 'the big answer to start');
    await new Promise((r) => setTimeout(r, 500));
    const stalledAt = target.bigBytesWritten;
    assert.ok(stalledAt < bigBytes, `the target wrote all ${stalledAt} bytes: no backpressure`);

    const started = Date.now();
    for (let i = 0; i < 20; i++) {
      const res = await call('/small');
      assert.equal(res.status, 200);
      assert.equal(await res.text(), 'ok');
    }
    // Generous on a shared 2-core machine; a stalled tunnel would never answer.
    assert.ok(Date.now() - started < 10_000, `20 small exchanges took ${Date.now() - started} ms beside a stalled one`);
    assert.ok(target.bigBytesWritten <= stalledAt + 8 * 1024 * 1024, 'the stalled answer kept flowing while its caller read nothing');
    slowReader.destroy();
  });
});

describe('agent queue timeout', () => {
  let target: Target;
  let gw: TunnelGateway;
  let agent: Agent | undefined;

  before(async () => {
    target = await startTarget();
    gw = await startTunnelGateway(`  - name: raw
    type: http
    via: agent:edge
    access: { groups: [ml] }
`, { agentsExtra: '  queueTimeout: 300ms' });
  });
  after(async () => {
    await agent?.close();
    await gw?.close();
    await target?.close();
  });

  test('every agent busy past queueTimeout: 503 agent_unavailable says the agents were busy, not that none is connected', async () => {
    agent = (await startTestAgent(gw, await agentKey(gw, 'edge-q', ['agent:edge']), `name: edge\nconcurrency: 1\nconnections:\n  - { name: raw, target: "${target.url}" }\n`)).agent;
    const call = (path: string) => fetch(`${gw.gateway.dataPlaneUrl}/c/raw${path}`, { headers: { authorization: `Bearer ${gw.callerKey}` } });
    const busy = call('/slow/1500');
    await waitFor(() => target.seen.length === 1, 'the agent to take the slow request');
    const refused = await call('/fast');
    assert.equal(refused.status, 503);
    assert.deepEqual((await refused.json()) as unknown, {
      error: { message: 'Every agent serving this connection was busy: none took the request within the queue timeout.', type: 'server_error', code: 'agent_unavailable', param: null },
    });
    assert.equal((await busy).status, 200);
  });
});
