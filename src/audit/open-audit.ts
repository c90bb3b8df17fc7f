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
import { createSinks, type AuditSink } from './sinks.js';
import { loadOrCreateKeyFile, signerFromPem, type CheckpointSigner } from './signing-key.js';

export interface AuditTrail {
  readonly writer: GroupCommitWriter;
  readonly log: AuditLog;
  readonly signer: CheckpointSigner | undefined;
  /** Hands events committed elsewhere (the record journal's worker) to the sinks. */
  publish(events: readonly AuditEvent[]): void;
  /** Whether any sink is configured (publish is then worth calling). */
  readonly hasSinks: boolean;
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
    /** The store's SQLite file: record writes then take the prepared-statement path. */
    sqlitePath?: string | undefined;
  },
): AuditTrail {
  const signer = loadSigner(config, options);
  const sinks: AuditSink[] = options.withSinks ? createSinks(config.sinks, options.onSinkError ?? (() => undefined)) : [];
  const publish = (events: readonly AuditEvent[]) => sinks.forEach((sink) => sink.send(events));
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
    async close() {
      await writer.close();
      await Promise.all(sinks.map((s) => s.close()));
    },
  };
}
