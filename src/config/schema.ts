// The config schema: validated once at start, unknown keys refused, every error
// naming its dotted path. Secret references are resolved here, so the rest of the
// gateway only ever sees resolved, frozen values.

import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { z } from 'zod';
import { buildApprovalsSchema } from './approvals-schema.js';
import { buildIdentitySchema } from './identity-schema.js';
import { agentsSection, viaPattern } from './agents-schema.js';
import { discriminatorError, durationField, envText, namePattern, secretRef, secretUrl, timerDuration } from './fields.js';
import { expandEnv } from './secret-ref.js';
import { parseSize } from './units.js';
import { buildMaskingSchema, maskingReferenceIssues, unknownMaskingProfiles } from './masking-schema.js';
import { buildPostgresConnectionSchema } from './postgres-schema.js';
import { buildPolicySchema, ruleSchema, type PolicyConfig } from './policy-schema.js';
import { buildAuditSchema, withDefaultKeyFile } from './audit-schema.js';

export type SecretsToResolve = 'all' | 'store-only' | 'store-and-approvals';

export interface SchemaContext {
  readonly env: NodeJS.ProcessEnv;
  /** Directory of the config file: relative paths are resolved against it. */
  readonly baseDir: string;
  /**
   * `store-only` resolves just the store's secrets (connection secrets become empty
   * placeholders), for CLI commands that only read and write the store;
   * `store-and-approvals` those and the approvals' (notification webhooks, Slack), for
   * `gatehouse reviews`, whose votes notify reviewers as a gateway's do.
   */
  readonly secrets?: SecretsToResolve;
}

/**
 * A listener's `maxConnectionsPerClient` above its `maxConnections` could never be
 * reached: refused, as a misreading of the two. Left out, it defaults to the default or
 * `maxConnections`, whichever is lower (so lowering `maxConnections` alone stays valid).
 */
function perClientWithinListener(limits: { maxConnections: number; maxConnectionsPerClient?: number | undefined }, ctx: z.RefinementCtx): void {
  if (limits.maxConnectionsPerClient !== undefined && limits.maxConnectionsPerClient > limits.maxConnections) {
    ctx.addIssue({ code: 'custom', path: ['maxConnectionsPerClient'], message: `${limits.maxConnectionsPerClient} is above maxConnections (${limits.maxConnections}): one client can never hold more connections than the listener` });
  }
}

function withPerClientDefault(fallback: number) {
  return <T extends { maxConnections: number; maxConnectionsPerClient?: number | undefined }>(limits: T): Omit<T, 'maxConnectionsPerClient'> & { maxConnectionsPerClient: number } => ({
    ...limits,
    maxConnectionsPerClient: limits.maxConnectionsPerClient ?? Math.min(fallback, limits.maxConnections),
  });
}

