// SAML 2.0 service provider for the admin API / console (@node-saml/node-saml):
//   GET  /auth/saml/metadata  SP metadata (entity id, ACS URL, HTTP-POST binding);
//   GET  /auth/saml/login     302 to the IdP with an AuthnRequest (HTTP-Redirect);
//   POST /auth/saml/acs       the IdP's Response (HTTP-POST binding), then the session
//                             cookie, as after an OIDC login.
// Enforced on each Response: the Assertion is signed by a configured IdP certificate
// (wantAssertionsSigned; an unsigned or altered assertion fails), the issuer is the
// configured IdP, Audience is our entity id, NotBefore / NotOnOrAfter hold within the
// clock skew, the assertion is younger than maxAssertionAge, and its ID was never used
// before (a row per assertion in the store, so a replay fails on every gateway).

import type { IncomingMessage, ServerResponse } from 'node:http';
import { SAML, ValidateInResponseTo, type Profile } from '@node-saml/node-saml';
import type { Kysely } from 'kysely';
import type { IdentityConfig } from '../../config/identity-schema.js';
import { GatehouseError } from '../../errors/index.js';
import type { Database } from '../../store/index.js';
import type { GatewayTokens } from '../gateway-tokens/gateway-tokens.js';
import { groupsFromClaims } from '../oidc/groups-from-claims.js';
import { sessionCookieHeader } from './oidc-login.js';

type SamlConfig = NonNullable<IdentityConfig['saml']>;

const maxFormBytes = 512 * 1024;

export interface SamlLoginOptions {
  readonly saml: SamlConfig;
  readonly tokens: GatewayTokens;
  readonly db: Kysely<Database>;
  readonly secureCookies: boolean;
  readonly now?: () => number;
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

export function createSamlLogin(options: SamlLoginOptions) {
  const { saml: config, tokens, db, secureCookies } = options;
  const now = options.now ?? Date.now;
  const sp = new SAML({
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
    // Replay is refused by assertion id below (shared by every gateway through the store).
    validateInResponseTo: ValidateInResponseTo.never,
    identifierFormat: null,
    disableRequestedAuthnContext: true,
  });
  const metadata = sp.generateServiceProviderMetadata(null, null);

  async function acs(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const form = await readForm(req);
    const samlResponse = form.get('SAMLResponse');
    if (!samlResponse) throw new GatehouseError('invalid_credential', { message: 'The SAML response is missing.', detail: 'no SAMLResponse field' });
    let profile: Profile | null;
    try {
      ({ profile } = await sp.validatePostResponseAsync({ SAMLResponse: samlResponse }));
    } catch (error) {
      throw new GatehouseError('invalid_credential', { message: 'The SAML response is not valid.', detail: `SAML: ${(error as Error).message}` });
    }
    if (!profile || !profile.nameID) throw new GatehouseError('invalid_credential', { message: 'The SAML response is not valid.', detail: 'SAML: no NameID' });
    if (profile.issuer !== config.idpIssuer) throw new GatehouseError('invalid_credential', { message: 'The SAML response is not valid.', detail: `SAML issuer ${JSON.stringify(String(profile.issuer).slice(0, 200))}` });
    const id = assertionId(profile);
    if (!id) throw new GatehouseError('invalid_credential', { message: 'The SAML response is not valid.', detail: 'SAML: assertion without ID' });
    try {
      await db.insertInto('identity_saml_assertions').values({ id: `${config.idpIssuer} ${id}`, expires_at: now() + config.maxAssertionAge + config.clockSkew }).execute();
    } catch (error) {
      if (isUniqueViolation(error)) throw new GatehouseError('invalid_credential', { message: 'This SAML assertion was already used.', detail: `SAML replay of assertion ${id}` });
      throw error;
    }
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
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store', 'set-cookie': sessionCookieHeader(session.token, config.sessionTtl, secureCookies) });
    res.end(body);
  }

  /** Handles /auth/saml/*; false for any other path. */
  return async function handleSaml(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    if (url.pathname === '/auth/saml/metadata' && req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/samlmetadata+xml' });
      res.end(metadata);
      return true;
    }
    if (url.pathname === '/auth/saml/login' && req.method === 'GET') {
      const location = await sp.getAuthorizeUrlAsync('', undefined, {});
      res.writeHead(302, { location, 'cache-control': 'no-store' });
      res.end();
      return true;
    }
    if (url.pathname === '/auth/saml/acs' && req.method === 'POST') {
      await acs(req, res);
      return true;
    }
    return false;
  };
}
