// End to end: browser login to the admin API with OIDC authorization code + PKCE against
// a real OpenID provider; the session cookie works on the admin API (and only there).

import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { decodeJwt } from 'jose';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { startOidcProvider, type TestOidcProvider } from '../helpers/oidc.js';
import { clearOfWindowEnd, fetchFrom } from '../helpers/throttle-clients.js';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('OIDC login (authorization code + PKCE) for the admin API', () => {
  let upstream: DemoUpstream;
  let idp: TestOidcProvider;
  let gateway: GatewayProcess;
  let callbackUrl: string;

  before(async () => {
    upstream = await startDemoUpstream({ apiKey: 'sk-up' });
    const adminPort = await freePort();
    callbackUrl = `http://127.0.0.1:${adminPort}/auth/callback`;
    idp = await startOidcProvider({ groups: { alice: ['Platform-Admins'], bob: ['Finance'], carol: ['Platform-Admins'] }, loginRedirectUri: callbackUrl });
    gateway = await startGatewayProcess(`gateway:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: ${adminPort} }
  groups: [admins]
connections:
  - name: demo
    type: openai
    target: ${upstream.url}
    credential: { secret: "\${UPSTREAM_KEY}" }
    access: { groups: [admins] }
identity:
  oidc:
    issuers:
      - { name: corp, issuer: "${idp.issuer}", audience: "${idp.audience}", groupMap: { Platform-Admins: admins } }
  login:
    issuer: corp
    clientId: gatehouse-admin
    redirectUri: ${callbackUrl}
    scopes: [openid]
    sessionTtl: 1h
`, { env: { UPSTREAM_KEY: 'sk-up' } });
  });
  after(async () => {
    await gateway?.stop();
    await idp?.close();
    await upstream?.close();
  });

  /** Runs the whole browser flow for `login`; returns the callback response and the cookies it set. */
  async function logIn(login: string, tamper?: (callback: string) => string) {
    const start = await fetch(`${gateway.adminUrl}/auth/login`, { redirect: 'manual' });
    assert.equal(start.status, 302);
    const loginCookie = start.headers.getSetCookie()[0]!;
    assert.match(loginCookie, /^gatehouse_login=[^;]+; Path=\/auth; Max-Age=600; HttpOnly; SameSite=Lax$/);
    const authUrl = new URL(start.headers.get('location')!);
    assert.equal(authUrl.origin, idp.issuer);
    assert.equal(authUrl.searchParams.get('code_challenge_method'), 'S256');
    assert.ok(authUrl.searchParams.get('code_challenge'));
    let callback = await idp.authorize(authUrl.href, login, callbackUrl);
    if (tamper) callback = tamper(callback);
    const res = await fetch(callback, { headers: { cookie: loginCookie.split(';')[0]! }, redirect: 'manual' });
    return { res, cookies: res.headers.getSetCookie() };
  }

  test('an admin logs in and the session cookie opens the admin API', async () => {
    const { res, cookies } = await logIn('alice');
    assert.equal(res.status, 200);
    const body = (await res.json()) as { subject: string; groups: string[] };
    assert.deepEqual({ subject: body.subject, groups: body.groups }, { subject: 'oidc:corp:alice', groups: ['admins'] });
    const session = cookies.find((c) => c.startsWith('gatehouse_session='))!;
    assert.match(session, /^gatehouse_session=[^;]+; Path=\/; Max-Age=3600; HttpOnly; SameSite=Lax$/, 'HttpOnly, SameSite=Lax; no Secure without TLS');
    const cookie = session.split(';')[0]!;
    const api = await fetch(`${gateway.adminUrl}/api/sessions`, { headers: { cookie } });
    assert.equal(api.status, 200);

    // the session is a Gatehouse token scoped to no connection: useless on the data plane
    const token = cookie.slice('gatehouse_session='.length);
    assert.equal(decodeJwt(token).sub, 'oidc:corp:alice');
    const data = await fetch(`${gateway.url}/c/demo/models`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(data.status, 403);
    assert.equal(((await data.json()) as { error: { code: string } }).error.code, 'token_scope_denied');

    // and it is revocable like any credential
    await gateway.cli(['revoke', 'user', 'oidc:corp:alice']);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await fetch(`${gateway.adminUrl}/api/sessions`, { headers: { cookie } })).status, 401);
  });

  test('the session cookie changes state only with a JSON body: a cross-site form cannot use it', async () => {
    const { cookies } = await logIn('carol');
    const cookie = cookies.find((c) => c.startsWith('gatehouse_session='))!.split(';')[0]!;
    const body = JSON.stringify({ kind: 'user', value: 'oidc:corp:mallory', reason: 'csrf trial' });
    // what an HTML form on another site (or another port of this host) can send: no preflight
    for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', undefined]) {
      const forged = await fetch(`${gateway.adminUrl}/api/revocations`, {
        method: 'POST',
        headers: { cookie, origin: 'http://127.0.0.1:1', ...(contentType ? { 'content-type': contentType } : {}) },
        body,
      });
      assert.equal(forged.status, 403, `content-type ${contentType}`);
      const error = ((await forged.json()) as { error: { code: string; message: string } }).error;
      assert.equal(error.code, 'access_denied');
      assert.match(error.message, /Content-Type: application\/json/);
    }
    const listed = (await (await fetch(`${gateway.adminUrl}/api/revocations`, { headers: { cookie } })).json()) as { revocations: { value: string }[] };
    assert.ok(!listed.revocations.some((r) => r.value === 'oidc:corp:mallory'), 'no forged revocation was written');
    // the console's own fetch with a JSON body works
    const own = await fetch(`${gateway.adminUrl}/api/revocations`, { method: 'POST', headers: { cookie, 'content-type': 'application/json; charset=utf-8' }, body });
    assert.equal(own.status, 200);
  });

  test('the session cookie on the data plane is refused with a message that says why', async () => {
    const { cookies } = await logIn('carol');
    const token = cookies.find((c) => c.startsWith('gatehouse_session='))!.split(';')[0]!.slice('gatehouse_session='.length);
    const data = await fetch(`${gateway.url}/c/demo/models`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(data.status, 403);
    const error = ((await data.json()) as { error: { code: string; message: string } }).error;
    assert.equal(error.code, 'token_scope_denied');
    assert.match(error.message, /admin login session, scoped to no connection; it cannot be used on "demo"/);
  });

  test('a user outside the admin groups logs in but is refused by the admin API', async () => {
    const { res, cookies } = await logIn('bob');
    assert.equal(res.status, 200);
    const cookie = cookies.find((c) => c.startsWith('gatehouse_session='))!.split(';')[0]!;
    const api = await fetch(`${gateway.adminUrl}/api/sessions`, { headers: { cookie } });
    assert.equal(api.status, 403);
  });

  test('a callback with a forged state, or without the login cookie, is refused', async () => {
    const forged = await logIn('alice', (callback) => {
      const url = new URL(callback);
      url.searchParams.set('state', 'forged');
      return url.href;
    });
    assert.equal(forged.res.status, 401);
    assert.equal(forged.cookies.length, 0);
    const noCookie = await fetch(`${callbackUrl}?code=x&state=y`);
    assert.equal(noCookie.status, 401);
    assert.match(((await noCookie.json()) as { error: { message: string } }).error.message, /No login in progress/);
    // the cause is in the log for operators; the callback's query (the code) is not
    const refusals = () => gateway.logs().split('\n').filter((line) => line.includes('"admin request refused"'));
    for (let i = 0; i < 20 && !refusals().some((line) => line.includes('login cookie missing')); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(refusals().some((line) => line.includes('"path":"/auth/callback"') && line.includes('login cookie missing or invalid')), refusals().join('\n'));
    assert.ok(!refusals().some((line) => line.includes('code=')), refusals().join('\n'));
    // and each refusal is a failed-authentication record in the audit log, as a SAML one is
    const db = new SQLite(join(gateway.dir, 'gatehouse.db'), { readonly: true });
    try {
      const events = (db.prepare(`select actor, target, details from audit_events where kind = 'login.refused' order by seq`).all() as Array<{ actor: string | null; target: string; details: string }>).map((e) => ({ ...e, details: JSON.parse(e.details) as { reason: string; client: string } }));
      assert.ok(events.length >= 2, JSON.stringify(events));
      assert.ok(events.every((e) => e.target === 'oidc:corp' && e.actor === null && e.details.client === '127.0.0.1'), JSON.stringify(events));
      assert.ok(events.some((e) => /login cookie missing or invalid/.test(e.details.reason)), JSON.stringify(events));
      assert.ok(events.some((e) => /^login callback: /.test(e.details.reason)), JSON.stringify(events));
      assert.ok(!events.some((e) => e.details.reason.includes('code=')), JSON.stringify(events));
    } finally {
      db.close();
    }
  });

  test('an IdP that cannot be reached when the browser comes back is 503 identity_provider_unavailable, not a refused login', async () => {
    const start = await fetch(`${gateway.adminUrl}/auth/login`, { redirect: 'manual' });
    const loginCookie = start.headers.getSetCookie()[0]!.split(';')[0]!;
    const callback = await idp.authorize(start.headers.get('location')!, 'alice', callbackUrl);
    idp.setDown(true);
    try {
      const res = await fetch(callback, { headers: { cookie: loginCookie }, redirect: 'manual' });
      assert.equal(res.status, 503);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'identity_provider_unavailable');
      assert.equal(res.headers.getSetCookie().length, 0, 'no session');
    } finally {
      idp.setDown(false);
    }
  });
});

