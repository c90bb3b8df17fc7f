// Builds this process's audit machinery from config: the signing key, the group-commit
// writer that chains events, the AuditLog for administrative acts, and the sinks. The
// gateway and the CLI both start here, so they append to the same chain the same way.

import { hostname } from 'node:os';
import type { Kysely } from 'kysely';
import type { AuditConfig } from '../config/audit-schema.js';
import type { Database } from '../store/index.js';
import type { ChainOptions } from './append-events.js';
import type { AuditEvent } from './audit-event.js';
import { AuditLog } from './audit-log.js';
import { GroupCommitWriter } from './group-commit.js';
import { SinkDelivery } from './sink-delivery.js';
import { createSinks, type AuditSink } from './sinks.js';
import { loadOrCreateKeyFile, signerFromPem, type CheckpointSigner } from './signing-key.js';

export interface AuditTrail {
  readonly writer: GroupCommitWriter;
  readonly log: AuditLog;
  readonly signer: CheckpointSigner | undefined;
  /** Events were committed elsewhere in this process (the record journal's worker): the sinks read them now, not at the next poll. */
  publish(events: readonly AuditEvent[]): void;
  /** Whether any sink is configured (publish is then worth calling). */
  readonly hasSinks: boolean;
  /** Starts delivering the chain to the sinks from where each left off (see sink-delivery.ts). */
  startSinks(): Promise<void>;
  close(): Promise<void>;
}

/** How this process chains events: its writer id, signer and checkpoint cadence. */
export function chainOptionsOf(config: AuditConfig, signer: CheckpointSigner | undefined): ChainOptions {
  return {
    writer: config.writerId ?? `${hostname()}/${process.pid}`,
    signer,
    checkpointEvery: config.checkpoint.every,
    checkpointIntervalMs: config.checkpoint.interval,
  };
}

/** The configured key, or the generated key file (created only when `createKey`). */
export function loadSigner(config: AuditConfig, options: { createKey: boolean }): CheckpointSigner | undefined {
  if (config.signingKey) return signerFromPem(config.signingKey);
  return config.keyFile === undefined ? undefined : loadOrCreateKeyFile(config.keyFile, { create: options.createKey });
}

export function openAuditTrail(
  db: Kysely<Database>,
  config: AuditConfig,
  options: {
    createKey: boolean;
    withSinks: boolean;
    onSinkError?: (sink: string, error: unknown) => void;
    /** How often the sinks look for events chained by other processes (tests shorten it). */
    sinkPollMs?: number | undefined;
    sinkBackoffMs?: number | undefined;
    /** The store's SQLite file: record writes then take the prepared-statement path. */
    sqlitePath?: string | undefined;
  },
): AuditTrail {
  const signer = loadSigner(config, options);
  const onSinkError = options.onSinkError ?? (() => undefined);
  const sinks: AuditSink[] = options.withSinks ? createSinks(config.sinks, onSinkError) : [];
  // The sinks read the chain from the store: events committed here only wake them.
  const delivery = new SinkDelivery(db, sinks, { onError: onSinkError, pollMs: options.sinkPollMs, minBackoffMs: options.sinkBackoffMs });
  const publish = (_events: readonly AuditEvent[]) => delivery.kick();
  const writer = new GroupCommitWriter(db, {
    chain: chainOptionsOf(config, signer),
    onCommitted: sinks.length === 0 ? undefined : publish,
    sqlitePath: options.sqlitePath,
  });
  return {
    writer,
    log: new AuditLog(writer),
    signer,
    publish,
    hasSinks: sinks.length > 0,
    startSinks: () => delivery.start(),
    async close() {
      await writer.close();
      await delivery.close();
      await Promise.all(sinks.map((s) => s.close()));
    },
  };
}

/**
 * This process's checkpoint key id. A key other than the one that signed the newest
 * checkpoint (a rotation, a lost key file regenerated) is put on record: earlier
 * checkpoints verify only with the old key.
 */
export async function recordCheckpointKey(db: Kysely<Database>, audit: AuditTrail): Promise<string | null> {
  const checkpointKey = audit.signer?.keyId ?? null;
  const lastSigned = await db.selectFrom('audit_checkpoints').select('key_id').orderBy('seq', 'desc').limit(1).executeTakeFirst();
  if (lastSigned && lastSigned.key_id !== checkpointKey) await audit.log.event({ kind: 'audit.key_changed', actor: 'gatehouse', target: null, details: { from: lastSigned.key_id, to: checkpointKey } });
  return checkpointKey;
}