export function buildConfigSchema({ env, baseDir, secrets = 'all' }: SchemaContext) {
  const text = envText(env);
  const storeSecret = secretRef(env, baseDir);

  const secret = secrets === 'all' ? storeSecret : z.string().transform(() => '');
  const approvalsSecret = secrets === 'store-only' ? secret : storeSecret;

  const duration = durationField;

  const size = z.union([z.string(), z.number()]).transform((value, ctx) => {
    const bytes = parseSize(value);
    if (bytes === undefined) {
      ctx.addIssue({ code: 'custom', message: `"${value}" is not a size (use e.g. 512KiB, 10MiB, or bytes)` });
      return z.NEVER;
    }
    return bytes;
  });

  const path = text.transform((value) => resolve(baseDir, value));

  const host = z.string().refine((h) => isIP(h) !== 0 || h === 'localhost', 'must be an IP address or localhost').default('127.0.0.1');
  // A number, or a `${ENV_VAR}` reference to one (quoted in flow style: `port: "${GW_PORT}"`),
  // so several gateways on one host can run one config file, each given its own ports.
  const port = z
    .unknown()
    .transform((value, ctx) => {
      if (typeof value === 'number') return value;
      let expanded: string | undefined;
      try {
        expanded = typeof value === 'string' ? expandEnv(value, env) : undefined;
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
        return z.NEVER;
      }
      if (expanded !== undefined && /^\d{1,5}$/.test(expanded)) return Number(expanded);
      const message = value === undefined ? 'is required' : expanded === undefined ? 'must be a port number or a ${ENV_VAR} reference to one' : `"${expanded}" is not a port number (0-65535)`;
      ctx.addIssue({ code: 'custom', message });
      return z.NEVER;
    })
    .pipe(z.number().int().min(0).max(65535));
  const listen = z.strictObject({ host, port });
  // The gateway's and the admin listener's port has a default (docs/configuration.md):
  // `listen: { host: 0.0.0.0 }` alone keeps it.
  const listenWithDefaultPort = (defaultPort: number) => z.strictObject({ host, port: port.default(defaultPort) }).prefault({});

  const listenerTls = z.strictObject({ cert: secret, key: secret });

  const groupList = z.array(z.string().min(1)).min(1);

  const credential = z.strictObject({
    /** Header that carries the target's credential. */
    header: z.string().regex(/^[A-Za-z0-9-]+$/, 'must be a header name').default('authorization'),
    /** Prefix placed before the secret, e.g. "Bearer". Empty for none. */
    scheme: z.string().default('Bearer'),
    secret,
  });

  // A connection routed through an agent has no target here (the agent holds it): a
  // placeholder keeps `target` required for every other connection, in field order.
  const connection = z.strictObject({
    name: z.string().regex(namePattern, 'must be lower-case letters, digits, "-" or "_" (at most 63)'),
    type: z.enum(['openai', 'http']),
    description: z.string().optional(),
    /** With `via`, the agent holds the target: load.ts fills in viaTargetPlaceholder. */
    // A user:password in the URL would be a literal secret in the config (and in any
    // message that prints the target): the credential belongs in credential.secret.
    target: text.pipe(
      z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).refine((u) => {
        const url = URL.canParse(u) ? new URL(u) : undefined; // (refine runs after a failed check too)
        return url === undefined || (url.username === '' && url.password === '');
      }, 'must not carry a user or password: put the credential in credential.secret (e.g. scheme: Basic)'),
    ),
    /** `agent:<name>`: forwarded through that egress-only agent, which holds the target (docs/agent.md). */
    via: z.string().regex(viaPattern, 'must be agent:<name>').optional(),
    credential: credential.optional(),
    tls: z.strictObject({ ca: secret.optional(), rejectUnauthorized: z.boolean().default(true) }).optional(),
    timeouts: z
      .strictObject({ connect: duration.default(5_000), headers: duration.default(60_000), body: duration.default(300_000) })
      .prefault({}),
    limits: z.strictObject({ maxRequestBody: size.optional(), maxResponseBody: size.optional() }).prefault({}),
    access: z.strictObject({ groups: groupList }),
    masking: z.array(z.string()).optional(),
    identityAssertion: z
      .strictObject({ header: z.string().regex(/^[A-Za-z0-9-]+$/, 'must be a header name').default('x-gatehouse-identity'), ttl: duration.pipe(z.number().min(1000).max(300_000, 'must be between 1s and 5m')).default(60_000) })
      .optional(),
  });

  const postgresConnection = buildPostgresConnectionSchema({ text, secret, size, listen, groupList, name: connection.shape.name });

  return z
    .strictObject({
      gateway: z
        .strictObject({
          listen: listenWithDefaultPort(8080),
          tls: listenerTls.optional(),
          // Any URL parsed: `gatehouse.example.com:8443` (no scheme) read as scheme "gatehouse.example.com:".
          publicUrl: text.pipe(z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })).optional(),
          maxRequestBody: size.default(10 * 1024 * 1024),
          maxResponseBody: size.default(512 * 1024 * 1024),
          /** Open TCP connections to the data plane, and from one client address (server/connection-limits.ts). */
          maxConnections: z.number().int().min(1).default(4096),
          maxConnectionsPerClient: z.number().int().min(1).optional(),
          /** On SIGTERM/SIGINT: how long exchanges in flight may run on before they are cut (server/gateway.ts). */
          shutdownGrace: timerDuration(0, 'a grace period cannot be negative').default(10_000),
        })
        .superRefine(perClientWithinListener)
        .transform(withPerClientDefault(256))
        .prefault({}),
      admin: z
        .strictObject({
          enabled: z.boolean().default(true),
          listen: listenWithDefaultPort(8081),
          tls: listenerTls.optional(),
          groups: groupList.default(['gatehouse-admins']),
          maxConnections: z.number().int().min(1).default(256),
          maxConnectionsPerClient: z.number().int().min(1).optional(),
        })
        .superRefine(perClientWithinListener)
        .transform(withPerClientDefault(64))
        .prefault({}),
      // One of `sqlite` or `postgres`. Not a z.union: its error would be "does not match
      // any accepted form" and hide the real one (an unset ${VAR} in the URL, a missing path).
      store: z
        .strictObject({
          sqlite: z.strictObject({ path }).optional(),
          postgres: z.strictObject({ url: secretUrl(storeSecret, ['postgres', 'postgresql'], 'postgres://gatehouse@db:5432/gatehouse'), schema: z.string().regex(/^[a-z_][a-z0-9_]*$/, 'must be lower-case letters, digits or "_", not starting with a digit').optional() }).optional(),
        })
        .superRefine((store, ctx) => {
          if ((store.sqlite === undefined) === (store.postgres === undefined)) ctx.addIssue({ code: 'custom', message: 'needs exactly one of "sqlite" or "postgres"' });
        })
        .transform((store): { sqlite: { path: string } } | { postgres: { url: string; schema?: string | undefined } } => (store.postgres !== undefined ? { postgres: store.postgres } : { sqlite: store.sqlite! }))
        .default({ sqlite: { path: resolve(baseDir, 'data/gatehouse.db') } }),
      recording: z
        .strictObject({
          /** Bodies above this size are stored truncated, with a marker. */
          maxBodyBytes: size.default(256 * 1024),
          /** Benchmark switch only (`npm run bench` compares on and off): false records nothing at all. */
          enabled: z.boolean().default(true),
        })
        .prefault({}),
      audit: buildAuditSchema({ text, storeSecret, secret, duration, size, path }),
      log: z
        .strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') })
        .prefault({}),
      connections: z.array(z.discriminatedUnion('type', [connection, postgresConnection], { error: discriminatorError('type', ['openai', 'http', 'postgres']) })).default([]),
      approvals: buildApprovalsSchema({ duration, secret: approvalsSecret, text }).optional(),
      masking: buildMaskingSchema(secret),
      // Redis only counts limits in a running gateway: the CLI commands (store-only) do not need its URL.
      policy: buildPolicySchema({ path, secret }),
      identity: buildIdentitySchema({ text, duration, secret, baseDir }).prefault({}),
      agents: agentsSection({ listen, listenerTls }).optional(),
    })
    // The checks across sections run even when a field elsewhere is invalid, so that one
    // `config check` lists every error; each check skips what reads an invalid field
    // (it would report nonsense), and a shape too broken to read skips them all.
    .superRefine(
      (config, ctx) => {
        const sound = (...paths: (string | number)[][]) => !ctx.issues.some((issue) => paths.some((p) => p.every((part, k) => issue.path?.[k] === part)));
        if (!Array.isArray(config.connections)) return;
        // A section whose shape is wrong is already reported; a check that cannot read it is skipped.
        const attempt = (check: () => void) => {
          try {
            check();
          } catch {
            /* reported by the section's own issue */
          }
        };
        if (sound(['masking'])) attempt(() => maskingReferenceIssues(config, ctx, (i) => sound(['connections', i, 'type'], ['connections', i, 'masking'])));
        // Policy obligations name masking profiles too: an unknown one is a config error
        // here, not a refused exchange later (rules in policy files are checked on load).
        // A profile with a bad field still has its name: only the rule's obligations need be sound.
        if (config.masking?.profiles !== null && typeof config.masking?.profiles === 'object' && Array.isArray(config.policy?.rules)) {
          attempt(() => config.policy.rules.forEach((rule, i) => {
            if (!sound(['policy', 'rules', i, 'obligations'])) return;
            for (const name of unknownMaskingProfiles(rule.obligations?.mask ?? [], config.masking)) {
              ctx.addIssue({ code: 'custom', path: ['policy', 'rules', i, 'obligations', 'mask'], message: `no masking profile named "${name}" in masking.profiles` });
            }
          }));
        }
        // A rule naming a connection that does not exist (a typo) would never match: a deny
        // rule would silently not apply. Literal names only; a glob may match nothing.
        // Per rule, its match alone: a bad regex in one rule's `when` does not hide a typo in its connections.
        const namesSound = config.connections.every((c, i) => typeof c?.name === 'string' && sound(['connections', i, 'name']));
        if (namesSound) {
          const names = new Set(config.connections.map((c) => c.name));
          if (Array.isArray(config.policy?.rules)) attempt(() => config.policy.rules.forEach((rule, i) => {
            if (!sound(['policy', 'rules', i, 'match'])) return;
            for (const [k, name] of unknownConnectionNames(rule.match?.connections ?? [], names)) {
              ctx.addIssue({ code: 'custom', path: ['policy', 'rules', i, 'match', 'connections', k], message: `no connection named "${name}"` });
            }
          }));
          // Limits count HTTP exchanges only: one naming a missing connection, or a
          // PostgreSQL one, would count nothing there while it reads as a bound.
          const postgres = new Set(config.connections.filter((c) => c.type === 'postgres').map((c) => c.name));
          if (Array.isArray(config.policy?.limits?.rules)) attempt(() => config.policy.limits.rules.forEach((rule, i) => {
            if (!sound(['policy', 'limits', 'rules', i, 'match'])) return;
            const path = (k: number) => ['policy', 'limits', 'rules', i, 'match', 'connections', k];
            for (const [k, name] of unknownConnectionNames(rule.match?.connections ?? [], names)) ctx.addIssue({ code: 'custom', path: path(k), message: `no connection named "${name}"` });
            (rule.match?.connections ?? []).forEach((name, k) => {
              if (postgres.has(name)) ctx.addIssue({ code: 'custom', path: path(k), message: `"${name}" is a postgres connection, where limits count nothing: bound its statements with its limits.maxRows and limits.statementTimeout` });
            });
          }));
        }
        // A connection reaches its target itself (`target`) or through an agent (`via`),
        // which then holds the target and its TLS settings.
        config.connections.forEach((c, i) => attempt(() => {
          const at = (field: string) => ['connections', i, field];
          if (!sound(at('type'), at('via'))) return;
          if (c.via !== undefined && config.agents === undefined && sound(['agents'])) ctx.addIssue({ code: 'custom', path: at('via'), message: 'needs an agents: section (the endpoint agents dial in to)' });
          if (c.type === 'postgres') {
            if (c.via === undefined && c.credential === undefined && sound(at('credential'))) ctx.addIssue({ code: 'custom', path: at('credential'), message: 'is required (the role and password the gateway logs in to the database with)' });
            // Without a certificate SSLRequest is answered N, and without allowPlaintext a
            // session without TLS is refused: no client could ever log in.
            if (c.serverTls === undefined && config.gateway?.tls === undefined && !c.allowPlaintext && sound(at('serverTls'), at('allowPlaintext'), ['gateway'])) {
              ctx.addIssue({ code: 'custom', path: ['connections', i], message: 'no client could log in: give the listener a certificate (serverTls, or gateway.tls), or set allowPlaintext: true where the path is trusted (the API key then crosses in clear)' });
            }
            return;
          }
          if (c.via !== undefined && c.tls !== undefined) ctx.addIssue({ code: 'custom', path: at('tls'), message: "must not be set with via: the agent's own config holds the target's TLS settings" });
        }));
        attempt(() => listenerClashIssues(config, ctx, sound));
      },
      { when: () => true },
    )
    .transform((config) => withDefaultKeyFile(config, baseDir));
}

