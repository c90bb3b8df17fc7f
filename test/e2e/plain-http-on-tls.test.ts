// A plain-HTTP request to a TLS listener of the real gateway process gets an answer that
// says so (400 https_required, naming the https:// URL) instead of an empty reply, on
// the data plane and on the admin API, while HTTPS clients are served as before.

import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { Agent, request } from 'undici';
import { demoConnectionYaml, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { makeTestPki, type TestPki } from '../helpers/tls.js';

describe('plain HTTP sent to a TLS listener', () => {
  let pki: TestPki;
  let gateway: GatewayProcess;
  let dispatcher: Agent;

  before(async () => {
    pki = makeTestPki();
    const tls = `  tls: { cert: file:${pki.certPath}, key: file:${pki.keyPath} }\n`;
    const yaml = demoConnectionYaml('http://127.0.0.1:1').replace('gateway:\n  listen: { host: 127.0.0.1, port: 0 }\n', `gateway:\n  listen: { host: 127.0.0.1, port: 0 }\n${tls}`).replace('admin:\n  listen: { host: 127.0.0.1, port: 0 }\n', `admin:\n  listen: { host: 127.0.0.1, port: 0 }\n${tls}`);
    gateway = await startGatewayProcess(yaml, { env: { UPSTREAM_KEY: 'sk-unused' } });
    dispatcher = new Agent({ connect: { ca: pki.ca } });
  });
  after(async () => {
    await gateway?.stop();
    await dispatcher?.close();
    rmSync(pki.dir, { recursive: true, force: true });
  });

  test('the data plane answers 400 https_required in the OpenAI envelope, naming the https URL of the request', async () => {
    assert.match(gateway.url, /^https:\/\//);
    const plain = gateway.url.replace('https://', 'http://');
    const res = await request(`${plain}/c/demo/models`, { headers: { authorization: 'Bearer gh_not_a_key' } });
    assert.equal(res.statusCode, 400);
    assert.equal(res.headers['connection'], 'close');
    const body = (await res.body.json()) as { error: { code: string; type: string; message: string } };
    assert.equal(body.error.code, 'https_required');
    assert.equal(body.error.type, 'invalid_request_error');
    assert.ok(body.error.message.endsWith(`Use ${gateway.url}/c/demo/models`), body.error.message);
  });

  test('the admin API answers 400 https_required in its own envelope', async () => {
    const res = await request(`${gateway.adminUrl.replace('https://', 'http://')}/healthz`);
    assert.equal(res.statusCode, 400);
    const body = (await res.body.json()) as { error: { code: string; message: string } };
    assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message']);
    assert.equal(body.error.code, 'https_required');
    assert.ok(body.error.message.endsWith(`Use ${gateway.adminUrl}/healthz`), body.error.message);
  });

  test('HTTPS clients are served as before, on the same connection pool', async () => {
    const health = await request(`${gateway.adminUrl}/healthz`, { dispatcher });
    assert.equal(health.statusCode, 200);
    assert.deepEqual(await health.body.json(), { status: 'ok' });
    const refused = await request(`${gateway.url}/c/demo/models`, { dispatcher });
    assert.equal(refused.statusCode, 401);
    assert.equal(((await refused.body.json()) as { error: { code: string } }).error.code, 'unauthenticated');
  });
});
