// End to end: SAML 2.0 login to the admin API. A test IdP signs assertions with a key
// made for this run; a valid one logs in with its groups; tampered, unsigned, expired,
// foreign-signed, wrong-audience and replayed assertions are refused.

import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { makeSamlIdp, type ResponseOptions, type SamlTestIdp } from '../helpers/saml-idp.js';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const entityId = 'https://gatehouse.test/saml';

describe('SAML 2.0 login for the admin API', () => {
  let idp: SamlTestIdp;
  let stranger: SamlTestIdp;
  let gateway: GatewayProcess;
  let acsUrl: string;

  before(async () => {
    idp = makeSamlIdp();
    stranger = makeSamlIdp();
    const port = await freePort();
    acsUrl = `http://127.0.0.1:${port}/auth/saml/acs`;
    gateway = await startGatewayProcess(`gateway:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: ${port} }
  groups: [admins]
identity:
  saml:
    name: corp
    entityId: ${entityId}
    acsUrl: ${acsUrl}
    idpSsoUrl: https://idp.test/sso
    idpIssuer: ${idp.issuer}
    idpCert: file:${idp.certPath}
    groupMap: { SAML-Admins: admins, "Platform Admins": admins, "CN=ML,OU=Groups,DC=corp": ml }
`);
  });
  after(async () => {
    await gateway?.stop();
  });

  const post = (samlResponse: string) =>
    fetch(acsUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ SAMLResponse: samlResponse, RelayState: '' }).toString() });
  const valid = (extra: Partial<ResponseOptions> = {}) => idp.response({ acsUrl, audience: entityId, nameId: 'dana@example.com', groups: ['SAML-Admins', 'Other'], ...extra });
  async function refused(samlResponse: string, message: RegExp) {
    const res = await post(samlResponse);
    assert.equal(res.status, 401);
    assert.equal(res.headers.getSetCookie().length, 0, 'no session cookie');
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'invalid_credential');
    assert.match(body.error.message, message);
  }

  test('metadata names the entity id and the ACS URL', async () => {
    const res = await fetch(`${gateway.adminUrl}/auth/saml/metadata`);
    assert.equal(res.status, 200);
    const xml = await res.text();
    assert.match(xml, new RegExp(`entityID="${entityId}"`));
    assert.match(xml, new RegExp(`Location="${acsUrl}"`));
  });

  test('login redirects to the IdP with an AuthnRequest', async () => {
    const res = await fetch(`${gateway.adminUrl}/auth/saml/login`, { redirect: 'manual' });
    assert.equal(res.status, 302);
    const location = new URL(res.headers.get('location')!);
    assert.equal(`${location.origin}${location.pathname}`, 'https://idp.test/sso');
    assert.ok(location.searchParams.get('SAMLRequest'));
  });

  test('a valid signed assertion logs in with its mapped groups; the session opens the admin API', async () => {
    const res = await post(valid());
    assert.equal(res.status, 200);
    const body = (await res.json()) as { subject: string; groups: string[] };
    assert.deepEqual({ subject: body.subject, groups: body.groups }, { subject: 'saml:corp:dana@example.com', groups: ['admins'] });
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith('gatehouse_session='))!;
    assert.match(cookie, /HttpOnly; SameSite=Lax$/);
    const api = await fetch(`${gateway.adminUrl}/api/whoami`, { headers: { cookie: cookie.split(';')[0]! } });
    assert.equal(api.status, 200);
    assert.deepEqual(await api.json(), { subject: 'saml:corp:dana@example.com', kind: 'human', groups: ['admins'], method: 'gateway_token' });
  });

  test('a group name with a space or commas is one group, whether it is the only value or not', async () => {
    for (const [nameId, groups, expected] of [
      ['erin@example.com', ['Platform Admins'], ['admins']],
      ['finn@example.com', ['CN=ML,OU=Groups,DC=corp'], ['ml']],
      ['gail@example.com', ['Platform Admins', 'CN=ML,OU=Groups,DC=corp'], ['admins', 'ml']],
      ['hugo@example.com', ['Platform'], []],
    ] as const) {
      const res = await post(valid({ nameId, groups }));
      assert.equal(res.status, 200);
      assert.deepEqual(((await res.json()) as { groups: string[] }).groups, expected, nameId);
    }
  });

  test('a replayed assertion is refused', async () => {
    const response = valid({ nameId: 'replay@example.com' });
    assert.equal((await post(response)).status, 200);
    await refused(response, /already used/);
  });

  test('a tampered assertion (NameID changed after signing) is refused', async () => {
    await refused(valid({ tamper: (xml) => xml.replace('dana@example.com', 'root@example.com') }), /not valid/);
  });

  test('an unsigned assertion is refused', async () => {
    await refused(valid({ sign: false }), /not valid/);
  });

  test('an expired assertion is refused', async () => {
    const past = new Date(Date.now() - 3_600_000);
    await refused(valid({ issueInstant: past, notBefore: new Date(past.getTime() - 60_000), notOnOrAfter: new Date(past.getTime() + 300_000) }), /not valid/);
  });

  test('an assertion signed by another IdP key is refused', async () => {
    await refused(stranger.response({ acsUrl, audience: entityId, nameId: 'dana@example.com', groups: ['SAML-Admins'], issuer: idp.issuer }), /not valid/);
  });

  test('an assertion signed by the trusted key but from another issuer is refused; operators find each cause in the log', async () => {
    await refused(valid({ issuer: 'https://other-idp.test/saml' }), /not valid/);
    await refused(valid({ sign: false }), /not valid/);
    const refusals = gateway.logs().split('\n').filter((line) => line.includes('"admin request refused"')).map((line) => JSON.parse(line) as { path: string; code: string; detail: string });
    assert.ok(refusals.some((r) => r.path === '/auth/saml/acs' && r.code === 'invalid_credential' && r.detail.includes('SAML issuer "https://other-idp.test/saml"')), JSON.stringify(refusals));
    assert.ok(refusals.some((r) => r.path === '/auth/saml/acs' && /^SAML: .*signature/i.test(r.detail)), JSON.stringify(refusals));
  });

  test('an assertion for another audience is refused', async () => {
    await refused(valid({ audience: 'https://someone-else.test' }), /not valid/);
  });
});
