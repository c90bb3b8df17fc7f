// The `identity` section: OIDC issuers the gateway trusts as a resource server,
// Gatehouse's own short-lived tokens, and how fast revocations propagate.
// Only asymmetric algorithms can be allowed: `none` and HMAC (which would let a token
// "signed" with the issuer's public key verify) are refused at validation time.

import { resolve } from 'node:path';
import { z } from 'zod';
import { isLoopbackUrl, parseCidr, timerDuration } from './fields.js';

export const asymmetricAlgorithms = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;

const shortName = /^[a-z0-9][a-z0-9_-]{0,62}$/;

interface Helpers {
  readonly text: z.ZodType<string, string>;
  readonly duration: z.ZodType<number, string | number>;
  readonly secret: z.ZodType<string, string>;
  readonly baseDir: string;
}

/**
 * A value or a non-empty list of them. Not a z.union: its error was "does not match any
 * accepted form", hiding the real one (a file that cannot be read, an unset ${VAR}).
 */
function oneOrMany(item: z.ZodType<string, string>) {
  const list = z.array(item).min(1);
  return z.unknown().transform((value, ctx): string | string[] => {
    const result = Array.isArray(value) ? list.safeParse(value) : item.safeParse(value);
    if (result.success) return result.data;
    for (const issue of result.error.issues) ctx.addIssue({ code: 'custom', path: issue.path as (string | number)[], message: issue.message });
    return z.NEVER;
  });
}