describe('OIDC login callbacks and failed-authentication throttling', () => {
  let idp: TestOidcProvider;
  let gateway: GatewayProcess;
  let callbackUrl: string;

  before(async () => {
    const adminPort = await freePort();
    callbackUrl = `http://127.0.0.1:${adminPort}/auth/callback`;
    idp = await startOidcProvider({ groups: { alice: ['Platform-Admins'] }, loginRedirectUri: callbackUrl });
    gateway = await startGatewayProcess(`gateway:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: ${adminPort} }
  groups: [admins]
identity:
  oidc:
    issuers:
      - { name: corp, issuer: "${idp.issuer}", audience: "${idp.audience}", groupMap: { Platform-Admins: admins } }
  login:
    issuer: corp
    clientId: gatehouse-admin
    redirectUri: ${callbackUrl}
    scopes: [openid]
  authThrottle:
    perAddress: { limit: 3, window: 1h }
`);
  });
  after(async () => {
    await gateway?.stop();
    await idp?.close();
  });

  /** A login started and passed at the IdP as alice; its callback is then sent from `address`. */
  async function callbackFrom(address: string, tamper: (callback: string) => string = (callback) => callback) {
    const start = await fetch(`${gateway.adminUrl}/auth/login`, { redirect: 'manual' });
    const loginCookie = start.headers.getSetCookie()[0]!.split(';')[0]!;
    const callback = tamper(await idp.authorize(start.headers.get('location')!, 'alice', callbackUrl));
    return fetchFrom(address)(callback, { headers: { cookie: loginCookie } });
  }

  test('refused callbacks count against the address: once over the limit, even a good login from it is refused (429, JSON as the callback answers errors); other addresses log in', async () => {
    await clearOfWindowEnd(3_600_000, 30_000);
    const forgedState = (callback: string) => {
      const url = new URL(callback);
      url.searchParams.set('state', 'forged');
      return url.href;
    };
    assert.equal((await callbackFrom('127.0.0.21', forgedState)).status, 401);
    assert.equal((await fetchFrom('127.0.0.21')(`${callbackUrl}?code=x&state=y`)).status, 401);
    assert.equal((await callbackFrom('127.0.0.21', forgedState)).status, 401);
    const throttled = await callbackFrom('127.0.0.21');
    assert.equal(throttled.status, 429);
    assert.ok(Number(throttled.headers.get('retry-after')) >= 1, String(throttled.headers.get('retry-after')));
    assert.ok(!throttled.headers.getSetCookie().some((c) => c.startsWith('gatehouse_session=')), 'no session');
    assert.deepEqual(((await throttled.json()) as { error: { code: string } }).error.code, 'auth_throttled');
    // Another address logs in.
    const other = await callbackFrom('127.0.0.22');
    assert.equal(other.status, 200, await other.text());
    assert.ok(other.headers.getSetCookie().some((c) => c.startsWith('gatehouse_session=')));
    // Three refusals on record, then one throttle event; the throttled callback is not recorded.
    await gateway.waitForLog(/failed authentications throttled/);
    await gateway.cli(['sessions', 'list', '--limit', '1']);
    const db = new SQLite(join(gateway.dir, 'gatehouse.db'), { readonly: true });
    try {
      const events = db.prepare(`select kind, target, details from audit_events where kind in ('login.refused', 'auth.throttled') order by seq`).all() as Array<{ kind: string; target: string; details: string }>;
      assert.deepEqual(events.map((e) => [e.kind, e.target, (JSON.parse(e.details) as { client: string }).client]), [
        ['login.refused', 'oidc:corp', '127.0.0.21'],
        ['login.refused', 'oidc:corp', '127.0.0.21'],
        ['login.refused', 'oidc:corp', '127.0.0.21'],
        ['auth.throttled', 'address:127.0.0.21', '127.0.0.21'],
      ]);
    } finally {
      db.close();
    }
  });
});
