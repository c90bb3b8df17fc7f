// Appends events to the one global chain inside the caller's transaction.
//
// Every appender (each gateway process, each CLI command) first locks the single
// `audit_head` row (an UPDATE, so PostgreSQL takes a row lock and SQLite its write
// lock), reads the head, hashes the new events onto it, and moves the head. The lock
// is held only until the transaction commits, and group commit takes it once per batch,
// not once per event. A signed checkpoint of the new head is written in the same
// transaction every `checkpointEvery` events or `checkpointIntervalMs`.
//
// The hashing is one pure step (chainEvents) shared by the two ways of writing it: a
// Kysely transaction (any dialect) and the synchronous SQLite batch (sqlite-batch.ts).

import type { Transaction } from 'kysely';
import { newId } from '../exchange/index.js';
import type { AuditCheckpointRow, AuditEventRow, Database } from '../store/index.js';
import { eventHashOf, type AuditEvent } from './audit-event.js';
import { canonicalJson } from './canonical-json.js';
import { checkpointPayload, type CheckpointSigner } from './signing-key.js';

export interface EventInput {
  /** Dotted, past tense: `exchange.opened`, `key.created`, `policy.changed` … */
  readonly kind: string;
  /** Who did it: a subject (`key:ci-bot`), `cli:<os user>`, or `gatehouse`. */
  readonly actor?: string | null | undefined;
  /** What it was done to: an exchange id, `key:<id>`, a connection name … */
  readonly target?: string | null | undefined;
  /** JSON-safe facts (no secrets: they are chained, exported and sent to sinks). */
  readonly details?: Readonly<Record<string, unknown>> | undefined;
  /** canonicalJson(details), when the caller has it already (the exchange events: record-columns.ts). */
  readonly canonicalDetails?: string | undefined;
}

export interface ChainOptions {
  readonly writer: string;
  readonly signer?: CheckpointSigner | undefined;
  readonly checkpointEvery: number;
  readonly checkpointIntervalMs: number;
  readonly now?: () => number;
}

export interface ChainHead {
  readonly seq: number;
  readonly hash: string;
  readonly checkpoint_seq: number;
  readonly checkpoint_at: number;
}

export interface ChainedBatch {
  readonly events: AuditEvent[];
  readonly rows: AuditEventRow[];
  readonly checkpoint: AuditCheckpointRow | undefined;
  readonly head: ChainHead;
}

/** Hashes `inputs` onto `head`: the rows to insert, the checkpoint due, the new head. */
export function chainEvents(head: ChainHead, inputs: readonly EventInput[], options: ChainOptions): ChainedBatch {
  const now = (options.now ?? Date.now)();
  let seq = Number(head.seq);
  let prevHash = head.hash;
  const events: AuditEvent[] = [];
  const rows: AuditEventRow[] = [];
  for (const input of inputs) {
    seq += 1;
    // Hashed and stored as the same canonical text.
    const details = input.canonicalDetails ?? canonicalJson(input.details ?? {});
    const id = newId('evt', now);
    const actor = input.actor ?? null;
    const target = input.target ?? null;
    const hash = eventHashOf({ seq, id, at: now, writer: options.writer, kind: input.kind, actor, target, prevHash }, details);
    // Literals, not a spread of the hashed fields: a spread makes a new hidden class per event.
    events.push({ seq, id, at: now, writer: options.writer, kind: input.kind, actor, target, prevHash, details: input.details ?? {}, hash });
    rows.push({ seq, id, at: now, writer: options.writer, kind: input.kind, actor, target, details, prev_hash: prevHash, hash });
    prevHash = hash;
  }
  let checkpointSeq = Number(head.checkpoint_seq);
  // The first append starts the interval clock rather than checkpointing at once.
  let checkpointAt = Number(head.checkpoint_at) || now;
  let checkpoint: AuditCheckpointRow | undefined;
  if (options.signer && (seq - checkpointSeq >= options.checkpointEvery || now - checkpointAt >= options.checkpointIntervalMs)) {
    const signed = { seq, hash: prevHash, at: now };
    checkpoint = { ...signed, key_id: options.signer.keyId, signature: options.signer.sign(checkpointPayload(signed)) };
    checkpointSeq = seq;
    checkpointAt = now;
  }
  return { events, rows, checkpoint, head: { seq, hash: prevHash, checkpoint_seq: checkpointSeq, checkpoint_at: checkpointAt } };
}

/** Locks the head row (until the transaction ends) and reads it. */
export function lockHead(trx: Transaction<Database>): Promise<ChainHead> {
  return trx
    .updateTable('audit_head')
    .set({ id: 1 })
    .where('id', '=', 1)
    .returning(['seq', 'hash', 'checkpoint_seq', 'checkpoint_at'])
    .executeTakeFirstOrThrow();
}

/** `locked`: the head as lockHead read it earlier in this transaction (saves taking it again). */
export async function appendEvents(trx: Transaction<Database>, inputs: readonly EventInput[], options: ChainOptions, locked?: ChainHead): Promise<AuditEvent[]> {
  if (inputs.length === 0) return [];
  const head = locked ?? (await lockHead(trx));
  const batch = chainEvents(head, inputs, options);
  for (let i = 0; i < batch.rows.length; i += 200) {
    await trx.insertInto('audit_events').values(batch.rows.slice(i, i + 200)).execute();
  }
  if (batch.checkpoint) await trx.insertInto('audit_checkpoints').values(batch.checkpoint).execute();
  await trx.updateTable('audit_head').set(batch.head).where('id', '=', 1).execute();
  return batch.events;
}
