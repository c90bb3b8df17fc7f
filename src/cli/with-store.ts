import { applyJournalOnce, awaitLiveJournalWriters, chainOptionsOf, loadSigner } from '../audit/index.js';
import { loadConfig, type GatehouseConfig } from '../config/index.js';
import { openStore, sqliteStoreLockHeld, type Store } from '../store/index.js';
import { configPath } from './config-path.js';

/** Opens the configured store for a one-shot command and always closes it. */
export async function withStore<T>(config: string | undefined, run: (store: Store, config: GatehouseConfig) => Promise<T>): Promise<T> {
  // Only the store's secrets are needed here: a connection's credential need not be set.
  const loaded = loadConfig(configPath(config), process.env, { secrets: 'store-only' });
  const store = await openStore(loaded.store);
  try {
    // Records a stopped gateway left in its journal are read like any other; a running
    // gateway's are left to it (its sinks send their events), unless it is stuck.
    // A gateway holding the store (its lock) writes every segment there, seen from here or not.
    const gatewayHoldsStore = store.sqlitePath !== undefined && sqliteStoreLockHeld(store.sqlitePath);
    if (store.sqlitePath) await awaitLiveJournalWriters(store.db, store.sqlitePath, { gatewayHoldsStore });
    if (store.sqlitePath) applyJournalOnce(store.sqlitePath, chainOptionsOf(loaded.audit, loadSigner(loaded.audit, { createKey: false })), { gatewayHoldsStore });
    return await run(store, loaded);
  } finally {
    await store.close();
  }
}