/**
 * Two listeners of one config on the same port (and the same address, or a wildcard
 * one): `config check` said valid, and `start` failed with "address in use". Port 0
 * (a free one) never clashes.
 */
function listenerClashIssues(
  config: { gateway?: { listen?: { host: string; port: number } }; admin?: { enabled?: boolean; listen?: { host: string; port: number } }; agents?: { listen?: { host: string; port: number } } | undefined; connections: readonly { type?: string; listen?: unknown }[] },
  ctx: z.RefinementCtx,
  sound: (...paths: (string | number)[][]) => boolean,
): void {
  const listeners: { path: (string | number)[]; listen: { host: string; port: number } }[] = [];
  const add = (path: (string | number)[], listen: { host: string; port: number } | undefined) => {
    if (listen !== undefined && typeof listen.port === 'number' && listen.port !== 0 && sound(path)) listeners.push({ path, listen });
  };
  add(['gateway', 'listen'], config.gateway?.listen);
  if (config.admin?.enabled !== false) add(['admin', 'listen'], config.admin?.listen);
  add(['agents', 'listen'], config.agents?.listen);
  config.connections.forEach((c, i) => {
    if (c?.type === 'postgres') add(['connections', i, 'listen'], c.listen as { host: string; port: number } | undefined);
  });
  const wildcard = (host: string) => host === '0.0.0.0' || host === '::';
  listeners.forEach((b, j) => {
    const a = listeners.slice(0, j).find((a) => a.listen.port === b.listen.port && (a.listen.host === b.listen.host || wildcard(a.listen.host) || wildcard(b.listen.host)));
    if (a) ctx.addIssue({ code: 'custom', path: [...b.path, 'port'], message: `${b.listen.port} is also the port of ${formatListenerPath(a.path)} (${a.listen.host}): two listeners cannot share it` });
  });
}

