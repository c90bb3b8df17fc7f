// End to end: a gateway token signing key that leaked is replaced and revoked. Before,
// the store kept every public key a gateway ever published and trusted it for good, so
// whoever held an old key file could sign any identity — an admin login session
// included — long after the operator had replaced the key. `gatehouse revoke
// signing-key KID` ends every token that key signed, drops it from the JWKS, and a
// gateway configured with it refuses to start.

import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { calculateJwkThumbprint, exportJWK, SignJWT } from 'jose';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { demoConnectionYaml, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const upstreamKey = 'sk-upstream-keyrevoke';

describe('revoking a gateway signing key', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-keyrevoke-'));
  const keyFile = join(dir, 'gateway-signing-key.pem');
  let upstream: DemoUpstream;
  let gateway: GatewayProcess;
  const env = { UPSTREAM_KEY: upstreamKey };
  const start = () => startGatewayProcess(demoConnectionYaml(upstream.url), { env, dir });

  before(async () => {
    upstream = await startDemoUpstream({ apiKey: upstreamKey });
  });
  after(async () => {
    await gateway?.stop();
    await upstream?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const models = (gw: GatewayProcess, token: string) => fetch(`${gw.url}/c/demo/v1/models`, { headers: { authorization: `Bearer ${token}` } });
  const whoami = (gw: GatewayProcess, token: string) => fetch(`${gw.adminUrl}/api/whoami`, { headers: { authorization: `Bearer ${token}` } });
  const codeOf = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;

  test('tokens signed by the old key, and sessions forged with it, are refused once it is revoked', async () => {
    gateway = await start();
    const apiKey = await gateway.createKey('ml-agent', ['ml']);
    const issued = await fetch(`${gateway.url}/auth/token`, { method: 'POST', headers: { authorization: `Bearer ${apiKey}` }, body: JSON.stringify({ connections: ['demo'] }) });
    const oldToken = ((await issued.json()) as { access_token: string }).access_token;

    // The key file leaks; the operator replaces it (removes it: a new one is generated).
    const leaked = createPrivateKey(readFileSync(keyFile));
    const oldKid = await calculateJwkThumbprint(await exportJWK(leaked));
    await gateway.stop();
    unlinkSync(keyFile);
    gateway = await start();

    // Whoever holds the old key signs an admin login session (a token scoped to no connection).
    const now = Math.floor(Date.now() / 1000);
    const forged = await new SignJWT({ gh: { kind: 'human', groups: ['admins'], via: 'login:corp', scope: { connections: [] } } })
      .setProtectedHeader({ alg: 'EdDSA', kid: oldKid, typ: 'gatehouse+jwt' })
      .setIssuer('gatehouse')
      .setAudience('gatehouse')
      .setSubject('oidc:corp:mallory')
      .setJti('forged-session-1')
      .setIssuedAt(now)
      .setExpirationTime(now + 7 * 24 * 3600)
      .sign(leaked);
    // Replacing the key file alone does not help: the old key is still trusted.
    assert.equal((await whoami(gateway, forged)).status, 200);
    assert.notEqual((await models(gateway, oldToken)).status, 401);

    const { stdout } = await gateway.cli(['revoke', 'signing-key', '--reason', 'key file leaked', '--', oldKid]);
    assert.match(stdout, new RegExp(`revoked signing-key ${oldKid}`));
    // the gateway process polls the store's revocations (250 ms)
    let status = 0;
    for (let i = 0; i < 40 && status !== 401; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      status = (await whoami(gateway, forged)).status;
    }
    const refusedSession = await whoami(gateway, forged);
    assert.equal(refusedSession.status, 401);
    assert.equal(await codeOf(refusedSession), 'credential_revoked');
    const refusedToken = await models(gateway, oldToken);
    assert.equal(refusedToken.status, 401);
    assert.equal(await codeOf(refusedToken), 'credential_revoked');
    const revokedLine = new RegExp(`gateway signing key ${oldKid} that signed it is revoked`);
    assert.match(await gateway.waitForLog(revokedLine), revokedLine);

    // The new key keeps working, and the JWKS lists it alone.
    const fresh = await fetch(`${gateway.url}/auth/token`, { method: 'POST', headers: { authorization: `Bearer ${apiKey}` }, body: JSON.stringify({ connections: ['demo'] }) });
    assert.notEqual((await models(gateway, ((await fresh.json()) as { access_token: string }).access_token)).status, 401);
    const jwks = (await (await fetch(`${gateway.url}/.well-known/jwks.json`)).json()) as { keys: Array<{ kid: string }> };
    assert.equal(jwks.keys.length, 1);
    assert.notEqual(jwks.keys[0]!.kid, oldKid);
  });

  test('a kid no gateway published is refused instead of being stored', async () => {
    await assert.rejects(gateway.cli(['revoke', 'signing-key', 'no-such-kid']), (error: { code?: number; stderr?: string }) => error.code === 1 && /no gateway signing key has kid "no-such-kid"/.test(error.stderr ?? ''));
    const adminKey = await gateway.createKey('admin', ['admins']);
    const res = await fetch(`${gateway.adminUrl}/api/revocations`, { method: 'POST', headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'signing-key', value: 'no-such-kid' }) });
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as { error: { message: string } }).error.message, /no gateway signing key has kid/);
  });

  test('a gateway configured with a revoked key refuses to start', async () => {
    const currentKid = ((await (await fetch(`${gateway.url}/.well-known/jwks.json`)).json()) as { keys: Array<{ kid: string }> }).keys[0]!.kid;
    await gateway.cli(['revoke', 'signing-key', '--', currentKid]);
    // Still running with it, the gateway issues no token that could not work, and says why.
    const apiKey = await gateway.createKey('ml-late', ['ml']);
    const ask = () => fetch(`${gateway.url}/auth/token`, { method: 'POST', headers: { authorization: `Bearer ${apiKey}` }, body: JSON.stringify({ connections: ['demo'] }) });
    let refused = await ask();
    for (let i = 0; i < 40 && refused.status !== 503; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      refused = await ask();
    }
    assert.equal(refused.status, 503);
    assert.equal(await codeOf(refused), 'signing_key_revoked');
    await gateway.stop();
    await assert.rejects(start(), (error: Error) => new RegExp(`signing key \\(kid ${currentKid}\\) is revoked: configure a new key`).test(error.message));
  });
});
