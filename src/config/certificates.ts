// The certificates of the config as OpenSSL will take them: a listener's (gateway.tls,
// admin.tls, agents.tls) that is not PEM, or whose key is not the certificate's, and a
// connection's CA bundle (tls.ca) that holds no certificate, are named by their setting
// when the config is checked or the gateway starts, instead of surfacing as OpenSSL's
// bare error (with a stack) when the listener is created, or as every request to the
// target failing.

import { X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { ConfigError } from './load.js';
import { resolveSecretRef } from './secret-ref.js';

type ListenerTls = { readonly cert: string; readonly key: string } | undefined;

/** The certificate settings, resolved: a valid config has this shape, and so does rawCertificateSettings' answer. */
export interface CertificateSettings {
  readonly gateway: { readonly tls?: ListenerTls };
  readonly admin: { readonly tls?: ListenerTls };
  readonly agents?: { readonly tls?: ListenerTls } | undefined;
  readonly connections: readonly { readonly type: string; readonly tls?: { readonly ca?: string | undefined } | undefined }[];
}

export function certificateIssues(config: CertificateSettings): string[] {
  const issues: string[] = [];
  const check = (path: string, tls: ListenerTls) => {
    // Store-only loads leave the values empty: nothing to check.
    if (!tls || tls.cert === '' || tls.key === '') return;
    try {
      createSecureContext({ cert: tls.cert, key: tls.key });
    } catch (error) {
      issues.push(`${path}: cert and key are not a usable PEM certificate chain and its private key: ${(error as Error).message}`);
    }
  };
  check('gateway.tls', config.gateway.tls);
  check('admin.tls', config.admin.tls);
  check('agents.tls', config.agents?.tls);
  // A CA bundle toward a target replaces the system CAs: one holding no certificate
  // (Node ignores what it cannot parse) would fail every TLS connection to the target.
  config.connections.forEach((connection, i) => {
    if ((connection.type !== 'openai' && connection.type !== 'http') || !connection.tls?.ca) return;
    const blocks = connection.tls.ca.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
    if (blocks.length === 0) issues.push(`connections[${i}].tls.ca: holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
    for (const block of blocks) {
      try {
        new X509Certificate(block);
      } catch (error) {
        issues.push(`connections[${i}].tls.ca: a certificate cannot be read: ${(error as Error).message}`);
      }
    }
  });
  return issues;
}

/**
 * The certificate settings of a config that failed validation elsewhere, read from its
 * parsed YAML: each reference that resolves is given, so that a bad certificate is
 * reported in the same run as (say) an unknown key. A reference that does not resolve is
 * left out: the schema reported it, and there is nothing to check.
 */
export function rawCertificateSettings(raw: unknown, env: NodeJS.ProcessEnv, baseDir: string): CertificateSettings {
  const object = (value: unknown): Record<string, unknown> | undefined => (value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined);
  const secret = (value: unknown): string | undefined => {
    if (typeof value !== 'string') return undefined;
    try {
      return resolveSecretRef(value, env, baseDir);
    } catch {
      return undefined;
    }
  };
  const listenerTls = (section: unknown): { tls?: ListenerTls } => {
    const tls = object(object(section)?.tls);
    const cert = secret(tls?.cert);
    const key = secret(tls?.key);
    return cert !== undefined && key !== undefined ? { tls: { cert, key } } : {};
  };
  const root = object(raw) ?? {};
  const connections = Array.isArray(root.connections) ? root.connections : [];
  return {
    gateway: listenerTls(root.gateway),
    admin: listenerTls(root.admin),
    agents: listenerTls(root.agents),
    connections: connections.map((c) => {
      const connection = object(c);
      const ca = secret(object(connection?.tls)?.ca);
      // A type the schema refused: its tls is not known to be an http connection's.
      const type = connection?.type === 'openai' || connection?.type === 'http' ? connection.type : 'unknown';
      return ca !== undefined && type !== 'unknown' ? { type, tls: { ca } } : { type };
    }),
  };
}

/** Throws the ConfigError `loadConfig` would, naming each certificate setting that cannot be used. */
export function assertCertificates(file: string, config: CertificateSettings): void {
  const issues = certificateIssues(config);
  if (issues.length > 0) throw new ConfigError(file, issues);
}