export function buildIdentitySchema({ text, duration, secret, baseDir }: Helpers) {
  const throttleLimit = (limit: number, min = 1) =>
    z.strictObject({ limit: z.number().int('must be a whole number').min(min, min === 0 ? 'must be at least 0 (0: not counted)' : 'must be at least 1 (to turn throttling off, set authThrottle.enabled: false)').max(1_000_000, 'must be at most 1000000').default(limit), window: duration.pipe(z.number().min(1000, 'must be at least 1s').max(86_400_000, 'must be at most 24h')).default(60_000) }).prefault({});
  const url = text.pipe(z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }));
  // Values a deployment sets per environment (`clientId: ${OIDC_CLIENT_ID}`): `${ENV}` is
  // expanded, as in URLs; taken literally, the IdP got "${OIDC_CLIENT_ID}".
  const deployed = text.pipe(z.string().min(1));

  const issuer = z
    .strictObject({
      /** Short name used in subjects (`oidc:<name>:<sub>`) and logs. */
      name: z.string().regex(shortName, 'must be lower-case letters, digits, "-" or "_" (at most 63)'),
      issuer: url,
      audience: oneOrMany(deployed),
      discovery: z.boolean().default(true),
      jwksUri: url.optional(),
      /** Accept http:// issuer and JWKS URLs off this host (a network where nobody can tamper with the keys in transit). */
      allowInsecureHttp: z.boolean().default(false),
      allowedAlgorithms: z.array(z.enum(asymmetricAlgorithms, { error: `must be one of ${asymmetricAlgorithms.join(', ')} (no "none", no HMAC)` })).min(1).default(['RS256', 'PS256', 'ES256', 'EdDSA']),
      subjectClaim: z.string().min(1).default('sub'),
      groupsClaims: z.array(z.string().min(1)).default(['groups']),
      /** IdP group → Gatehouse group(s). When set, only mapped groups are kept. */
      groupMap: z.record(z.string(), z.union([z.string().min(1), z.array(z.string().min(1))])).optional(),
      kind: z.enum(['human', 'service', 'agent']).default('human'),
      jwks: z
        .strictObject({
          /** Least time between two JWKS fetches (an unknown kid triggers at most one refetch per cooldown). */
          cooldown: duration.default(30_000),
          /** A fetched JWKS is refreshed after this long even if every kid is known. */
          cacheMaxAge: duration.default(600_000),
          timeout: timerDuration(1, 'with 0 every discovery and JWKS fetch is aborted at once').default(5_000),
          /** While refetches fail (an IdP outage), the last keys fetched still verify for this long; 0: not at all. */
          maxStale: duration.default(3_600_000),
        })
        .prefault({}),
    })
    .refine((i) => i.discovery || i.jwksUri !== undefined, { message: 'jwksUri is required when discovery is false', path: ['jwksUri'] })
    .superRefine((i, ctx) => {
      if (i.allowInsecureHttp) return;
      for (const key of ['issuer', 'jwksUri'] as const) {
        const value = i[key];
        // Refinements run after a failed URL check too: a value that is no URL is reported there.
        if (value === undefined || !value.startsWith('http:') || !URL.canParse(value) || isLoopbackUrl(new URL(value))) continue;
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: 'http:// to another host lets anyone on the network path replace the signing keys and forge any identity: use https://, or set allowInsecureHttp: true for a network you trust',
        });
      }
    });

  return z
    .strictObject({
      oidc: z
        .strictObject({
          /** Tolerance on exp / nbf / iat, bounded so a misconfiguration cannot disable expiry. */
          clockSkew: duration.pipe(z.number().max(300_000, 'must be at most 5m')).default(30_000),
          cache: z.strictObject({ maxEntries: z.number().int().min(0).default(10_000), ttl: duration.default(300_000) }).prefault({}),
          issuers: z.array(issuer).default([]),
        })
        .prefault({}),
      gatewayTokens: z
        .strictObject({
          enabled: z.boolean().default(true),
          /** `iss` of Gatehouse tokens; defaults to gateway.publicUrl, else "gatehouse". */
          issuer: deployed.optional(),
          audience: deployed.default('gatehouse'),
          defaultTtl: duration.default(15 * 60_000),
          maxTtl: duration.default(60 * 60_000),
          /** PKCS#8 PEM Ed25519 private key (a secret reference). Without it, keyFile is used. */
          signingKey: secret.optional(),
          /**
           * Generated on first start (mode 0600) when absent. Default: beside the SQLite
           * store, or data/ beside the config with PostgreSQL (withDefaultKeyFile).
           */
          keyFile: text.transform((v) => resolve(baseDir, v)).optional(),
        })
        .refine((t) => t.defaultTtl > 0 && t.defaultTtl <= t.maxTtl, { message: 'defaultTtl must be positive and at most maxTtl', path: ['defaultTtl'] })
        .prefault({}),
      login: z
        .strictObject({
          /** Name of an entry in oidc.issuers: its groupsClaims / groupMap / kind apply to ID token claims. */
          issuer: z.string().regex(shortName),
          clientId: deployed,
          /** Secret ref; omit for a public client (PKCE only). */
          clientSecret: secret.optional(),
          /** Where the IdP sends the browser back: the admin listener's /auth/callback. */
          redirectUri: url,
          scopes: z.array(z.string().min(1)).default(['openid', 'profile']),
          sessionTtl: duration.default(8 * 3_600_000),
        })
        .optional(),
      saml: z
        .strictObject({
          /** Short name used in subjects: `saml:<name>:<NameID>`. */
          name: z.string().regex(shortName).default('saml'),
          /** This service provider's entity id (also the expected Audience). */
          entityId: deployed,
          /** The admin listener's /auth/saml/acs URL, as the browser reaches it. */
          acsUrl: url,
          /** The IdP's single sign-on URL (HTTP-Redirect binding). */
          idpSsoUrl: url,
          /** The IdP's issuer (entity id); assertions from another issuer are refused. */
          idpIssuer: deployed,
          /** The IdP's signing certificate(s), PEM, by reference (${ENV} or file:), or a list of them. */
          idpCert: oneOrMany(secret),
          groupsAttribute: z.string().min(1).default('groups'),
          groupMap: z.record(z.string(), z.union([z.string().min(1), z.array(z.string().min(1))])).optional(),
          kind: z.enum(['human', 'service', 'agent']).default('human'),
          clockSkew: duration.pipe(z.number().max(300_000, 'must be at most 5m')).default(60_000),
          /** An assertion older than this (IssueInstant) is refused. */
          maxAssertionAge: duration.default(5 * 60_000),
          sessionTtl: duration.default(8 * 3_600_000),
        })
        .optional(),
      authThrottle: z
        .strictObject({
          /** Off: every attempt is checked, however many failed before. */
          enabled: z.boolean().default(true),
          /** Failed authentications from one client address (an IPv6 address by its /64) within a window. */
          perAddress: throttleLimit(10),
          /** Failed authentications claiming one API key id, from any address, within a window (limit 0: not counted). */
          perAccount: throttleLimit(50, 0),
          /** Client addresses never counted nor refused (`10.0.0.0/8`, `::1`, `192.0.2.7`). */
          exempt: z.array(z.string().refine((value) => parseCidr(value) !== undefined, 'must be an IP address or a CIDR block (10.0.0.0/8, fd00::/8)')).default([]),
          /** Most addresses and accounts remembered at once (an attacker rotating addresses cannot grow it further). */
          maxTracked: z.number().int().min(100).max(10_000_000).default(100_000),
        })
        .prefault({}),
      revocation: z
        .strictObject({
          /** How often each gateway polls the store's revocation generation. */
          pollInterval: duration.pipe(z.number().min(50).max(1000, 'must be at most 1s')).default(250),
        })
        .prefault({}),
    })
    .superRefine((value, ctx) => {
      const seen = new Set<string>();
      if (value.login && !value.oidc.issuers.some((i) => i.name === value.login!.issuer)) {
        ctx.addIssue({ code: 'custom', path: ['login', 'issuer'], message: `no oidc.issuers entry is named "${value.login.issuer}"` });
      }
      if (value.saml && !value.gatewayTokens.enabled) ctx.addIssue({ code: 'custom', path: ['saml'], message: 'SAML sessions are Gatehouse tokens: gatewayTokens.enabled must be true' });
      if (value.login && !value.gatewayTokens.enabled) ctx.addIssue({ code: 'custom', path: ['login'], message: 'login sessions are Gatehouse tokens: gatewayTokens.enabled must be true' });
      // Tokens are routed to an entry by their `iss`: a second entry for the same issuer
      // would be ignored, and its tokens judged by the other's audience and kind. A
      // trailing slash is compared too (a common slip; the token's iss has one or not).
      const byIssuer = new Map<string, number>();
      value.oidc.issuers.forEach((i, index) => {
        if (seen.has(i.name)) ctx.addIssue({ code: 'custom', path: ['oidc', 'issuers', index, 'name'], message: `duplicate issuer name "${i.name}"` });
        seen.add(i.name);
        const key = i.issuer.replace(/\/+$/, '');
        const first = byIssuer.get(key);
        if (first !== undefined) {
          const other = value.oidc.issuers[first]!;
          ctx.addIssue({
            code: 'custom',
            path: ['oidc', 'issuers', index, 'issuer'],
            message: `same issuer as issuers[${first}] ("${other.name}"): one entry per issuer; to accept several audiences list them in one entry (audience: [${[...([] as string[]).concat(other.audience), ...([] as string[]).concat(i.audience)].join(', ')}])`,
          });
        } else byIssuer.set(key, index);
      });
    });
}

export type IdentityConfig = z.output<ReturnType<typeof buildIdentitySchema>>;
export type OidcIssuerConfig = IdentityConfig['oidc']['issuers'][number];
