// Config section `audit`: the event chain's writer id, checkpoint signing, sinks that
// feed a SIEM, raw-content recording, and the streaming progress-write cadence.
// Built from the main schema's helpers so secrets and units behave the same everywhere.

import { dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import { parseRawKey } from '../audit/raw-content.js';
import { readEd25519PublicKey, signerFromPem } from '../audit/signing-key.js';
import { discriminatorError, timerDuration } from './fields.js';

interface Helpers {
  /** A string with `${ENV}` references expanded. */
  readonly text: z.ZodType<string, string>;
  /** A secret reference resolved even for store-only CLI commands (verify needs the key). */
  readonly storeSecret: z.ZodType<string, string>;
  readonly secret: z.ZodType<string, string>;
  readonly duration: z.ZodType<number, string | number>;
  readonly size: z.ZodType<number, string | number>;
  readonly path: z.ZodType<string, string>;
}

export function buildAuditSchema({ text, storeSecret, secret, duration, size, path }: Helpers) {
  const sink = z.discriminatedUnion('type', [
    z.strictObject({ type: z.literal('file'), path }),
    z.strictObject({ type: z.literal('stdout') }),
    z.strictObject({
      type: z.literal('webhook'),
      // `${SIEM_URL}` as in any other string. A user:password in it was a literal secret
      // that fetch refuses to send, and prints in the error logged at every retry.
      url: text.pipe(
        z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).refine((u) => {
          const url = URL.canParse(u) ? new URL(u) : undefined; // (refine runs after a failed check too)
          return url === undefined || (url.username === '' && url.password === '');
        }, 'must not carry a user or password: the body is signed with the sink\'s secret'),
      ),
      /** HMAC-SHA256 key: the body's signature goes in `gatehouse-signature: sha256=<hex>`. */
      secret,
      timeout: timerDuration(1, 'with 0 every delivery is aborted at once, and retried forever').default(5_000),
    }),
  ], { error: discriminatorError('type', ['file', 'stdout', 'webhook']) });
  return z
    .strictObject({
      /** Names this process in every event it appends; default `<hostname>/<pid>`. */
      writerId: text.pipe(z.string().min(1).max(128)).optional(),
      /** Ed25519 PKCS#8 PEM by reference; without it a key is generated into `keyFile`. */
      signingKey: storeSecret.optional(),
      /** Default (withDefaultKeyFile): beside the SQLite file, or data/ beside the config. */
      keyFile: path.optional(),
      /**
       * PEM files of the public keys of signing keys used before this one: checkpoints
       * they signed still verify (a key replaced, or gateways signing with two keys
       * during a rolling restart). Public keys: no secret, a plain path.
       */
      previousPublicKeys: z.array(path).default([]),
      checkpoint: z
        .strictObject({ every: z.number().int().min(1).default(1000), interval: duration.default(60_000) })
        .prefault({}),
      progress: z.strictObject({ interval: duration.default(250), bytes: size.default(64 * 1024) }).prefault({}),
      sinks: z.array(sink).default([]),
      /** Alerts chained as `alert.raised` (src/audit/alerts/); `false` turns one off. */
      alerts: z
        .strictObject({
          failedAuthThenSuccess: z
            .union([z.literal(false), z.strictObject({ failures: z.number().int().min(1).max(1_000_000).default(3), window: duration.default(15 * 60_000) })])
            .default({ failures: 3, window: 15 * 60_000 }),
          bulkRequests: z.union([z.literal(false), z.strictObject({ requests: z.number().int().min(2).max(100_000_000), window: duration.default(60_000) })]).default(false),
        })
        .prefault({}),
      raw: z
        .strictObject({
          enabled: z.boolean().default(false),
          /** 32 bytes for AES-256-GCM, as 64 hex characters or base64, by reference. */
          key: secret.optional(),
          revealGroups: z.array(z.string().min(1)).default([]),
        })
        .refine((raw) => !raw.enabled || raw.key !== undefined, { message: 'audit.raw.key is required when audit.raw.enabled is true', path: ['key'] })
        .prefault({}),
    })
    // The keys themselves are checked here, so `config check` refuses what `start` would
    // fail on (a secret not resolved for a store-only command is '', and not checked).
    .superRefine((audit, ctx) => {
      if (audit.signingKey) {
        try {
          signerFromPem(audit.signingKey);
        } catch (error) {
          ctx.addIssue({ code: 'custom', path: ['signingKey'], message: `must be an Ed25519 private key (PKCS#8 PEM): ${(error as Error).message}` });
        }
      }
      audit.previousPublicKeys.forEach((file, i) => {
        try {
          readEd25519PublicKey(file);
        } catch (error) {
          const why = (error as NodeJS.ErrnoException).code ?? (error as Error).message.split('\n')[0];
          ctx.addIssue({ code: 'custom', path: ['previousPublicKeys', i], message: `${file}: must be an Ed25519 public key in PEM (openssl pkey -in OLD-KEY -pubout): ${why}` });
        }
      });
      if (audit.raw.enabled && audit.raw.key) {
        try {
          parseRawKey(audit.raw.key);
        } catch {
          ctx.addIssue({ code: 'custom', path: ['raw', 'key'], message: 'must be 32 bytes, as 64 hex digits or base64 (e.g. openssl rand -hex 32)' });
        }
      }
    })
    .prefault({});
}

export type AuditConfig = z.output<ReturnType<typeof buildAuditSchema>>;

/**
 * The generated keys (the audit key, the Gatehouse-token key) live with the data: beside
 * the SQLite file, else in data/ beside the config. Never the working directory, which
 * a service manager sets to anything (`/` under systemd): a key generated there was a
 * new one on every start from elsewhere, or a start that failed on a read-only `/`.
 */
export function withDefaultKeyFile<T extends { audit: AuditConfig; store: { sqlite: { path: string } } | { postgres: unknown }; identity: { gatewayTokens: { keyFile?: string | undefined } } }>(config: T, baseDir: string): T {
  const dataDir = 'sqlite' in config.store ? dirname(config.store.sqlite.path) : resolve(baseDir, 'data');
  const audit = config.audit.keyFile !== undefined ? config.audit : { ...config.audit, keyFile: join(dataDir, 'audit-signing-key.pem') };
  const tokens = config.identity.gatewayTokens;
  const identity = tokens.keyFile !== undefined ? config.identity : { ...config.identity, gatewayTokens: { ...tokens, keyFile: join(dataDir, 'gateway-signing-key.pem') } };
  return { ...config, audit, identity };
}
