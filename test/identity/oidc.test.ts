// The OIDC resource server, in-process against real issuers on 127.0.0.1:0: each
// rejection has its own named test and asserts the exact code.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createSecretKey } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPair, SignJWT, UnsecuredJWT } from 'jose';
import { buildConfigSchema } from '../../src/config/schema.js';
import { GatehouseError } from '../../src/errors/index.js';
import type { Identity } from '../../src/exchange/index.js';
import { groupsFromClaims, identifyCaller, jwtAuthenticator, OidcIssuer, VerifiedTokenCache } from '../../src/identity/index.js';
import { startTestIssuer, type TestIssuer } from '../helpers/test-issuer.js';

function identityConfig(identity: unknown) {
  return buildConfigSchema({ env: {}, baseDir: '/tmp' }).parse({ identity }).identity;
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<GatehouseError> {
  let caught: unknown;
  await assert.rejects(promise, (error) => ((caught = error), true));
  assert.ok(caught instanceof GatehouseError, `expected a GatehouseError, got ${String(caught)}`);
  assert.equal(caught.code, code, `${caught.code}: ${caught.detail}`);
  return caught;
}

describe('OIDC resource server', () => {
  let idp: TestIssuer;
  let other: TestIssuer;
  let identify: (token: string | undefined) => Promise<Identity>;
  const now = () => Math.floor(Date.now() / 1000);

  before(async () => {
    idp = await startTestIssuer();
    other = await startTestIssuer();
    const config = identityConfig({
      oidc: {
        clockSkew: '30s',
        issuers: [
          {
            name: 'corp',
            issuer: idp.issuer,
            audience: 'https://gatehouse.test',
            groupsClaims: ['groups', 'realm_access.roles', 'scp'],
            groupMap: { 'ML-Engineers': 'ml', 'gh-admins': ['admins', 'ml'], 'api.read': 'readers' },
            kind: 'human',
            jwks: { cooldown: 0 },
          },
        ],
      },
    });
    const issuers = config.oidc.issuers.map((i) => new OidcIssuer(i, { clockSkewMs: config.oidc.clockSkew }));
    identify = identifyCaller([jwtAuthenticator(issuers, new VerifiedTokenCache({ maxEntries: 100, ttlMs: 60_000 }))]);
  });
  after(async () => {
    await idp?.close();
    await other?.close();
  });

  const valid = (extra: Record<string, unknown> = {}) => idp.sign({ sub: 'alice', aud: 'https://gatehouse.test', groups: ['ML-Engineers', 'unmapped'], ...extra });

  test('a valid token yields the subject, kind and mapped groups', async () => {
    const token = await valid({ jti: 'tok-1', realm_access: { roles: ['gh-admins'] }, scp: 'api.read api.write' });
    const identity = await identify(token);
    assert.equal(identity.subject, 'oidc:corp:alice');
    assert.equal(identity.kind, 'human');
    assert.equal(identity.method, 'oidc');
    assert.equal(identity.credentialId, 'jti:tok-1');
    assert.equal(identity.issuer, idp.issuer);
    assert.deepEqual(identity.groups, ['ml', 'admins', 'readers']);
    assert.ok(!JSON.stringify(identity).includes(token.split('.')[2]!), 'no token material in the identity');
  });

  test('an expired token is credential_expired (beyond the clock skew)', async () => {
    const expired = await rejectsWith(identify(await valid({ iat: now() - 600, exp: now() - 95 })), 'credential_expired');
    // the operator sees by how much, to tell a stale token from a clock off (no quotes: log lines cut there)
    assert.match(expired.detail!, /^token expired: exp \S+Z, 9[4-6] s before this gateway's clock; clockSkew 30 s \(issuer corp\)/);
    // inside the skew it still passes
    await identify(await valid({ iat: now() - 600, exp: now() - 5 }));
  });

  test('a token without exp is refused', async () => {
    const token = await idp.sign({ sub: 'alice', aud: 'https://gatehouse.test' }, { omit: ['exp'] });
    await rejectsWith(identify(token), 'invalid_credential');
  });

  test('a not-yet-valid token (nbf in the future) is token_not_yet_valid', async () => {
    const error = await rejectsWith(identify(await valid({ nbf: now() + 120 })), 'token_not_yet_valid');
    assert.match(error.detail!, /^nbf \S+Z, 1(19|20|21) s after this gateway's clock; clockSkew 30 s: check the clocks of the IdP and the gateway \(issuer corp\)/);
  });

  test('a token issued in the future (iat) is token_not_yet_valid', async () => {
    const error = await rejectsWith(identify(await valid({ iat: now() + 120, exp: now() + 600 })), 'token_not_yet_valid');
    assert.match(error.detail!, /^iat \S+Z, 1(19|20|21) s after this gateway's clock; clockSkew 30 s: check the clocks/);
  });

  test('a wrong audience is token_audience_invalid', async () => {
    const error = await rejectsWith(identify(await valid({ aud: ['https://someone-else.test', 'account'] })), 'token_audience_invalid');
    assert.match(error.detail!, /^token aud \[https:\/\/someone-else\.test, account\] does not contain the configured audience \[https:\/\/gatehouse\.test\] \(issuer corp\)/);
  });

  test('a wrong issuer (a real IdP this gateway does not trust) is token_issuer_unknown', async () => {
    const token = await other.sign({ sub: 'alice', aud: 'https://gatehouse.test' });
    const error = await rejectsWith(identify(token), 'token_issuer_unknown');
    assert.match(error.detail!, new RegExp(`claimed iss="${other.issuer}" sub="alice"`));
  });

  test('a token from another issuer that claims our iss fails its signature', async () => {
    const forged = await other.sign({ iss: idp.issuer, sub: 'alice', aud: 'https://gatehouse.test' }, { kid: idp.kid });
    await rejectsWith(identify(forged), 'token_signature_invalid');
  });

  test('alg none is token_algorithm_not_allowed', async () => {
    const token = new UnsecuredJWT({ sub: 'alice', aud: 'https://gatehouse.test', groups: ['gh-admins'] }).setIssuer(idp.issuer).setIssuedAt().setExpirationTime('5m').encode();
    await rejectsWith(identify(token), 'token_algorithm_not_allowed');
  });

  test('HMAC confusion: HS256 signed with the IdP public key is token_algorithm_not_allowed', async () => {
    const publicPem = JSON.stringify(idp.publicJwk);
    const token = await new SignJWT({ iss: idp.issuer, sub: 'mallory', aud: 'https://gatehouse.test', groups: ['gh-admins'] })
      .setProtectedHeader({ alg: 'HS256', kid: idp.kid })
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(createSecretKey(Buffer.from(publicPem)));
    await rejectsWith(identify(token), 'token_algorithm_not_allowed');
  });

  test('a tampered payload is token_signature_invalid', async () => {
    const token = await valid();
    const [h, p, s] = token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...claims, groups: ['gh-admins'] })).toString('base64url')}.${s}`;
    await rejectsWith(identify(tampered), 'token_signature_invalid');
  });

  test('a garbage JWT-looking token is invalid_credential', async () => {
    await rejectsWith(identify('eyJhbGciOiJSUzI1NiJ9.eyJub3Q.json'), 'invalid_credential');
  });

  test('key rotation at the IdP: an unknown kid triggers one JWKS refetch and verifies', async () => {
    await identify(await valid({ sub: 'before-rotation' }));
    const fetches = idp.jwksFetches();
    await idp.rotate();
    const identity = await identify(await valid({ sub: 'after-rotation' }));
    assert.equal(identity.subject, 'oidc:corp:after-rotation');
    assert.equal(idp.jwksFetches(), fetches + 1);
  });

  test('a verified token is served from the cache (no JWKS fetch), and only until it expires', async () => {
    const token = await valid({ sub: 'cached', exp: now() + 2 });
    await identify(token);
    const fetches = idp.jwksFetches();
    for (let i = 0; i < 5; i++) assert.equal((await identify(token)).subject, 'oidc:corp:cached');
    assert.equal(idp.jwksFetches(), fetches);
    await new Promise((r) => setTimeout(r, 2100));
    // jose's clock skew would still accept it for 30 s; the cache entry is gone,
    // so this is a fresh verification.
    assert.equal((await identify(token)).subject, 'oidc:corp:cached');
  });

  test('an unreachable IdP is identity_provider_unavailable (503), not a pass', async () => {
    const config = identityConfig({ oidc: { issuers: [{ name: 'gone', issuer: 'http://127.0.0.1:1', audience: 'a', jwks: { timeout: '1s' } }] } });
    const gone = identifyCaller([jwtAuthenticator(config.oidc.issuers.map((i) => new OidcIssuer(i, { clockSkewMs: 0 })), new VerifiedTokenCache({ maxEntries: 10, ttlMs: 1000 }))]);
    const token = await idp.sign({ iss: 'http://127.0.0.1:1', sub: 'x', aud: 'a' });
    const error = await rejectsWith(gone(token), 'identity_provider_unavailable');
    assert.equal(error.status, 503);
  });

  test("an IdP refusing connections: the operator's detail names the socket error, not only undici's \"fetch failed\"", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const issuer = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const config = identityConfig({ oidc: { issuers: [{ name: 'down', issuer, audience: 'a', jwks: { timeout: '1s' } }] } });
    const down = identifyCaller([jwtAuthenticator(config.oidc.issuers.map((i) => new OidcIssuer(i, { clockSkewMs: 0 })), new VerifiedTokenCache({ maxEntries: 10, ttlMs: 1000 }))]);
    const error = await rejectsWith(down(await idp.sign({ iss: issuer, sub: 'x', aud: 'a' })), 'identity_provider_unavailable');
    assert.match(error.detail ?? '', /discovery for http:\/\/127\.0\.0\.1:\d+ failed: fetch failed: ECONNREFUSED|connect ECONNREFUSED/);
  });

  test('an IdP down at the first token is tried again one cooldown after the failure, even under steady traffic', async () => {
    // The failure time used to be reset by every request that found the failed
    // discovery, so requests arriving more often than the cooldown kept it failed forever.
    let offsetMs = 0;
    const config = identityConfig({ oidc: { issuers: [{ name: 'flaky', issuer: idp.issuer, audience: 'https://gatehouse.test', jwks: { cooldown: '1s' } }] } });
    const issuer = new OidcIssuer(config.oidc.issuers[0]!, { clockSkewMs: 0, now: () => Date.now() + offsetMs });
    const flaky = identifyCaller([jwtAuthenticator([issuer], new VerifiedTokenCache({ maxEntries: 0, ttlMs: 0 }))]);
    const token = await valid({ sub: 'after-outage' });
    idp.setDown(true);
    try {
      await rejectsWith(flaky(token), 'identity_provider_unavailable');
    } finally {
      idp.setDown(false);
    }
    offsetMs = 600;
    await rejectsWith(flaky(token), 'identity_provider_unavailable'); // within the cooldown: not fetched again
    offsetMs = 1_200;
    assert.equal((await flaky(token)).subject, 'oidc:flaky:after-outage');
  });

  test('an IdP that goes down after its keys were fetched: a known kid still verifies, for at most maxStale; an unknown kid is 503', async () => {
    let offsetMs = 0;
    const config = identityConfig({ oidc: { issuers: [{ name: 'outage', issuer: idp.issuer, audience: 'https://gatehouse.test', jwks: { cacheMaxAge: 100, cooldown: '1s', maxStale: '10m' } }] } });
    const issuer = new OidcIssuer(config.oidc.issuers[0]!, { clockSkewMs: 0, now: () => Date.now() + offsetMs });
    const verify = identifyCaller([jwtAuthenticator([issuer], new VerifiedTokenCache({ maxEntries: 0, ttlMs: 0 }))]);
    const token = (sub: string) => valid({ sub, exp: now() + 3600 });
    assert.equal((await verify(await token('before'))).subject, 'oidc:outage:before');
    await new Promise((r) => setTimeout(r, 150)); // the JWKS is older than cacheMaxAge: the next token refetches it
    idp.setDown(true);
    try {
      assert.equal((await verify(await token('during'))).subject, 'oidc:outage:during');
      assert.equal((await verify(await token('during-again'))).subject, 'oidc:outage:during-again');
      const { privateKey } = await generateKeyPair('RS256');
      await rejectsWith(verify(await idp.sign({ sub: 'stranger', aud: 'https://gatehouse.test' }, { key: privateKey, kid: 'never-published' })), 'identity_provider_unavailable');
      // a tampered token is still a verdict, not an outage
      const [h, p, sig] = (await token('tampered')).split('.') as [string, string, string];
      const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
      await rejectsWith(verify(`${h}.${Buffer.from(JSON.stringify({ ...claims, sub: 'root' })).toString('base64url')}.${sig}`), 'token_signature_invalid');
      offsetMs = 11 * 60_000; // past maxStale: the last keys are no longer trusted
      await rejectsWith(verify(await token('too-late')), 'identity_provider_unavailable');
    } finally {
      idp.setDown(false);
    }
    offsetMs = 11 * 60_000 + 2_000; // one cooldown later the IdP is asked again
    assert.equal((await verify(await token('after'))).subject, 'oidc:outage:after');
  });

  test('with jwks.maxStale: 0 an IdP down at a refetch refuses every token (503)', async () => {
    const config = identityConfig({ oidc: { issuers: [{ name: 'strict', issuer: idp.issuer, audience: 'https://gatehouse.test', jwks: { cacheMaxAge: 100, maxStale: 0 } }] } });
    const verify = identifyCaller([jwtAuthenticator([new OidcIssuer(config.oidc.issuers[0]!, { clockSkewMs: 0 })], new VerifiedTokenCache({ maxEntries: 0, ttlMs: 0 }))]);
    assert.equal((await verify(await valid({ sub: 'before' }))).subject, 'oidc:strict:before');
    await new Promise((r) => setTimeout(r, 150));
    idp.setDown(true);
    try {
      await rejectsWith(verify(await valid({ sub: 'during' })), 'identity_provider_unavailable');
    } finally {
      idp.setDown(false);
    }
  });
});

describe('groups from claims', () => {
  test('arrays, space- and comma-separated strings, nested paths and URL claim names', () => {
    const claims = {
      groups: ['a', 'b', 3, ''],
      roles: 'x y,z',
      realm_access: { roles: ['r1'] },
      'https://example.com/groups': ['u1'],
      deep: { not: 'an-array-of-objects' },
    };
    assert.deepEqual(groupsFromClaims(claims, ['groups', 'roles', 'realm_access.roles', 'https://example.com/groups', 'missing.path', 'deep'], undefined), ['a', 'b', 'x', 'y', 'z', 'r1', 'u1']);
  });

  test('with a groupMap only mapped groups are kept', () => {
    assert.deepEqual(groupsFromClaims({ groups: ['admins', 'IdP-Admins'] }, ['groups'], { 'IdP-Admins': 'ops' }), ['ops']);
  });

  test('prototype keys are not claim paths nor group names', () => {
    assert.deepEqual(groupsFromClaims({ groups: ['constructor', '__proto__'] }, ['groups', 'constructor.name'], { x: 'y' }), []);
  });
});

describe('identity config', () => {
  test('HMAC and none are refused as allowed algorithms', () => {
    for (const alg of ['HS256', 'none']) {
      const result = buildConfigSchema({ env: {}, baseDir: '/tmp' }).safeParse({ identity: { oidc: { issuers: [{ name: 'c', issuer: 'https://idp.test', audience: 'a', allowedAlgorithms: [alg] }] } } });
      assert.equal(result.success, false, alg);
      assert.deepEqual(result.error!.issues[0]!.path, ['identity', 'oidc', 'issuers', 0, 'allowedAlgorithms', 0]);
    }
  });

  test('two issuer entries with the same issuer URL are refused (tokens are routed by iss: one entry would be ignored)', () => {
    const result = buildConfigSchema({ env: {}, baseDir: '/tmp' }).safeParse({
      identity: {
        oidc: {
          issuers: [
            { name: 'corp', issuer: 'https://idp.test/realms/corp', audience: 'gatehouse' },
            { name: 'corp-svc', issuer: 'https://idp.test/realms/corp/', audience: 'gatehouse-svc', kind: 'service' },
          ],
        },
      },
    });
    assert.equal(result.success, false);
    assert.deepEqual(result.error!.issues[0]!.path, ['identity', 'oidc', 'issuers', 1, 'issuer']);
    assert.match(result.error!.issues[0]!.message, /same issuer as issuers\[0\] \("corp"\).*audience: \[gatehouse, gatehouse-svc\]/);
  });

  test('clock skew is bounded to 5 minutes', () => {
    const result = buildConfigSchema({ env: {}, baseDir: '/tmp' }).safeParse({ identity: { oidc: { clockSkew: '10m' } } });
    assert.equal(result.success, false);
  });
});
