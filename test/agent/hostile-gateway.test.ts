// The agent's side of the trust: a peer that passes TLS verification but sends a
// welcome no gateway config could produce must not make the agent spin.

import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { createSecureServer, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseAgentConfig } from '../../src/agent/agent-config.js';
import { startAgent } from '../../src/agent/agent-client.js';
import { connectPath, encodeFrame, readFrames } from '../../src/agent/protocol.js';
import { makeTestPki } from '../helpers/tls.js';
import { silent } from './helpers.js';

test('a welcome asking for a 1 ms heartbeat: the agent keeps to the 100 ms the gateway config allows at least', async () => {
  const pki = makeTestPki();
  // When the agent sent each heartbeat (its own `at`), per link: under load frames arrive
  // late and in bunches, and the agent may even reconnect, but the times it wrote them
  // keep their spacing. (Counting arrivals in a fixed second failed on a busy machine.)
  const links: number[][] = [];
  const server = createSecureServer({ cert: pki.cert, key: pki.key });
  server.on('stream', (stream: ServerHttp2Stream, headers) => {
    if (headers[':path'] !== connectPath) return stream.close();
    stream.respond({ ':status': 200, 'content-type': 'application/x-ndjson' });
    stream.write(encodeFrame({ type: 'welcome', session: 'ag_hostile', heartbeatMs: 1, protocol: 1 }));
    const sent: number[] = [];
    links.push(sent);
    // The peer keeps the link alive itself, so the agent has no reason to reconnect.
    const alive = setInterval(() => stream.write(encodeFrame({ type: 'heartbeat', at: Date.now() })), 50);
    stream.once('close', () => clearInterval(alive));
    void (async () => {
      for await (const frame of readFrames(stream)) if (frame['type'] === 'heartbeat') sent.push(Number(frame['at']));
    })().catch(() => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const config = parseAgentConfig('name: edge\nconnections:\n  - name: demo\n    target: http://127.0.0.2:9\n', join(pki.dir, 'agent.yaml'), process.env);
  const agent = startAgent({ gatewayUrl: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, key: 'ghk_unused', ca: pki.ca, config, logger: silent, version: 'test' });
  try {
    // The agent still sends heartbeats: five on one link (about half a second when idle).
    const deadline = Date.now() + 30_000;
    while (!links.some((sent) => sent.length >= 5) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const sent = links.find((l) => l.length >= 5);
    assert.ok(sent, `the agent still sends heartbeats (${JSON.stringify(links.map((l) => l.length))} on its links)`);
    // At 100 ms, consecutive heartbeats are 100 ms apart or more; at the 1 ms asked for, about 1 ms.
    const gaps = sent.slice(1).map((at, i) => at - sent[i]!);
    assert.ok(gaps.every((gap) => gap >= 90), `heartbeats ${JSON.stringify(gaps)} ms apart`);
  } finally {
    await agent.close();
    server.close();
    rmSync(pki.dir, { recursive: true, force: true });
  }
});
