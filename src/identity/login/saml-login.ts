// SAML 2.0 service provider for the admin API / console (@node-saml/node-saml):
//   GET  /auth/saml/metadata  SP metadata (entity id, ACS URL, HTTP-POST binding);
//   GET  /auth/saml/login     302 to the IdP with an AuthnRequest (HTTP-Redirect), and a
//                             signed, HttpOnly, SameSite=Lax, 10-minute cookie naming
//                             that request's ID (path /auth/saml): the login is bound
//                             to this browser;
//   POST /auth/saml/acs       the IdP's Response (HTTP-POST binding). Posted from the
//                             IdP's site, it comes without the Lax cookie: the answer is
//                             a page that re-posts it from our origin to
//   POST /auth/saml/complete  which, with the cookie, validates it and sets the session
//                             cookie, as after an OIDC login.
// Enforced on each Response: it answers (InResponseTo, on the Response and on the
// SubjectConfirmationData) the request named by this browser's login cookie, and that
// request is answered once (login CSRF: an attacker's own Response, posted by the
// victim's browser, answers no request of the victim's, and an unsolicited,
// IdP-initiated Response none at all); the Assertion is signed by a configured IdP
// certificate (wantAssertionsSigned; an unsigned or altered assertion fails), the issuer
// is the configured IdP, Audience is our entity id, NotBefore / NotOnOrAfter hold within
// the clock skew, the assertion is younger than maxAssertionAge, and its ID was never
// used before. Request and assertion ids are kept once in the store (a row each), so a
// replay fails on every gateway; the cookie is signed with a key published in the
// store, so any gateway can finish a login another started.

import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SAML, ValidateInResponseTo, type CacheProvider, type Profile, type SamlConfig as NodeSamlConfig } from '@node-saml/node-saml';
import type { Kysely } from 'kysely';
import type { IdentityConfig } from '../../config/identity-schema.js';
import { GatehouseError } from '../../errors/index.js';
import type { Database } from '../../store/index.js';
import type { GatewayTokens } from '../gateway-tokens/gateway-tokens.js';
import { groupsFromClaims } from '../oidc/groups-from-claims.js';
import { recordingRefusal, type LoginRefusals } from './login-refusal.js';
import { cookieHeader, readCookie, sessionCookieHeader } from './oidc-login.js';
import { samlCompletePath, sendSamlRelayPage } from './saml-relay-page.js';

type SamlConfig = NonNullable<IdentityConfig['saml']>;

const maxFormBytes = 512 * 1024;
const requestCookie = 'gatehouse_saml';
const requestCookiePath = '/auth/saml';
const requestAudience = 'gatehouse-saml-login';
const requestTtlMs = 10 * 60_000;

