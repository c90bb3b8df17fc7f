// Field types shared by every config file Gatehouse reads (the gateway's and the
// agent's): `${ENV}` expansion, secret references, durations, and the name pattern.

import { isIP } from 'node:net';
import { z } from 'zod';
import { expandEnv, resolveSecretRef, SecretRefError } from './secret-ref.js';
import { formatDuration, parseDuration } from './units.js';

export const namePattern = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** A string in which `${ENV_VAR}` is expanded. */
export function envText(env: NodeJS.ProcessEnv) {
  return z.string().transform((value, ctx) => {
    try {
      return expandEnv(value, env);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: (error as Error).message });
      return z.NEVER;
    }
  });
}

/** A secret reference (`${ENV_VAR}` or `file:/path`), resolved; a literal is refused. */
export function secretRef(env: NodeJS.ProcessEnv, baseDir: string) {
  return z.string().transform((value, ctx) => {
    try {
      return resolveSecretRef(value, env, baseDir);
    } catch (error) {
      if (!(error instanceof SecretRefError)) throw error;
      ctx.addIssue({ code: 'custom', message: error.message });
      return z.NEVER;
    }
  });
}

/**
 * A secret reference that must resolve to a URL of one of `schemes` (the store's and
 * Redis's): anything else (a password alone, a misquoted URL) would reach the client
 * library, which reads it its own way and puts parts of it in errors, logs and records
 * (`getaddrinfo ENOTFOUND <the value>`). The message never shows the value.
 */
export function secretUrl(secret: z.ZodType<string, string>, schemes: readonly string[], example: string) {
  return secret.superRefine((value, ctx) => {
    // '' is the placeholder of a secret this command does not resolve.
    if (value === '') return;
    const scheme = URL.canParse(value) ? new URL(value).protocol.slice(0, -1) : undefined;
    if (scheme === undefined || !schemes.includes(scheme)) {
      ctx.addIssue({ code: 'custom', message: `must resolve to a ${schemes.map((s) => `${s}://`).join(' or ')} URL, e.g. ${example} (${scheme === undefined ? 'it is not a URL' : `its scheme is ${JSON.stringify(scheme.slice(0, 20))}`}; the value is not shown, as it may hold a password)` });
    }
  });
}

/** `500ms`, `30s`, `5m` … or a number of milliseconds. */
export const durationField = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const ms = parseDuration(value);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not a duration (use e.g. 500ms, 30s, 5m, or milliseconds)` });
    return z.NEVER;
  }
  return ms;
});

/** The longest delay a Node timer takes: a longer one fires after 1 ms (TimeoutOverflowWarning). */
export const maxTimerMs = 2 ** 31 - 1;

/**
 * A duration that arms a timer: at least `min` ms (`why` says what a shorter one would
 * do) and at most 24 days, since a longer timer fires at once: `statementTimeout: 30d`
 * cancelled every statement, and `0` (PostgreSQL's "no limit") did too.
 */
export function timerDuration(min: number, why: string) {
  return durationField.pipe(
    z
      .number()
      .min(min, `must be at least ${formatDuration(min)}: ${why}`)
      .max(maxTimerMs, `must be at most 24d (${maxTimerMs} ms): a longer timer fires at once`),
  );
}

/**
 * The error of a discriminated union (`type: openai | http | postgres`) whose
 * discriminator is missing or unknown, worded as the other config errors: zod's own
 * ("Invalid discriminator value. Expected 'openai' | 'http'") did not say a missing
 * `type` is required, nor which values it takes in YAML terms.
 */
export function discriminatorError(key: string, values: readonly string[]) {
  const listed = values.join(', ');
  return (issue: { code?: string; input?: unknown }): string | undefined => {
    if (issue.code !== 'invalid_union') return undefined;
    const given = issue.input !== null && typeof issue.input === 'object' ? (issue.input as Record<string, unknown>)[key] : undefined;
    return given === undefined ? `is required: one of ${listed}` : `${JSON.stringify(given)} is not one of ${listed}`;
  };
}

/** The header a target credential travels in: `scheme secret`, or the bare secret. */
export function credentialHeader(credential: { header: string; scheme: string; secret: string } | undefined): { header: string; value: string } | undefined {
  if (!credential) return undefined;
  return { header: credential.header, value: credential.scheme ? `${credential.scheme} ${credential.secret}` : credential.secret };
}

/** A URL to this host (a development IdP, a test): where plain http is not a network risk. */
export function isLoopbackUrl(url: URL): boolean {
  return url.hostname === 'localhost' || url.hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(url.hostname);
}

/** `10.0.0.0/8`, `fd00::/8`, or one address (a /32 or /128): what BlockList.addSubnet takes. */
export function parseCidr(value: string): { readonly address: string; readonly prefix: number; readonly type: 'ipv4' | 'ipv6' } | undefined {
  const [address = '', bits, extra] = value.trim().split('/');
  const family = isIP(address);
  if (family === 0 || extra !== undefined) return undefined;
  const max = family === 4 ? 32 : 128;
  const prefix = bits === undefined ? max : /^\d{1,3}$/.test(bits) ? Number(bits) : NaN;
  if (!(prefix >= 0 && prefix <= max)) return undefined;
  return { address, prefix, type: family === 4 ? 'ipv4' : 'ipv6' };
}
