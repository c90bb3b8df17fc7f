// End to end: a real OpenID provider (oidc-provider) and the real gatehouse process,
// driven by the official openai client with the IdP's access tokens as bearer tokens.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { demoConnectionYaml, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { startOidcProvider, type TestOidcProvider } from '../helpers/oidc.js';

const upstreamKey = 'sk-upstream-oidc';

describe('OIDC tokens through the gateway, end to end', () => {
  let upstream: DemoUpstream;
  let idp: TestOidcProvider;
  let gateway: GatewayProcess;

  before(async () => {
    upstream = await startDemoUpstream({ apiKey: upstreamKey });
    idp = await startOidcProvider({ groups: { 'svc-batch': ['ML-Service'], alice: ['ML-Engineers'], bob: ['Finance'] } });
    const identity = `identity:
  oidc:
    issuers:
      - name: corp
        issuer: ${idp.issuer}
        audience: ${idp.audience}
        groupsClaims: [groups]
        groupMap: { ML-Engineers: ml, ML-Service: ml }
        jwks: { cooldown: 0 }
`;
    gateway = await startGatewayProcess(`${demoConnectionYaml(upstream.url)}${identity}`, { env: { UPSTREAM_KEY: upstreamKey } });
  });
  after(async () => {
    await gateway?.stop();
    await idp?.close();
    await upstream?.close();
  });

  const chat = (token: string) =>
    new OpenAI({ baseURL: `${gateway.url}/c/demo`, apiKey: token, maxRetries: 0 }).chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] });

  test('a client-credentials token is accepted, and the upstream sees the target key, not the token', async () => {
    const token = await idp.clientCredentialsToken();
    const answer = await chat(token);
    assert.equal(answer.choices[0]!.message.content, 'Demo reply to: hi');
    assert.equal(upstream.lastAuthorization(), `Bearer ${upstreamKey}`);
  });

  test('an authorization-code-with-PKCE token is accepted for a user in a mapped group', async () => {
    const token = await idp.authorizationCodeToken('alice');
    const answer = await chat(token);
    assert.equal(answer.choices[0]!.message.content, 'Demo reply to: hi');
  });

  test('a user whose IdP groups map to nothing is denied by policy', async () => {
    const token = await idp.authorizationCodeToken('bob');
    await assert.rejects(chat(token), (error: unknown) => error instanceof OpenAI.PermissionDeniedError && (error.error as { code?: string }).code === 'access_denied');
  });

  test('key rotation at the provider is followed', async () => {
    const before = idp.kid();
    await chat(await idp.clientCredentialsToken());
    await idp.rotateKeys();
    assert.notEqual(idp.kid(), before);
    const answer = await chat(await idp.clientCredentialsToken());
    assert.equal(answer.choices[0]!.message.content, 'Demo reply to: hi');
  });

  test('a real token whose audience was edited is refused with token_signature_invalid', async () => {
    // Each rejection code (audience, issuer, expiry, nbf, alg none, HMAC confusion) has
    // its own test against a real issuer in test/identity/oidc.test.ts.
    const token = await idp.clientCredentialsToken();
    const [h, p, s] = token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...claims, aud: 'other' })).toString('base64url')}.${s}`;
    await assert.rejects(chat(tampered), (error: unknown) => error instanceof OpenAI.AuthenticationError && (error.error as { code?: string }).code === 'token_signature_invalid');
  });
});