export interface SamlLoginOptions {
  readonly saml: SamlConfig;
  readonly tokens: GatewayTokens;
  readonly db: Kysely<Database>;
  readonly secureCookies: boolean;
  readonly now?: () => number;
  /** Records a refused SAML login (the failed-authentication record) and throttles its address. */
  readonly refusals?: LoginRefusals | undefined;
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxFormBytes) throw new GatehouseError('request_too_large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}

function assertionId(profile: Profile): string | undefined {
  const assertion = profile.getAssertion?.() as { Assertion?: { $?: { ID?: string } } } | undefined;
  return assertion?.Assertion?.$?.ID ?? profile.ID;
}

/**
 * An attribute's values, one per AttributeValue. node-saml gives a single value as a
 * plain string, which groupsFromClaims would split like an OAuth scope string: "Domain
 * Admins" or "CN=ML,OU=Groups,DC=corp" is one group name, whether alone or not.
 */
export function samlAttributeValues(profile: Profile, attribute: string): unknown[] {
  const value = Object.hasOwn(profile, attribute) ? (profile as unknown as Record<string, unknown>)[attribute] : undefined;
  if (value === undefined || value === null) return [];
  return Array.isArray(value) ? value : [value];
}

/**
 * A node-saml cache that knows one request: the one this browser's login cookie names.
 * node-saml then checks InResponseTo (Response and SubjectConfirmationData) against it;
 * one-time use is kept in the store, not here.
 */
function pendingRequestOnly(requestId: string, issuedAt: string): CacheProvider {
  return {
    saveAsync: async () => null,
    getAsync: async (key) => (key === requestId ? issuedAt : null),
    removeAsync: async () => null,
  };
}

function refused(detail: string, message = 'The SAML response is not valid.'): GatehouseError {
  return new GatehouseError('invalid_credential', { message, detail });
}

export function createSamlLogin(options: SamlLoginOptions) {
  const { saml: config, tokens, db, secureCookies } = options;
  const now = options.now ?? Date.now;
  const spOptions: NodeSamlConfig = {
    issuer: config.entityId,
    callbackUrl: config.acsUrl,
    entryPoint: config.idpSsoUrl,
    idpIssuer: config.idpIssuer,
    idpCert: config.idpCert,
    audience: config.entityId,
    wantAssertionsSigned: true,
    wantAuthnResponseSigned: false,
    acceptedClockSkewMs: config.clockSkew,
    maxAssertionAgeMs: config.maxAssertionAge,
    // Set per login below: the request a Response must answer comes from the browser's cookie.
    validateInResponseTo: ValidateInResponseTo.never,
    requestIdExpirationPeriodMs: requestTtlMs,
    identifierFormat: null,
    disableRequestedAuthnContext: true,
  };
  const metadata = new SAML(spOptions).generateServiceProviderMetadata(null, null);
  const requestCookieHeader = (value: string, maxAgeSec: number) => cookieHeader(requestCookie, value, { maxAgeSec, path: requestCookiePath, secure: secureCookies });

  /** Remembers id for one use across gateways; false when it was already used. */
  async function useOnce(id: string, expiresAt: number): Promise<boolean> {
    try {
      await db.insertInto('identity_saml_assertions').values({ id, expires_at: expiresAt }).execute();
      return true;
    } catch (error) {
      if (isUniqueViolation(error)) return false;
      throw error;
    }
  }

  async function start(res: ServerResponse): Promise<void> {
    const requestId = `_${randomBytes(20).toString('hex')}`;
    const location = await new SAML({ ...spOptions, generateUniqueId: () => requestId }).getAuthorizeUrlAsync('', undefined, {});
    const pending = await tokens.signState({ requestId, issuedAt: new Date(now()).toISOString() }, requestAudience, requestTtlMs);
    res.writeHead(302, { location, 'set-cookie': requestCookieHeader(pending, requestTtlMs / 1000), 'cache-control': 'no-store' });
    res.end();
  }

  async function finish(req: IncomingMessage, res: ServerResponse, samlResponse: string): Promise<void> {
    const raw = readCookie(req, requestCookie);
    const pending = raw ? await tokens.verifyState(raw, requestAudience) : undefined;
    const requestId = pending?.['requestId'];
    const issuedAt = pending?.['issuedAt'];
    if (typeof requestId !== 'string' || typeof issuedAt !== 'string') {
      throw refused('SAML: no login cookie (or it expired) in this browser: an unsolicited response, or one started in another browser', 'No SAML login was started in this browser (or it expired): start again at /auth/saml/login.');
    }
    let profile: Profile | null;
    try {
      const sp = new SAML({ ...spOptions, validateInResponseTo: ValidateInResponseTo.always, cacheProvider: pendingRequestOnly(requestId, issuedAt) });
      ({ profile } = await sp.validatePostResponseAsync({ SAMLResponse: samlResponse }));
    } catch (error) {
      const message = (error as Error).message;
      if (/InResponseTo/.test(message)) throw refused(`SAML: ${message} (the response does not answer the request this browser started)`, 'The SAML response does not answer the login started in this browser: start again at /auth/saml/login.');
      throw refused(`SAML: ${message}`);
    }
    if (!profile || !profile.nameID) throw refused('SAML: no NameID');
    if (profile.issuer !== config.idpIssuer) throw refused(`SAML issuer ${JSON.stringify(String(profile.issuer).slice(0, 200))}`);
    const id = assertionId(profile);
    if (!id) throw refused('SAML: assertion without ID');
    const expiresAt = now() + Math.max(config.maxAssertionAge + config.clockSkew, requestTtlMs);
    if (!(await useOnce(`${config.idpIssuer} request ${requestId}`, expiresAt))) throw refused(`SAML replay: request ${requestId} was already answered`, 'This SAML assertion was already used.');
    if (!(await useOnce(`${config.idpIssuer} ${id}`, expiresAt))) throw refused(`SAML replay of assertion ${id}`, 'This SAML assertion was already used.');
    // Forget ids that can no longer validate anyway (bounded table).
    db.deleteFrom('identity_saml_assertions').where('expires_at', '<', now()).execute().catch(() => undefined);

    const identity = {
      subject: `saml:${config.name}:${profile.nameID}`,
      kind: config.kind,
      groups: groupsFromClaims({ groups: samlAttributeValues(profile, config.groupsAttribute) }, ['groups'], config.groupMap),
      method: 'session' as const,
      credentialId: `saml:${id}`,
    };
    const session = await tokens.issue(identity, { connections: [] }, config.sessionTtl);
    const body = JSON.stringify({ subject: identity.subject, groups: identity.groups, expiresAt: new Date(session.expiresAt).toISOString() });
    res.writeHead(200, {
      'content-type': 'application/json',
      'cache-control': 'no-store',
      'set-cookie': [sessionCookieHeader(session.token, config.sessionTtl, secureCookies), requestCookieHeader('', 0)],
    });
    res.end(body);
  }

  async function samlResponseOf(req: IncomingMessage): Promise<string> {
    const samlResponse = (await readForm(req)).get('SAMLResponse');
    if (!samlResponse) throw refused('no SAMLResponse field', 'The SAML response is missing.');
    return samlResponse;
  }

  /** Handles /auth/saml/*; false for any other path. */
  return async function handleSaml(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    if (url.pathname === '/auth/saml/metadata' && req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/samlmetadata+xml' });
      res.end(metadata);
      return true;
    }
    if (url.pathname === '/auth/saml/login' && req.method === 'GET') {
      await start(res);
      return true;
    }
    if (url.pathname === '/auth/saml/acs' && req.method === 'POST') {
      const samlResponse = await samlResponseOf(req);
      // Cross-site from the IdP, the Lax cookie is not sent: re-post from our origin.
      if (readCookie(req, requestCookie) === undefined) sendSamlRelayPage(res, samlResponse);
      else await recordingRefusal(options.refusals, `saml:${config.name}`, req, () => finish(req, res, samlResponse));
      return true;
    }
    if (url.pathname === samlCompletePath && req.method === 'POST') {
      await recordingRefusal(options.refusals, `saml:${config.name}`, req, async () => finish(req, res, await samlResponseOf(req)));
      return true;
    }
    return false;
  };
}
