// The certificates of the config as OpenSSL will take them: a listener's (gateway.tls,
// admin.tls, agents.tls) that is not PEM, or whose key is not the certificate's, and a
// connection's CA bundle (tls.ca) that holds no certificate, are named by their setting
// when the config is checked or the gateway starts, instead of surfacing as OpenSSL's
// bare error (with a stack) when the listener is created, or as every request to the
// target failing.

import { X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { ConfigError } from './load.js';
import type { GatehouseConfig } from './schema.js';

export function certificateIssues(config: GatehouseConfig): string[] {
  const issues: string[] = [];
  const check = (path: string, tls: { readonly cert: string; readonly key: string } | undefined) => {
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
    if (connection.type === 'postgres' || !connection.tls?.ca) return;
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

/** Throws the ConfigError `loadConfig` would, naming each certificate setting that cannot be used. */
export function assertCertificates(file: string, config: GatehouseConfig): void {
  const issues = certificateIssues(config);
  if (issues.length > 0) throw new ConfigError(file, issues);
}
