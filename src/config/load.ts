import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { buildConfigSchema, duplicateConnectionIssues, prepareViaConnections, type GatehouseConfig, type SecretsToResolve } from './schema.js';

/** A config that failed to load; each line names the offending path. */
export class ConfigError extends Error {
  readonly issues: readonly string[];
  constructor(file: string, issues: readonly string[]) {
    super(`invalid config ${file}:\n${issues.map((i) => `  ${i}`).join('\n')}`);
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

/** `connections[1].target` — the form users see in YAML. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out === '' ? '(root)' : out;
}

// A PostgreSQL target under trust authentication takes no password, yet the gateway
// still needs one to send: "is required" alone left a new user guessing what to give.
const credentialSecretRequired = 'is required: the credential the gateway sends to the target, by reference ("${ENV_VAR}" or file:/path); for a postgres connection the database password (under trust authentication any non-empty value)';

function isCredentialSecret(path: readonly PropertyKey[]): boolean {
  return path.length === 4 && path[0] === 'connections' && path[2] === 'credential' && path[3] === 'secret';
}

function formatIssue(issue: z.core.$ZodIssue): string {
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') message = `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  else if (issue.code === 'invalid_type' && /received undefined/.test(issue.message)) message = isCredentialSecret(issue.path) ? credentialSecretRequired : 'is required';
  // A key with nothing under it (`tls:` alone) is null in YAML; "expected object, received
  // null" did not say so. Only a top-level section left empty means its defaults.
  else if (issue.code === 'invalid_type' && issue.expected === 'object' && /received null/.test(issue.message)) message = 'is empty (a key with nothing under it): give its keys, write {} for its defaults, or leave it out';
  else if (issue.code === 'invalid_union' && issue.errors.length > 0) message = 'does not match any accepted form';
  // A name refused as a record key (`masking.profiles.PII`): its own reason, not "Invalid key in record".
  else if (issue.code === 'invalid_key' && issue.issues.length > 0) message = `is not a valid name: ${issue.issues[0]!.message}`;
  return `${formatPath(issue.path)}: ${message}`;
}

/**
 * A YAML syntax error as one line, without the code frame. In a flow mapping
 * (`{ secret: ${KEY} }`) an unquoted reference's braces end the mapping, and the parser's
 * own words ("Unexpected flow-map-start") do not say so: when the failing line has one,
 * the issue says to quote it.
 */
export function yamlSyntaxIssue(error: YAMLParseError, source: string): string {
  const line = error.linePos === undefined ? undefined : source.split('\n')[error.linePos[0].line - 1];
  const hint = line !== undefined && /\{[^}]*:\s*\$\{/.test(line) ? ' (in a flow mapping "{ … }", quote a reference: "${VAR}")' : '';
  // The first line ends with the colon that introduced the code frame left out.
  return `(yaml): ${error.message.split('\n')[0]!.replace(/:\s*$/, '')}${hint}`;
}

export interface LoadOptions {
  readonly secrets?: SecretsToResolve;
}

/**
 * What reading a config found: the frozen config when it is valid, the parsed YAML (when
 * it parses) for the checks that can still run on an invalid one (`config check` lists
 * every problem, see cli/config-problems.ts), and every issue, each naming its path.
 */
export interface ConfigInspection {
  readonly config?: GatehouseConfig;
  readonly raw?: unknown;
  readonly issues: readonly string[];
}

export function inspectConfigSource(source: string, env: NodeJS.ProcessEnv, baseDir: string, options: LoadOptions = {}): ConfigInspection {
  let raw: unknown;
  try {
    raw = parseYaml(source, { prettyErrors: true, maxAliasCount: 100 }) ?? {};
  } catch (error) {
    if (error instanceof YAMLParseError) return { issues: [yamlSyntaxIssue(error, source)] };
    throw error;
  }
  // An empty section (`gateway:` with nothing under it) means "all defaults".
  if (raw !== null && typeof raw === 'object' && !Array.isArray(raw)) {
    raw = Object.fromEntries(Object.entries(raw).filter(([, value]) => value !== null));
  }
  const viaIssues = prepareViaConnections(raw);
  const schema = buildConfigSchema({ env, baseDir, secrets: options.secrets ?? 'all' });
  const result = schema.safeParse(raw);
  const issues = [
    ...(result.success ? [] : result.error.issues.map(formatIssue)),
    ...[...viaIssues, ...duplicateConnectionIssues(raw)].map((issue) => `${formatPath(issue.path)}: ${issue.message}`),
  ];
  if (issues.length > 0 || !result.success) return { raw, issues };
  return { config: deepFreeze(result.data), raw, issues };
}

export function parseConfig(source: string, file: string, env: NodeJS.ProcessEnv = process.env, options: LoadOptions = {}): GatehouseConfig {
  const { config, issues } = inspectConfigSource(source, env, dirname(resolve(file)), options);
  if (config === undefined) throw new ConfigError(file, issues);
  return config;
}

/** The config file's text, or the issue that it cannot be read. */
export function readConfigSource(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(file, [`(file): cannot read: ${(error as NodeJS.ErrnoException).code ?? 'error'}`]);
  }
}

export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env, options: LoadOptions = {}): GatehouseConfig {
  return parseConfig(readConfigSource(file), file, env, options);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
