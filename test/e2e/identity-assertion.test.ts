// End to end: a connection with `identityAssertion` sends the upstream a short-lived
// EdDSA assertion of who called — verifiable with the gateway's JWKS — and never the
// caller's token; a caller cannot forge the header; the assertion is no access token.

import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

describe('identity assertion to the upstream', () => {
  let upstream: Server;
  let gateway: GatewayProcess;
  let seen: IncomingHttpHeaders[] = [];
  let key: string;

  before(async () => {
    upstream = createServer((req, res) => {
      seen.push(req.headers);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    gateway = await startGatewayProcess(`gateway:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: 0 }
connections:
  - name: registry
    type: http
    target: ${url}
    access: { groups: [ml] }
    identityAssertion: { ttl: 30s }
  - name: plain
    type: http
    target: ${url}
    access: { groups: [ml] }
`);
    key = await gateway.createKey('agent-9', ['ml'], ['--kind', 'agent']);
  });
  after(async () => {
    await gateway?.stop();
    upstream?.closeAllConnections();
    await new Promise((resolve) => upstream?.close(resolve));
  });

  const call = (connection: string, headers: Record<string, string> = {}) =>
    fetch(`${gateway.url}/c/${connection}/models`, { headers: { authorization: `Bearer ${key}`, ...headers } });

  test('the upstream receives a verifiable assertion of the caller, not the caller token', async () => {
    seen = [];
    const res = await call('registry', { 'x-gatehouse-identity': 'forged-by-caller' });
    assert.equal(res.status, 200);
    const headers = seen[0]!;
    assert.equal(headers.authorization, undefined);
    assert.ok(!JSON.stringify(headers).includes(key), 'no caller token upstream');
    const assertion = headers['x-gatehouse-identity'] as string;
    assert.notEqual(assertion, 'forged-by-caller');
    const jwks = createLocalJWKSet((await (await fetch(`${gateway.url}/.well-known/jwks.json`)).json()) as { keys: [] });
    const { payload } = await jwtVerify(assertion, jwks, { audience: 'registry', issuer: 'gatehouse' });
    assert.equal(decodeProtectedHeader(assertion).typ, 'gatehouse-identity+jwt');
    assert.equal(payload.sub, 'key:agent-9');
    assert.deepEqual(payload['groups'], ['ml']);
    assert.equal(payload['kind'], 'agent');
    assert.equal(payload.jti, res.headers.get('gatehouse-exchange-id'));
    assert.equal(payload.exp! - payload.iat!, 30);

    // the assertion is not an access token
    const replay = await fetch(`${gateway.url}/c/registry/models`, { headers: { authorization: `Bearer ${assertion}` } });
    assert.equal(replay.status, 401);
  });

  test('a connection without identityAssertion sends none of its own', async () => {
    seen = [];
    assert.equal((await call('plain')).status, 200);
    assert.equal(seen[0]!['x-gatehouse-identity'], undefined);
  });
});
