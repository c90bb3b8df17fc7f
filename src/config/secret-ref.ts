// Secrets are never written inline in config: a secret field holds a reference,
// `${ENV_VAR}` or `file:/path`, resolved once at start. Other string fields may use
// `${ENV_VAR}` too (e.g. a target URL), but a secret field refuses a literal.

import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';

const wholeEnvRef = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/;
const envRef = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

export class SecretRefError extends Error {}

export function isSecretRef(value: string): boolean {
  return wholeEnvRef.test(value) || value.startsWith('file:');
}

/** Resolves a secret reference; throws SecretRefError with a reason otherwise. */
export function resolveSecretRef(value: string, env: NodeJS.ProcessEnv, baseDir: string): string {
  const envMatch = wholeEnvRef.exec(value);
  if (envMatch) {
    const resolved = env[envMatch[1]!];
    if (resolved === undefined) throw new SecretRefError(`environment variable ${envMatch[1]} is not set`);
    if (resolved === '') throw new SecretRefError(`environment variable ${envMatch[1]} is empty (a secret must not be)`);
    return resolved;
  }
  if (value.startsWith('file:')) {
    const path = value.slice('file:'.length);
    const full = isAbsolute(path) ? path : resolve(baseDir, path);
    let content: string;
    try {
      content = readFileSync(full, 'utf8').replace(/\r?\n$/, '');
    } catch (error) {
      throw new SecretRefError(`cannot read ${full}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    // As an empty variable: a secret mount not yet filled would have sent "Bearer " to the
    // target, and hashed masking with an empty key ('' also reads as "not resolved").
    if (content === '') throw new SecretRefError(`${full} is empty (a secret must not be)`);
    return content;
  }
  throw new SecretRefError('a secret must be a reference (${ENV_VAR} or file:/path), not a literal value');
}

/** Expands `${ENV_VAR}` inside a non-secret string. */
export function expandEnv(value: string, env: NodeJS.ProcessEnv): string {
  return value.replace(envRef, (_, name: string) => {
    const resolved = env[name];
    if (resolved === undefined) throw new SecretRefError(`environment variable ${name} is not set`);
    return resolved;
  });
}
