// Browser login for the admin API / console: OIDC authorization code with PKCE
// (RFC 7636, S256) through openid-client.
//   GET /auth/login     → 302 to the IdP, with state, nonce and the code verifier kept
//                         in a signed, HttpOnly, 10-minute cookie scoped to /auth;
//   GET /auth/callback  → checks state, exchanges the code with the verifier, validates
//                         the ID token (iss, aud, nonce, signature), maps its groups with
//                         the issuer's groupsClaims / groupMap, and sets the session
//                         cookie: a Gatehouse token scoped to no connection (so it works
//                         on the admin API only), HttpOnly, SameSite=Lax, Secure with TLS.
// Any gateway sharing the store can finish a login another one started (the cookie is
// signed with a key published in the store), and sessions are revocable like any token.

import type { IncomingMessage, ServerResponse } from 'node:http';
import * as client from 'openid-client';
import { isLoopbackUrl } from '../../config/fields.js';
import type { IdentityConfig } from '../../config/identity-schema.js';
import { GatehouseError } from '../../errors/index.js';
import type { GatewayTokens } from '../gateway-tokens/gateway-tokens.js';
import { groupsFromClaims, readClaimPath } from '../oidc/groups-from-claims.js';
import { recordingRefusal, type LoginRefusals } from './login-refusal.js';

export const sessionCookie = 'gatehouse_session';
const loginCookie = 'gatehouse_login';
const loginAudience = 'gatehouse-login';
const loginTtlMs = 10 * 60_000;

type LoginConfig = NonNullable<IdentityConfig['login']>;

export interface OidcLoginOptions {
  readonly login: LoginConfig;
  readonly issuer: IdentityConfig['oidc']['issuers'][number];
  readonly tokens: GatewayTokens;
  readonly secureCookies: boolean;
  /** Records a refused login callback (the failed-authentication record) and throttles its address. */
  readonly refusals?: LoginRefusals | undefined;
}

export function readCookie(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header || header.length > 16 * 1024) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** An HttpOnly, SameSite=Lax cookie (Secure when the listener has TLS); Max-Age=0 deletes it. */
export function cookieHeader(name: string, value: string, options: { maxAgeSec: number; path: string; secure: boolean }): string {
  return `${name}=${value}; Path=${options.path}; Max-Age=${options.maxAgeSec}; HttpOnly; SameSite=Lax${options.secure ? '; Secure' : ''}`;
}

/** The session cookie: HttpOnly, SameSite=Lax, Secure when the listener has TLS. */
export function sessionCookieHeader(token: string, ttlMs: number, secure: boolean): string {
  return cookieHeader(sessionCookie, token, { maxAgeSec: Math.floor(ttlMs / 1000), path: '/', secure });
}

/**
 * The code exchange failed because the IdP could not be reached or failed itself (no
 * answer, a timeout, a 5xx), not because it refused: the login is not refused (401) but
 * unavailable (503), and the user can retry.
 */
function idpUnreachable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error instanceof TypeError && error.message === 'fetch failed') return true;
  if (error.name === 'TimeoutError' || error.name === 'AbortError') return true;
  const cause = (error as { cause?: unknown }).cause;
  return (error as { code?: unknown }).code === 'OAUTH_RESPONSE_IS_NOT_CONFORM' && cause instanceof Response && cause.status >= 500;
}

function describe(error: unknown): string {
  const cause = (error as { cause?: unknown }).cause;
  return `${(error as Error).message}${cause instanceof Error ? ` (${cause.message})` : cause instanceof Response ? ` (${cause.status})` : ''}`;
}