function formatListenerPath(path: readonly (string | number)[]): string {
  return path.map((p, k) => (typeof p === 'number' ? `[${p}]` : k === 0 ? p : `.${p}`)).join('');
}

/** The literal names (no `*`) in a rule's `match.connections` that no connection has, with their index. */
export function unknownConnectionNames(patterns: readonly string[], names: ReadonlySet<string>): [number, string][] {
  return patterns.flatMap((p, k): [number, string][] => (!p.includes('*') && !names.has(p) ? [[k, p]] : []));
}

/** The target a `via: agent:<name>` connection gets: never dialled (the agent holds the real one). */
export const viaTargetPlaceholder = 'http://via-agent.invalid/';
/** The same for a `type: postgres` connection (its target must name a database). */
export const viaPostgresTargetPlaceholder = 'postgres://via-agent.invalid/via-agent';

/**
 * Connections routed through an agent carry no target in config; the schema's target
 * is filled with a placeholder so every other check still runs, and a target given
 * together with `via` is reported. Works on the raw input, like the duplicate check.
 */
export function prepareViaConnections(raw: unknown): { path: (string | number)[]; message: string }[] {
  const connections = (raw as { connections?: unknown } | null)?.connections;
  if (!Array.isArray(connections)) return [];
  const issues: { path: (string | number)[]; message: string }[] = [];
  connections.forEach((c: unknown, i) => {
    if (c === null || typeof c !== 'object' || Array.isArray(c) || (c as { via?: unknown }).via === undefined) return;
    const connection = c as { type?: unknown; target?: unknown; tls?: unknown };
    const postgres = connection.type === 'postgres';
    if (connection.target === undefined) connection.target = postgres ? viaPostgresTargetPlaceholder : viaTargetPlaceholder;
    else issues.push({ path: ['connections', i, 'target'], message: "must not be set with via: the agent's own config holds the target" });
    // A postgres connection's tls has defaults, so the schema cannot tell it was set: checked here.
    if (postgres && connection.tls !== undefined) issues.push({ path: ['connections', i, 'tls'], message: "must not be set with via: the agent's own config holds the database's TLS settings" });
  });
  return issues;
}

