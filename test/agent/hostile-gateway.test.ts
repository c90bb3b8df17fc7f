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
  let heartbeats = 0;
  let welcomedAt = 0;
  const server = createSecureServer({ cert: pki.cert, key: pki.key });
  server.on('stream', (stream: ServerHttp2Stream, headers) => {
    if (headers[':path'] !== connectPath) return stream.close();
    stream.respond({ ':status': 200, 'content-type': 'application/x-ndjson' });
    stream.write(encodeFrame({ type: 'welcome', session: 'ag_hostile', heartbeatMs: 1, protocol: 1 }));
    welcomedAt = Date.now();
    // The peer keeps the link alive itself, so the agent has no reason to reconnect.
    const alive = setInterval(() => stream.write(encodeFrame({ type: 'heartbeat', at: Date.now() })), 50);
    stream.once('close', () => clearInterval(alive));
    void (async () => {
      for await (const frame of readFrames(stream)) if (frame['type'] === 'heartbeat') heartbeats += 1;
    })().catch(() => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const config = parseAgentConfig('name: edge\nconnections:\n  - name: demo\n    target: http://127.0.0.2:9\n', join(pki.dir, 'agent.yaml'), process.env);
  const agent = startAgent({ gatewayUrl: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, key: 'ghk_unused', ca: pki.ca, config, logger: silent, version: 'test' });
  try {
    while (welcomedAt === 0) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 1000));
    const elapsed = Date.now() - welcomedAt;
    // At 100 ms: about 10 in a second; at the 1 ms asked for it would be hundreds.
    assert.ok(heartbeats <= elapsed / 100 + 2, `${heartbeats} heartbeats in ${elapsed} ms`);
    assert.ok(heartbeats >= 3, `the agent still sends heartbeats (${heartbeats})`);
  } finally {
    await agent.close();
    server.close();
    rmSync(pki.dir, { recursive: true, force: true });
  }
});
