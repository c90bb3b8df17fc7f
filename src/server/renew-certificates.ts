// A reload (SIGHUP, a config file change, POST /api/policy/reload) re-reads the config,
// and with it the `file:` certificate and key of the HTTPS listeners. A renewed pair
// (cert-manager, ACME: every 60-90 days) is put in place on the running listener, for
// the connections made from then on; open ones keep the certificate they shook hands
// with. Without this, every renewal needed a restart, which cuts streams in flight.
// Only a renewal: turning TLS on or off still needs a restart (changesNeedingRestart).
// The new pair was checked when the config was read (PEM, key matches certificate).

import { X509Certificate } from 'node:crypto';
import type { Server as HttpsServer } from 'node:https';
import { isDeepStrictEqual } from 'node:util';
import type { GatehouseConfig } from '../config/index.js';
import type { Logger } from '../observability/index.js';

type Listener = 'gateway' | 'admin';

/**
 * Installs each renewed listener certificate and returns `applied` with the new `tls`
 * values, so that the caller's restart check no longer names them.
 */
export function renewListenerCertificates(applied: GatehouseConfig, next: GatehouseConfig, servers: Partial<Record<Listener, HttpsServer>>, logger: Logger): GatehouseConfig {
  let result = applied;
  for (const listener of ['gateway', 'admin'] as const) {
    const before = applied[listener].tls;
    const after = next[listener].tls;
    const server = servers[listener];
    if (before === undefined || after === undefined || server === undefined || isDeepStrictEqual(before, after)) continue;
    try {
      server.setSecureContext({ cert: after.cert, key: after.key });
    } catch (error) {
      // Left as it was: the restart check names the listener.
      logger.error({ listener, err: error instanceof Error ? error.message : String(error) }, 'TLS certificate not renewed: the listener keeps its certificate');
      continue;
    }
    result = { ...result, [listener]: { ...result[listener], tls: after } };
    logger.info({ listener, ...describe(after.cert) }, 'TLS certificate renewed: new connections get it');
  }
  return result;
}

/** The leaf certificate's public facts, for the log line (never the key). */
function describe(pem: string): Record<string, string> {
  try {
    const leaf = new X509Certificate(pem);
    return { subject: leaf.subject.replace(/\n/g, ', '), validTo: new Date(leaf.validTo).toISOString(), fingerprint256: leaf.fingerprint256 };
  } catch {
    return {};
  }
}