/**
 * Duplicate connection names, checked on the raw input so they are reported even when
 * another error in the same file stops schema validation early.
 */
export function duplicateConnectionIssues(raw: unknown): { path: (string | number)[]; message: string }[] {
  const connections = (raw as { connections?: unknown } | null)?.connections;
  if (!Array.isArray(connections)) return [];
  const seen = new Map<string, number>();
  const issues: { path: (string | number)[]; message: string }[] = [];
  connections.forEach((c: unknown, i) => {
    const name = (c as { name?: unknown } | null)?.name;
    if (typeof name !== 'string') return;
    const first = seen.get(name);
    if (first !== undefined) issues.push({ path: ['connections', i, 'name'], message: `duplicate connection name "${name}" (also connections[${first}])` });
    else seen.set(name, i);
  });
  return issues;
}

export type GatehouseConfig = z.output<ReturnType<typeof buildConfigSchema>>;
export type ConnectionConfig = GatehouseConfig['connections'][number];

/**
 * The `policy:` section of a config that failed validation elsewhere, validated alone, so
 * that its policy files and rules are still checked in the same run; undefined when the
 * section itself is invalid (its issues are among the config's).
 */
export function parsePolicySection(raw: unknown, { env, baseDir }: Pick<SchemaContext, 'env' | 'baseDir'>): { policy: PolicyConfig; allRules: boolean } | undefined {
  const schema = buildPolicySchema({ path: envText(env).transform((value) => resolve(baseDir, value)), secret: secretRef(env, baseDir) });
  const section = (raw as { policy?: unknown } | null)?.policy;
  const whole = schema.safeParse(section);
  if (whole.success) return { policy: whole.data, allRules: true };
  // A bad rule does not hide the files and packs: the section without its rules, then
  // each rule that is valid on its own.
  if (section === null || typeof section !== 'object' || Array.isArray(section)) return undefined;
  const rules = (section as { rules?: unknown }).rules;
  const rest = schema.safeParse({ ...section, rules: [] });
  if (!rest.success || (rules !== undefined && !Array.isArray(rules))) return undefined;
  const valid = ((rules ?? []) as unknown[]).map((rule) => ruleSchema.safeParse(rule)).flatMap((r) => (r.success ? [r.data] : []));
  return { policy: { ...rest.data, rules: valid }, allRules: false };
}

/**
 * The connections' names and groups from a config that failed validation elsewhere;
 * undefined unless every connection has a valid name and access groups (a check on
 * names against a list with a gap would report names that are there).
 */
export function rawConnectionNames(raw: unknown): { name: string; access: { groups: string[] } }[] | undefined {
  const connections = (raw as { connections?: unknown } | null)?.connections ?? [];
  if (!Array.isArray(connections)) return undefined;
  const named = connections.map((c: unknown) => {
    const { name, access } = (c ?? {}) as { name?: unknown; access?: { groups?: unknown } };
    const groups = access?.groups;
    return typeof name === 'string' && namePattern.test(name) && Array.isArray(groups) && groups.every((g) => typeof g === 'string') ? { name, access: { groups: groups as string[] } } : undefined;
  });
  return named.every((c) => c !== undefined) ? named : undefined;
}
