// End to end: SAML 2.0 login to the admin API. A test IdP signs assertions with a key
// made for this run; a valid one, answering the AuthnRequest this browser started, logs
// in with its groups; tampered, unsigned, expired, foreign-signed, wrong-audience and
// replayed assertions are refused, and so are unsolicited ones and ones answering
// another browser's request (login CSRF).

import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import SQLite from 'better-sqlite3';
import { after, before, describe, test } from 'node:test';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { makeSamlIdp, type ResponseOptions, type SamlTestIdp } from '../helpers/saml-idp.js';
import { clearOfWindowEnd, fetchFrom } from '../helpers/throttle-clients.js';
import { samlCompletePath } from '../../src/identity/login/saml-relay-page.js';

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
  # Refused logins count against their address: the validation tests here refuse more
  # from 127.0.0.1 than a limit allows; throttling is tested from 127.0.0.31.
  authThrottle:
    perAddress: { limit: 3, window: 1h }
    exempt: [127.0.0.1/32]
`);
  });
  after(async () => {
    await gateway?.stop();
  });

  /** A browser starts a login: its binding cookie, and the AuthnRequest ID the IdP sees. */
  async function startLogin(): Promise<{ cookie: string; requestId: string }> {
    const res = await fetch(`${gateway.adminUrl}/auth/saml/login`, { redirect: 'manual' });
    assert.equal(res.status, 302);
    const setCookie = res.headers.getSetCookie().find((c) => c.startsWith('gatehouse_saml='))!;
    assert.match(setCookie, /Path=\/auth\/saml; Max-Age=600; HttpOnly; SameSite=Lax$/);
    const request = inflateRawSync(Buffer.from(new URL(res.headers.get('location')!).searchParams.get('SAMLRequest')!, 'base64')).toString('utf8');
    return { cookie: setCookie.split(';')[0]!, requestId: /\bID="([^"]+)"/.exec(request)![1]! };
  }
  const post = (samlResponse: string, cookie?: string, path = '/auth/saml/acs') =>
    fetch(new URL(path, acsUrl), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(cookie ? { cookie } : {}) },
      body: new URLSearchParams({ SAMLResponse: samlResponse, RelayState: '' }).toString(),
      redirect: 'manual',
    });
  /** As a browser: the IdP's cross-site POST (no Lax cookie), then the relay page's same-origin re-post (with it). */
  async function postAsBrowser(samlResponse: string, cookie: string | undefined): Promise<Response> {
    const relay = await post(samlResponse);
    assert.equal(relay.status, 200);
    assert.match(relay.headers.get('content-type')!, /^text\/html/);
    assert.match(relay.headers.get('content-security-policy')!, /form-action 'self'; frame-ancestors 'none'/);
    const page = await relay.text();
    const action = /<form method="post" action="([^"]+)">/.exec(page)![1]!;
    const field = /name="SAMLResponse" value="([^"]*)"/.exec(page)![1]!;
    assert.equal(field, samlResponse, 'the relay page re-posts the response unchanged');
    return post(field, cookie, action);
  }
  const valid = (extra: Partial<ResponseOptions> = {}) => idp.response({ acsUrl, audience: entityId, nameId: 'dana@example.com', groups: ['SAML-Admins', 'Other'], ...extra });
  /** A Response to a login this test starts, and that login's cookie. */
  async function answered(extra: Partial<ResponseOptions> = {}) {
    const { cookie, requestId } = await startLogin();
    return { cookie, response: valid({ inResponseTo: requestId, ...extra }) };
  }
  async function expectRefused(res: Response, message: RegExp) {
    assert.equal(res.status, 401);
    assert.ok(!res.headers.getSetCookie().some((c) => c.startsWith('gatehouse_session=')), 'no session cookie');
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'invalid_credential');
    assert.match(body.error.message, message);
  }
  async function refused(extra: Partial<ResponseOptions>, message: RegExp) {
    const { cookie, response } = await answered(extra);
    await expectRefused(await post(response, cookie), message);
  }
  /** The failed-authentication records in the audit log (the gateway's SQLite store). */
  function refusalEvents(): Array<{ actor: string | null; target: string; reason: string; client: string }> {
    const db = new SQLite(join(gateway.dir, 'gatehouse.db'), { readonly: true });
    try {
      const rows = db.prepare(`select actor, target, details from audit_events where kind = 'login.refused' order by seq`).all() as Array<{ actor: string | null; target: string; details: string }>;
      return rows.map((r) => ({ actor: r.actor, target: r.target, ...(JSON.parse(r.details) as { reason: string; client: string }) }));
    } finally {
      db.close();
    }
  }
  /** The refusal log once a line `check` accepts is in it: lines come through the process's stdout, a little after the answer. */
  async function refusalLogWith(check: (line: { path: string; code: string; detail: string }) => boolean) {
    for (let i = 0; i < 40 && !refusalLog().some(check); i++) await new Promise((r) => setTimeout(r, 50));
    return refusalLog();
  }
  function refusalLog(): Array<{ path: string; code: string; detail: string }> {
    return gateway.logs().split('\n').filter((line) => line.includes('"admin request refused"')).map((line) => JSON.parse(line) as { path: string; code: string; detail: string });
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

  test('a browser login (IdP POST, relay page, same-origin re-post) logs in with its mapped groups; the session opens the admin API', async () => {
    const { cookie, response } = await answered();
    const res = await postAsBrowser(response, cookie);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { subject: string; groups: string[] };
    assert.deepEqual({ subject: body.subject, groups: body.groups }, { subject: 'saml:corp:dana@example.com', groups: ['admins'] });
    const cookies = res.headers.getSetCookie();
    const session = cookies.find((c) => c.startsWith('gatehouse_session='))!;
    assert.match(session, /HttpOnly; SameSite=Lax$/);
    assert.ok(cookies.some((c) => /^gatehouse_saml=; Path=\/auth\/saml; Max-Age=0/.test(c)), 'the login cookie is cleared');
    const api = await fetch(`${gateway.adminUrl}/api/whoami`, { headers: { cookie: session.split(';')[0]! } });
    assert.equal(api.status, 200);
    assert.deepEqual(await api.json(), { subject: 'saml:corp:dana@example.com', kind: 'human', groups: ['admins'], method: 'gateway_token' });
  });

  test('the relay page escapes what it re-posts', async () => {
    const res = await post('"><script>alert(1)</script>');
    assert.equal(res.status, 200);
    const page = await res.text();
    assert.ok(!page.includes('<script>alert(1)'), page);
    assert.match(page, /value="&#34;&#62;&#60;script&#62;alert\(1\)&#60;\/script&#62;"/);
  });

  test('a group name with a space or commas is one group, whether it is the only value or not', async () => {
    for (const [nameId, groups, expected] of [
      ['erin@example.com', ['Platform Admins'], ['admins']],
      ['finn@example.com', ['CN=ML,OU=Groups,DC=corp'], ['ml']],
      ['gail@example.com', ['Platform Admins', 'CN=ML,OU=Groups,DC=corp'], ['admins', 'ml']],
      ['hugo@example.com', ['Platform'], []],
    ] as const) {
      const { cookie, response } = await answered({ nameId, groups });
      const res = await post(response, cookie);
      assert.equal(res.status, 200);
      assert.deepEqual(((await res.json()) as { groups: string[] }).groups, expected, nameId);
    }
  });

  test('login CSRF: an unsolicited (IdP-initiated) response is refused, with or without a login in progress', async () => {
    // The attacker's own valid response, posted by the victim's browser, which started no login.
    await expectRefused(await postAsBrowser(valid({ nameId: 'mallory@example.com' }), undefined), /No SAML login was started in this browser/);
    // The victim's browser has a login in progress, but the response answers no request.
    const { cookie } = await startLogin();
    await expectRefused(await postAsBrowser(valid({ nameId: 'mallory@example.com' }), cookie), /does not answer the login started in this browser/);
    const refusals = await refusalLogWith((r) => /InResponseTo is missing/.test(r.detail));
    assert.ok(refusals.some((r) => r.path === '/auth/saml/complete' && r.code === 'invalid_credential' && /no login cookie/.test(r.detail)), JSON.stringify(refusals));
    assert.ok(refusals.some((r) => r.path === '/auth/saml/complete' && /InResponseTo is missing/.test(r.detail)), JSON.stringify(refusals));
    const events = refusalEvents();
    assert.ok(events.some((e) => e.target === 'saml:corp' && e.client === '127.0.0.1' && /no login cookie/.test(e.reason)), JSON.stringify(events));
    assert.ok(events.some((e) => e.target === 'saml:corp' && /InResponseTo is missing/.test(e.reason)), JSON.stringify(events));
  });

  test("login CSRF: a response answering another browser's request is refused", async () => {
    const victim = await startLogin();
    const attacker = await answered({ nameId: 'mallory@example.com' });
    await expectRefused(await postAsBrowser(attacker.response, victim.cookie), /does not answer the login started in this browser/);
    // The attacker's response still works in the attacker's own browser: nothing was consumed.
    assert.equal((await postAsBrowser(attacker.response, attacker.cookie)).status, 200);
    const notValid = await refusalLogWith((r) => /InResponseTo is not valid/.test(r.detail));
    assert.ok(notValid.some((r) => /InResponseTo is not valid/.test(r.detail)), JSON.stringify(notValid));
    assert.ok(refusalEvents().some((e) => /InResponseTo is not valid/.test(e.reason)), 'a failed-authentication record');
  });

  test('a replayed response is refused, and a request is answered once', async () => {
    const { cookie, requestId } = await startLogin();
    const response = valid({ nameId: 'replay@example.com', inResponseTo: requestId });
    assert.equal((await postAsBrowser(response, cookie)).status, 200);
    await expectRefused(await postAsBrowser(response, cookie), /already used/);
    // Another assertion for the same, already answered, request.
    await expectRefused(await postAsBrowser(valid({ nameId: 'replay@example.com', inResponseTo: requestId }), cookie), /already used/);
    const replayed = await refusalLogWith((r) => r.detail === `SAML replay: request ${requestId} was already answered`);
    assert.ok(replayed.some((r) => r.detail === `SAML replay: request ${requestId} was already answered`), JSON.stringify(replayed));
    assert.ok(refusalEvents().some((e) => e.reason === `SAML replay: request ${requestId} was already answered`), 'a failed-authentication record');
  });

  test('a tampered assertion (NameID changed after signing) is refused', async () => {
    await refused({ tamper: (xml) => xml.replace('dana@example.com', 'root@example.com') }, /not valid/);
  });

  test('an unsigned assertion is refused', async () => {
    await refused({ sign: false }, /not valid/);
  });

  test('an expired assertion is refused', async () => {
    const past = new Date(Date.now() - 3_600_000);
    await refused({ issueInstant: past, notBefore: new Date(past.getTime() - 60_000), notOnOrAfter: new Date(past.getTime() + 300_000) }, /not valid/);
  });

  test('an assertion signed by another IdP key is refused', async () => {
    const { cookie, requestId } = await startLogin();
    const forged = stranger.response({ acsUrl, audience: entityId, nameId: 'dana@example.com', groups: ['SAML-Admins'], issuer: idp.issuer, inResponseTo: requestId });
    await expectRefused(await post(forged, cookie), /not valid/);
  });

  test('an assertion signed by the trusted key but from another issuer is refused; operators find each cause in the log', async () => {
    await refused({ issuer: 'https://other-idp.test/saml' }, /not valid/);
    await refused({ sign: false }, /not valid/);
    const refusals = await refusalLogWith((r) => r.path === '/auth/saml/acs' && /^SAML: .*signature/i.test(r.detail));
    assert.ok(refusals.some((r) => r.path === '/auth/saml/acs' && r.code === 'invalid_credential' && r.detail.includes('SAML issuer "https://other-idp.test/saml"')), JSON.stringify(refusals));
    assert.ok(refusals.some((r) => r.path === '/auth/saml/acs' && /^SAML: .*signature/i.test(r.detail)), JSON.stringify(refusals));
  });

  test('an assertion for another audience is refused', async () => {
    await refused({ audience: 'https://someone-else.test' }, /not valid/);
  });

  test('refused SAML responses count against the address: once over the limit, even a valid login from it is refused (429, JSON); other addresses log in', async () => {
    await clearOfWindowEnd(3_600_000, 30_000);
    const postFrom = (address: string, samlResponse: string, cookie: string) =>
      fetchFrom(address)(new URL(samlCompletePath, acsUrl).href, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie }, body: new URLSearchParams({ SAMLResponse: samlResponse }).toString() });
    for (let i = 0; i < 3; i++) {
      const { cookie, requestId } = await startLogin();
      const forged = stranger.response({ acsUrl, audience: entityId, nameId: 'dana@example.com', groups: ['SAML-Admins'], issuer: idp.issuer, inResponseTo: requestId });
      assert.equal((await postFrom('127.0.0.31', forged, cookie)).status, 401);
    }
    const good = await answered();
    const throttled = await postFrom('127.0.0.31', good.response, good.cookie);
    assert.equal(throttled.status, 429);
    assert.ok(Number(throttled.headers.get('retry-after')) >= 1);
    assert.ok(!throttled.headers.getSetCookie().some((c) => c.startsWith('gatehouse_session=')), 'no session');
    assert.equal(((await throttled.json()) as { error: { code: string } }).error.code, 'auth_throttled');
    // Refused before it was checked: the response was not used up, and logs in from another address.
    const other = await postFrom('127.0.0.32', good.response, good.cookie);
    assert.equal(other.status, 200, await other.text());
    assert.equal(refusalEvents().filter((e) => e.client === '127.0.0.31').length, 3, 'the throttled attempt is not recorded');
    await gateway.waitForLog(/failed authentications throttled/);
  });
});
