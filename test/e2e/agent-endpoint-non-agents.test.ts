// Clients that are not agents reaching the agent endpoint of the real gateway process
// get an answer saying what they reached, instead of an empty reply or a TLS alert:
// plain HTTP is 400 https_required naming the https:// URL, HTTP/1.1 over TLS (with or
// without ALPN) is 400 agent_endpoint_only, HTTP/2 on another path is 404. Agents are
// still served over HTTP/2 on the same port.

import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { connect } from 'node:http2';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { connectPath } from '../../src/agent/protocol.js';
import { errorRegistry } from '../../src/errors/registry.js';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { makeTestPki, type TestPki } from '../helpers/tls.js';

interface Answer {
  readonly status: number | undefined;
  readonly body: { error: { code: string; message: string } };
}

/** Sends `options` with `send` and reads the JSON answer. */
function ask(send: typeof httpRequest | typeof httpsRequest, url: string, options: RequestOptions): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = send(url, { ...options, agent: false }, (res: IncomingMessage) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(text) as Answer['body'] }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('non-agents on the agent endpoint of the real gateway process', () => {
  let pki: TestPki;
  let gateway: GatewayProcess;
  let agentsUrl: string;

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
  });
  after(async () => {
    await gateway?.stop();
    rmSync(pki.dir, { recursive: true, force: true });
  });

  test('plain HTTP gets 400 https_required, naming the agent endpoint and its https:// URL', async () => {
    const answer = await ask(httpRequest, `${agentsUrl.replace('https://', 'http://')}${connectPath}`, { method: 'POST' });
    assert.equal(answer.status, 400);
    assert.deepEqual(answer.body, {
      error: { code: 'https_required', message: `This listener (the Gatehouse agent endpoint) speaks HTTPS; a plain HTTP request was sent to it. Use ${agentsUrl}${connectPath}` },
    });
  });

  for (const [name, alpn] of [['negotiating http/1.1 by ALPN', ['http/1.1']], ['without ALPN', undefined]] as const) {
    test(`HTTP/1.1 over TLS ${name} gets 400 agent_endpoint_only`, async () => {
      const answer = await ask(httpsRequest, `${agentsUrl}${connectPath}`, { method: 'POST', ca: pki.ca, ...(alpn ? { ALPNProtocols: [...alpn] } : {}) });
      assert.equal(answer.status, 400);
      assert.deepEqual(answer.body, { error: { code: 'agent_endpoint_only', message: errorRegistry.agent_endpoint_only.message } });
      assert.match(answer.body.error.message, /only serves Gatehouse agents, over HTTP\/2/);
    });
  }

  test('HTTP/2 on a path that is no agent route gets 404, and the agent route is still served over HTTP/2', async () => {
    const session = connect(agentsUrl, { ca: pki.ca });
    try {
      const get = (headers: Record<string, string>) =>
        new Promise<Answer>((resolve, reject) => {
          const stream = session.request(headers);
          let status: number | undefined;
          let text = '';
          stream.on('response', (h) => (status = h[':status']));
          stream.setEncoding('utf8');
          stream.on('data', (chunk: string) => (text += chunk));
          stream.on('end', () => resolve({ status, body: JSON.parse(text) as Answer['body'] }));
          stream.on('error', reject);
          stream.end();
        });
      const other = await get({ ':method': 'GET', ':path': '/v1/chat/completions' });
      assert.equal(other.status, 404);
      assert.equal(other.body.error.code, 'route_not_found');
      assert.match(other.body.error.message, /this is the Gatehouse agent endpoint/);
      const keyless = await get({ ':method': 'POST', ':path': connectPath });
      assert.equal(keyless.status, 401);
      assert.equal(keyless.body.error.code, 'unauthenticated');
    } finally {
      session.close();
    }
  });
});