export function createOidcLogin(options: OidcLoginOptions) {
  const { login, issuer, tokens, secureCookies } = options;
  let configuration: Promise<client.Configuration> | undefined;

  function discover(): Promise<client.Configuration> {
    configuration ??= (async () => {
      const server = new URL(issuer.issuer);
      // Plain http only for a loopback IdP (development, tests) or where the config says the network is trusted.
      const insecure = server.protocol === 'http:' && (isLoopbackUrl(server) || issuer.allowInsecureHttp);
      const auth = login.clientSecret ? client.ClientSecretBasic(login.clientSecret) : client.None();
      return client.discovery(server, login.clientId, login.clientSecret ? undefined : { token_endpoint_auth_method: 'none' }, auth, insecure ? { execute: [client.allowInsecureRequests] } : undefined);
    })();
    configuration.catch(() => (configuration = undefined));
    return configuration;
  }

  async function start(res: ServerResponse): Promise<void> {
    let config: client.Configuration;
    try {
      config = await discover();
    } catch (error) {
      throw new GatehouseError('identity_provider_unavailable', { detail: `login discovery: ${(error as Error).message}` });
    }
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: login.redirectUri,
      scope: login.scopes.join(' '),
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    const signed = await tokens.signState({ state, nonce, verifier }, loginAudience, loginTtlMs);
    res.writeHead(302, { location: url.href, 'set-cookie': cookieHeader(loginCookie, signed, { maxAgeSec: loginTtlMs / 1000, path: '/auth', secure: secureCookies }), 'cache-control': 'no-store' });
    res.end();
  }

  async function callback(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const raw = readCookie(req, loginCookie);
    const pending = raw ? await tokens.verifyState(raw, loginAudience) : undefined;
    if (!pending || typeof pending['state'] !== 'string' || typeof pending['verifier'] !== 'string' || typeof pending['nonce'] !== 'string') {
      throw new GatehouseError('invalid_credential', { message: 'No login in progress (or it expired): start again at /auth/login.', detail: 'login cookie missing or invalid' });
    }
    let config: client.Configuration;
    try {
      config = await discover();
    } catch (error) {
      throw new GatehouseError('identity_provider_unavailable', { detail: `login discovery: ${(error as Error).message}` });
    }
    let claims: Record<string, unknown> | undefined;
    try {
      const current = new URL(login.redirectUri);
      current.search = url.search;
      const result = await client.authorizationCodeGrant(config, current, {
        pkceCodeVerifier: pending['verifier'],
        expectedState: pending['state'],
        expectedNonce: pending['nonce'],
        idTokenExpected: true,
      });
      claims = result.claims() as Record<string, unknown> | undefined;
    } catch (error) {
      if (idpUnreachable(error)) throw new GatehouseError('identity_provider_unavailable', { detail: `login callback: the token endpoint could not be reached: ${describe(error)}` });
      throw new GatehouseError('invalid_credential', { message: 'The login could not be completed.', detail: `login callback: ${(error as Error).message}` });
    }
    const sub = claims ? readClaimPath(claims, issuer.subjectClaim) : undefined;
    if (!claims || typeof sub !== 'string' || sub === '') throw new GatehouseError('invalid_credential', { detail: 'ID token without a subject' });
    const identity = {
      subject: `oidc:${issuer.name}:${sub}`,
      kind: issuer.kind,
      groups: groupsFromClaims(claims, issuer.groupsClaims, issuer.groupMap),
      method: 'session' as const,
      credentialId: `login:${issuer.name}`,
    };
    const session = await tokens.issue(identity, { connections: [] }, login.sessionTtl);
    const body = JSON.stringify({ subject: identity.subject, groups: identity.groups, expiresAt: new Date(session.expiresAt).toISOString() });
    res.writeHead(200, {
      'content-type': 'application/json',
      'cache-control': 'no-store',
      'set-cookie': [
        sessionCookieHeader(session.token, login.sessionTtl, secureCookies),
        cookieHeader(loginCookie, '', { maxAgeSec: 0, path: '/auth', secure: secureCookies }),
      ],
    });
    res.end(body);
  }

  /** Handles /auth/login and /auth/callback; false for any other path. */
  return async function handleLogin(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    if (url.pathname === '/auth/login' && req.method === 'GET') return start(res).then(() => true);
    if (url.pathname === '/auth/callback' && req.method === 'GET') return recordingRefusal(options.refusals, `oidc:${issuer.name}`, req, () => callback(req, res, url)).then(() => true);
    return false;
  };
}
