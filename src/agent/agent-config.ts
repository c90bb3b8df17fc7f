// The agent's own config file (`gatehouse agent --config agent.yaml`): its name and the
// connections it serves, each with the target URL and, optionally, the target's
// credential as a reference resolved here, on the agent's host — so a team can keep
// target secrets out of the gateway entirely. Unknown keys are refused. A connection
// is HTTP (`target: http(s)://…`, the default) or `type: postgres` (`target:
// postgres://host:port/db`, TLS toward the database, and the role the agent logs in
// with).

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { ConfigError, formatPath, yamlSyntaxIssue } from '../config/load.js';
import { discriminatorError, durationField, envText, namePattern, secretRef } from '../config/fields.js';

function buildAgentConfigSchema(env: NodeJS.ProcessEnv, baseDir: string) {
  const text = envText(env);
  const secret = secretRef(env, baseDir);
  const duration = durationField;
  return z.strictObject({
    /** The name connections route through (`via: agent:<name>`); the key must be in group `agent:<name>`. */
    name: z.string().regex(namePattern, 'must be lower-case letters, digits, "-" or "_" (at most 63)'),
    /** Exchanges this agent carries at once; more wait on the gateway (or go to another agent). */
    concurrency: z.number().int().min(1).max(10_000).default(64),
    reconnect: z.strictObject({ initial: duration.default(500), max: duration.default(30_000) }).prefault({}),
    connections: z
      .array(
        z.preprocess(
          // `type` may be left out for HTTP connections (the common case, and the original form).
          (c) => (c !== null && typeof c === 'object' && !Array.isArray(c) && !('type' in c) ? { ...c, type: 'http' } : c),
          z.discriminatedUnion('type', [httpConnection(text, secret), postgresConnection(text, secret)], { error: discriminatorError('type', ['http', 'postgres']) }),
        ),
      )
      .min(1),
  });
}

/** An HTTP target the agent forwards exchanges to. */
function httpConnection(text: ReturnType<typeof envText>, secret: ReturnType<typeof secretRef>) {
  const duration = durationField;
  return z.strictObject({
    name: z.string().regex(namePattern, 'must be lower-case letters, digits, "-" or "_" (at most 63)'),
    type: z.literal('http'),
    target: text.pipe(z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })),
    credential: z
      .strictObject({
        header: z.string().regex(/^[A-Za-z0-9-]+$/, 'must be a header name').default('authorization'),
        scheme: z.string().default('Bearer'),
        secret,
      })
      .optional(),
    tls: z.strictObject({ ca: secret.optional(), rejectUnauthorized: z.boolean().default(true) }).optional(),
    timeouts: z
      .strictObject({ connect: duration.default(5_000), headers: duration.default(60_000), body: duration.default(300_000) })
      .prefault({}),
  });
}

/** A PostgreSQL database the agent logs in to for the gateway (docs/agent.md, "PostgreSQL"). */
function postgresConnection(text: ReturnType<typeof envText>, secret: ReturnType<typeof secretRef>) {
  return z.strictObject({
    name: z.string().regex(namePattern, 'must be lower-case letters, digits, "-" or "_" (at most 63)'),
    type: z.literal('postgres'),
    target: text.pipe(
      z
        .url({ protocol: /^postgres(ql)?$/, error: 'must be a postgres://host:port/dbname URL' })
        // These run after a failed URL check too: a value that is no URL must not throw.
        .refine((u) => !URL.canParse(u) || (new URL(u).username === '' && new URL(u).password === ''), 'must not carry a user or password: put them in credential')
        .refine((u) => !URL.canParse(u) || new URL(u).pathname.length > 1, 'must name the database: postgres://host:port/dbname'),
    ),
    /** The role and password, resolved here; without it the gateway must send one per session. */
    credential: z.strictObject({ user: z.string().min(1), secret }).optional(),
    tls: z.strictObject({ mode: z.enum(['disable', 'require', 'verify-full']).default('verify-full'), ca: secret.optional() }).prefault({}),
    timeouts: z.strictObject({ connect: durationField.default(10_000) }).prefault({}),
  });
}

export type AgentConfig = z.output<ReturnType<typeof buildAgentConfigSchema>>;

export function parseAgentConfig(source: string, file: string, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  let raw: unknown;
  try {
    raw = parseYaml(source, { maxAliasCount: 100 }) ?? {};
  } catch (error) {
    throw new ConfigError(file, [error instanceof YAMLParseError ? yamlSyntaxIssue(error, source) : `(yaml): ${(error as Error).message.split('\n')[0]}`]);
  }
  const result = buildAgentConfigSchema(env, dirname(resolve(file))).safeParse(raw);
  if (!result.success) throw new ConfigError(file, result.error.issues.map((i) => `${formatPath(i.path)}: ${i.code === 'unrecognized_keys' ? `unknown key${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `"${k}"`).join(', ')}` : i.message}`));
  const names = new Set<string>();
  result.data.connections.forEach((c, i) => {
    if (names.has(c.name)) throw new ConfigError(file, [`connections[${i}].name: duplicate connection name "${c.name}"`]);
    names.add(c.name);
  });
  return result.data;
}

export function loadAgentConfig(file: string, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  let source: string;
  try {
    source = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(file, [`(file): cannot read: ${(error as NodeJS.ErrnoException).code ?? 'error'}`]);
  }
  return parseAgentConfig(source, file, env);
}
