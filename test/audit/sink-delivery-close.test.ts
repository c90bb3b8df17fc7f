// At shutdown a gateway delivers to its sinks what is chained by then. A sink still
// taking a batch when the last events were chained (gateway.stopped, among them) stopped
// after that batch: the events chained meanwhile waited for the next start, and a gateway
// never started again (a host taken out after an incident) never sent them to the SIEM.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { openAuditTrail, type AuditEvent } from '../../src/audit/index.js';
import { SinkDelivery } from '../../src/audit/sink-delivery.js';
import type { AuditConfig } from '../../src/config/audit-schema.js';
import { openStore } from '../../src/store/index.js';
import { createTestSqliteDatabase } from '../helpers/databases.js';

test('close delivers the events chained while a batch was being taken, not only that batch', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-sink-close-'));
  const database = await createTestSqliteDatabase();
  const store = await openStore(database.config);
  const config: AuditConfig = {
    writerId: 'test-writer',
    signingKey: undefined,
    keyFile: join(dir, 'audit-signing-key.pem'),
    previousPublicKeys: [],
    checkpoint: { every: 1000, interval: 3_600_000 },
    progress: { interval: 250, bytes: 65_536 },
    sinks: [],
    alerts: { failedAuthThenSuccess: false, bulkRequests: false },
    raw: { enabled: false, key: undefined, revealGroups: [] },
  };
  const trail = openAuditTrail(store.db, config, { createKey: true, withSinks: false, sqlitePath: store.sqlitePath });
  try {
    const event = (n: number) => trail.log.event({ kind: 'policy.changed', actor: 'gatehouse', target: `policy:v${n}`, details: {} });
    await event(0);
    const delivered: string[] = [];
    let release: (() => void) | undefined;
    let taking: (() => void) | undefined;
    const takingFirst = new Promise<void>((resolve) => (taking = resolve));
    const sink = {
      key: 'test:slow',
      async deliver(events: readonly AuditEvent[]) {
        if (release === undefined) {
          // The first batch is slow to be taken: the last events are chained meanwhile.
          await new Promise<void>((resolve) => {
            release = resolve;
            taking!();
          });
        }
        delivered.push(...events.map((e) => e.target!));
      },
      close: async () => undefined,
    };
    const delivery = new SinkDelivery(store.db, [sink], { pollMs: 60_000, onError: () => undefined });
    await delivery.start(); // its cursor at the head: policy:v0 is before it
    await event(1);
    delivery.kick();
    await takingFirst;
    await event(2); // e.g. gateway.stopped, chained just before the sinks are closed
    const closed = delivery.close(5_000);
    release!();
    await closed;
    assert.deepEqual(delivered, ['policy:v1', 'policy:v2']);
  } finally {
    await trail.close();
    await store.close();
    await database.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
});
