// The listeners' certificates (gateway.tls, admin.tls, agents.tls) as OpenSSL will take
// them: a file that is not PEM, or a key that is not the certificate's, is named by its
// setting when the config is checked or the gateway starts, instead of surfacing as
// OpenSSL's bare error (with a stack) when the listener is created.

import { createSecureContext } from 'node:tls';
import { ConfigError } from './load.js';
import type { GatehouseConfig } from './schema.js';

export function listenerTlsIssues(config: GatehouseConfig): string[] {
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
  return issues;
}

/** Throws the ConfigError `loadConfig` would, naming each listener whose certificate cannot be used. */
export function assertListenerTls(file: string, config: GatehouseConfig): void {
  const issues = listenerTlsIssues(config);
  if (issues.length > 0) throw new ConfigError(file, issues);
}
