// A real OpenID provider for tests, on 127.0.0.1:0:
// - startOidcProvider: the real `oidc-provider` (client_credentials, and authorization
//   code + PKCE driven through its dev interaction forms), issuing RFC 9068 JWT access
//   tokens with a `groups` claim; `rotateKeys()` swaps in a provider with a new signing
//   key at the same issuer URL, as an IdP rotating keys would.

import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import Provider from 'oidc-provider';

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}` };
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

export interface TestOidcProvider {
  readonly issuer: string;
  readonly audience: string;
  readonly redirectUri: string;
  /** Current signing key id. */
  kid(): string;
  clientCredentialsToken(clientId?: string): Promise<string>;
  authorizationCodeToken(login: string): Promise<string>;
  /** Drives the IdP's login (and consent) for `login` from an authorization URL; returns the final redirect. */
  authorize(authorizationUrl: string, login: string, redirectPrefix: string): Promise<string>;
  /** Plays the user's part of the device flow (RFC 8628 §3.3) for `login`. */
  completeDeviceFlow(userCode: string, login: string): Promise<void>;
  /** The user enters the code, then declines (RFC 8628: the client then gets access_denied). */
  declineDeviceFlow(userCode: string): Promise<void>;
  rotateKeys(): Promise<void>;
  /** While down, every connection to the provider is dropped (an IdP in an outage). */
  setDown(down: boolean): void;
  close(): Promise<void>;
}

async function rsaJwk(): Promise<JWK> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: randomBytes(8).toString('hex'), alg: 'RS256', use: 'sig' };
}

export async function startOidcProvider(options: { audience?: string; groups?: Record<string, string[]>; loginRedirectUri?: string } = {}): Promise<TestOidcProvider> {
  const audience = options.audience ?? 'https://gatehouse.test';
  const groups = options.groups ?? {};
  const redirectUri = 'http://127.0.0.1:1/callback';
  let current: Provider | undefined;
  let down = false;
  const { server, url: issuer } = await listen((req, res) => (down ? req.socket.destroy() : current!.callback()(req, res)));
  let key = await rsaJwk();

  const build = (jwk: JWK) =>
    new Provider(issuer, {
      clients: [
        { client_id: 'svc-batch', client_secret: 'svc-batch-secret', grant_types: ['client_credentials'], redirect_uris: [], response_types: [] },
        { client_id: 'console', token_endpoint_auth_method: 'none', grant_types: ['authorization_code'], redirect_uris: [redirectUri], response_types: ['code'] },
        { client_id: 'gatehouse-cli', token_endpoint_auth_method: 'none', grant_types: ['urn:ietf:params:oauth:grant-type:device_code'], redirect_uris: [], response_types: [] },
        ...(options.loginRedirectUri
          ? [{ client_id: 'gatehouse-admin', token_endpoint_auth_method: 'none', grant_types: ['authorization_code'], redirect_uris: [options.loginRedirectUri], response_types: ['code'] }]
          : []),
      ],
      claims: { openid: ['sub', 'groups'] },
      jwks: { keys: [jwk] },
      scopes: ['openid', 'api'],
      pkce: { required: () => true },
      features: {
        devInteractions: { enabled: true },
        clientCredentials: { enabled: true },
        deviceFlow: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => audience,
          useGrantedResource: () => true,
          getResourceServerInfo: () => ({ scope: 'api', audience, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } }),
        },
      },
      findAccount: async (_ctx: unknown, id: string) => ({ accountId: id, claims: async () => ({ sub: id, ...(groups[id] ? { groups: groups[id] } : {}) }) }),
      extraTokenClaims: async (_ctx: unknown, token: unknown) => {
        const who = (token as { accountId?: string; clientId?: string }).accountId ?? (token as { clientId?: string }).clientId ?? '';
        return groups[who] ? { groups: groups[who] } : {};
      },
    });
  current = build(key);

  const jar = new Map<string, string>();
  const cookieHeader = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  const keepCookies = (res: Response) => {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair!.indexOf('=');
      jar.set(pair!.slice(0, eq), pair!.slice(eq + 1));
    }
  };
  const go = async (url: string, init: RequestInit = {}) => {
    const res = await fetch(new URL(url, issuer), { ...init, redirect: 'manual', headers: { ...(init.headers as Record<string, string>), cookie: cookieHeader() } });
    keepCookies(res);
    return res;
  };
  const tokenRequest = async (body: Record<string, string>, auth?: string) => {
    const res = await fetch(`${issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(auth ? { authorization: auth } : {}) },
      body: new URLSearchParams(body),
    });
    const json = (await res.json()) as { access_token?: string };
    if (!res.ok || !json.access_token) throw new Error(`token request failed: ${res.status} ${JSON.stringify(json)}`);
    return json.access_token;
  };

  return {
    issuer,
    audience,
    redirectUri,
    kid: () => key.kid!,
    clientCredentialsToken: (clientId = 'svc-batch') =>
      tokenRequest({ grant_type: 'client_credentials', scope: 'api', resource: audience }, `Basic ${Buffer.from(`${clientId}:${clientId}-secret`).toString('base64')}`),
    async authorizationCodeToken(login) {
      jar.clear();
      const verifier = randomBytes(32).toString('base64url');
      const challenge = createHash('sha256').update(verifier).digest('base64url');
      const auth = new URL('/auth', issuer);
      auth.search = new URLSearchParams({ client_id: 'console', response_type: 'code', redirect_uri: redirectUri, scope: 'openid api', resource: audience, code_challenge: challenge, code_challenge_method: 'S256', state: 's1' }).toString();
      const location = await authorize(auth.toString(), login, redirectUri);
      const code = new URL(location).searchParams.get('code');
      if (!code) throw new Error(`no code in ${location}`);
      return tokenRequest({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, client_id: 'console', code_verifier: verifier, resource: audience });
    },
    authorize,
    async completeDeviceFlow(userCode, login) {
      jar.clear();
      const form = async (res: Response) => {
        const page = await res.text();
        const xsrf = /name="xsrf" value="([^"]+)"/.exec(page)?.[1];
        if (!xsrf) throw new Error(`no xsrf in device page: ${page.slice(0, 300)}`);
        return xsrf;
      };
      const post = (body: Record<string, string>) => go('/device', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(body).toString() });
      const xsrf = await form(await go('/device'));
      const confirmXsrf = await form(await post({ xsrf, user_code: userCode }));
      const res = await post({ xsrf: confirmXsrf, user_code: userCode, confirm: 'yes' });
      const location = res.headers.get('location');
      if (!location) throw new Error(`device confirmation did not redirect: ${res.status}`);
      let next: Response = await go(location);
      let at = location;
      for (let step = 0; step < 10; step++) {
        const to = next.headers.get('location');
        if (!to) {
          const page = await next.text();
          const prompt = /name="prompt" value="(\w+)"/.exec(page)?.[1];
          if (prompt) {
            next = await go(at, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ prompt, login, password: 'any' }).toString() });
            continue;
          }
          if (!/success/i.test(page)) throw new Error(`device flow did not succeed: ${next.status} ${page.slice(0, 300)}`);
          return;
        }
        at = to;
        next = await go(to);
      }
      throw new Error('device flow did not finish in 10 steps');
    },
    async declineDeviceFlow(userCode) {
      jar.clear();
      const xsrfOf = async (res: Response) => {
        const page = await res.text();
        const xsrf = /name="xsrf" value="([^"]+)"/.exec(page)?.[1];
        if (!xsrf) throw new Error(`no xsrf in device page: ${page.slice(0, 300)}`);
        return xsrf;
      };
      const post = (body: Record<string, string>) => go('/device', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(body).toString() });
      const confirmXsrf = await xsrfOf(await post({ xsrf: await xsrfOf(await go('/device')), user_code: userCode }));
      await (await post({ xsrf: confirmXsrf, user_code: userCode, abort: 'yes' })).text();
    },
    async rotateKeys() {
      key = await rsaJwk();
      current = build(key);
    },
    setDown: (value) => {
      down = value;
      if (value) server.closeIdleConnections();
    },
    close: () => close(server),
  };

  async function authorize(authorizationUrl: string, login: string, redirectPrefix: string): Promise<string> {
      jar.clear();
      let res = await go(authorizationUrl);
      for (let step = 0; step < 10; step++) {
        const location = res.headers.get('location');
        if (!location) throw new Error(`authorization flow stopped at ${res.status}: ${await res.text()}`);
        if (location.startsWith(redirectPrefix)) return location;
        if (/\/interaction\/[^/]+$/.test(new URL(location, issuer).pathname)) {
          const page = await (await go(location)).text();
          const prompt = /name="prompt" value="(\w+)"/.exec(page)?.[1];
          if (!prompt) throw new Error(`no prompt in interaction page: ${page.slice(0, 500)}`);
          res = await go(location, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ prompt, login, password: 'any' }).toString() });
        } else {
          res = await go(location);
        }
      }
      throw new Error('authorization flow did not finish in 10 steps');
  }
}

