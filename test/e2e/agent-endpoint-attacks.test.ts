// The agent endpoint of the real gateway process against clients that attack it rather
// than speak to it. Each test is a problem reproduced against the process first.

import assert from 'node:assert/strict';
import { connect as h2connect } from 'node:http2';
import { connect as tcpConnect } from 'node:net';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { connectPath } from '../../src/agent/protocol.js';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { makeTestPki, type TestPki } from '../helpers/tls.js';

describe('attacks on the agent endpoint of the real gateway process', () => {
  let pki: TestPki;
  let gateway: GatewayProcess;
  let agentsUrl: string;
  let port: number;

  before(async () => {
    pki = makeTestPki();
    gateway = await startGatewayProcess(`gateway:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: 0 }
log: { level: info }
agents:
  listen: { host: 127.0.0.1, port: 0 }
  tls: { cert: file:${pki.certPath}, key: file:${pki.keyPath} }
connections:
  - name: raw
    type: http
    via: agent:raw
    access: { groups: [ml] }
`);
    agentsUrl = /agent endpoint (\S+)/.exec(gateway.stderr())![1]!;
    port = Number(new URL(agentsUrl).port);
  });
  after(async () => {
    await gateway?.stop();
    rmSync(pki.dir, { recursive: true, force: true });
  });

  /** The endpoint still serves HTTP/2: a keyless connect is refused with 401. */
  async function stillServes(): Promise<void> {
    const session = h2connect(agentsUrl, { ca: pki.ca });
    try {
      const status = await new Promise<number | undefined>((resolve, reject) => {
        const stream = session.request({ ':method': 'POST', ':path': connectPath });
        stream.on('response', (headers) => resolve(headers[':status']));
        stream.on('error', reject);
        stream.resume();
        stream.end();
      });
      assert.equal(status, 401);
    } finally {
      session.destroy();
    }
  }

  // Reproduced: the TLS layer only reported the timed-out handshake, nobody closed the
  // socket, and a client that started a ClientHello and stopped held it indefinitely.
  test('a TLS handshake that stalls (slowloris) is closed by the gateway', { timeout: 60_000 }, async () => {
    const socket = tcpConnect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.resume();
    // A handshake record announcing 512 bytes, and one of them.
    socket.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]));
    await new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await stillServes();
  });
});
