// Builds this process's audit machinery from config: the signing key, the group-commit
// writer that chains events, the AuditLog for administrative acts, and the sinks. The
// gateway and the CLI both start here, so they append to the same chain the same way.

import { hostname } from 'node:os';
import type { Kysely } from 'kysely';
import type { AuditConfig } from '../config/audit-schema.js';
import type { Database } from '../store/index.js';
import { AuditLog } from './audit-log.js';
import { GroupCommitWriter } from './group-commit.js';
import { createSinks, type AuditSink } from './sinks.js';
import { loadOrCreateKeyFile, signerFromPem, type CheckpointSigner } from './signing-key.js';

export interface AuditTrail {
  readonly writer: GroupCommitWriter;
  readonly log: AuditLog;
  readonly signer: CheckpointSigner | undefined;
  close(): Promise<void>;
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
  const writer = new GroupCommitWriter(db, {
    chain: {
      writer: config.writerId ?? `${hostname()}/${process.pid}`,
      signer,
      checkpointEvery: config.checkpoint.every,
      checkpointIntervalMs: config.checkpoint.interval,
    },
    onCommitted: sinks.length === 0 ? undefined : (events) => sinks.forEach((sink) => sink.send(events)),
    sqlitePath: options.sqlitePath,
  });
  return {
    writer,
    log: new AuditLog(writer),
    signer,
    async close() {
      await writer.close();
      await Promise.all(sinks.map((s) => s.close()));
    },
  };
}
