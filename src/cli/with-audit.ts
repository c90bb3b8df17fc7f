// Opens the store and this command's audit trail, so a CLI act (a key created, a prune)
// is chained like any other event; drains and closes both whatever happens.

import { userInfo } from 'node:os';
import { applyJournalOnce, awaitLiveJournalWriters, chainOptionsOf, openAuditTrail, type AuditTrail } from '../audit/index.js';
import { loadConfig, type GatehouseConfig, type LoadOptions } from '../config/index.js';
import { openStore, sqliteStoreLockHeld, type Store } from '../store/index.js';
import { configPath } from './config-path.js';

export async function withAuditTrail<T>(config: string | undefined, run: (store: Store, audit: AuditTrail, loaded: GatehouseConfig) => Promise<T>, secrets: LoadOptions['secrets'] = 'store-only'): Promise<T> {
  const loaded = loadConfig(configPath(config), process.env, { secrets });
  const store = await openStore(loaded.store);
  // The CLI never creates the signing key (the gateway does); it signs checkpoints only
  // when the key already exists. Sinks are the running gateway's business.
  const audit = openAuditTrail(store.db, loaded.audit, { createKey: false, withSinks: false, sqlitePath: store.sqlitePath });
  try {
    // Records a stopped gateway left in its journal are read (and chained) first; a
    // running gateway's are left to it (its sinks send their events), unless it is stuck.
    // A gateway holding the store (its lock) writes every segment there, seen from here or not.
    const gatewayHoldsStore = store.sqlitePath !== undefined && sqliteStoreLockHeld(store.sqlitePath);
    if (store.sqlitePath) await awaitLiveJournalWriters(store.db, store.sqlitePath, { gatewayHoldsStore });
    if (store.sqlitePath) applyJournalOnce(store.sqlitePath, chainOptionsOf(loaded.audit, audit.signer), { gatewayHoldsStore });
    return await run(store, audit, loaded);
  } finally {
    await audit.close().catch(() => undefined);
    await store.close();
  }
}

/** Who did it, for events appended by the CLI. */
export function cliActor(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return `cli:uid-${process.getuid?.() ?? 'unknown'}`;
  }
}
