// Appends events to the one global chain inside the caller's transaction.
//
// Every appender (each gateway process, each CLI command) first locks the single
// `audit_head` row (an UPDATE, so PostgreSQL takes a row lock and SQLite its write
// lock), reads the head, hashes the new events onto it, and moves the head. The lock
// is held only until the transaction commits, and group commit takes it once per batch,
// not once per event. A signed checkpoint of the new head is written in the same
// transaction every `checkpointEvery` events or `checkpointIntervalMs`.

import type { Transaction } from 'kysely';
import { newId } from '../exchange/index.js';
import type { Database } from '../store/index.js';
import { eventHash, type AuditEvent } from './audit-event.js';
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
}

export interface ChainOptions {
  readonly writer: string;
  readonly signer?: CheckpointSigner | undefined;
  readonly checkpointEvery: number;
  readonly checkpointIntervalMs: number;
  readonly now?: () => number;
}

export async function appendEvents(trx: Transaction<Database>, inputs: readonly EventInput[], options: ChainOptions): Promise<AuditEvent[]> {
  if (inputs.length === 0) return [];
  const now = (options.now ?? Date.now)();
  const head = await trx
    .updateTable('audit_head')
    .set({ id: 1 })
    .where('id', '=', 1)
    .returning(['seq', 'hash', 'checkpoint_seq', 'checkpoint_at'])
    .executeTakeFirstOrThrow();
  let seq = Number(head.seq);
  let prevHash = head.hash;
  const events: AuditEvent[] = [];
  for (const input of inputs) {
    seq += 1;
    // Round-trip through canonical JSON so what is hashed is exactly what is stored.
    const details = JSON.parse(canonicalJson(input.details ?? {})) as Record<string, unknown>;
    const unhashed = { seq, id: newId('evt', now), at: now, writer: options.writer, kind: input.kind, actor: input.actor ?? null, target: input.target ?? null, details, prevHash };
    const event: AuditEvent = { ...unhashed, hash: eventHash(unhashed) };
    events.push(event);
    prevHash = event.hash;
  }
  for (let i = 0; i < events.length; i += 200) {
    await trx
      .insertInto('audit_events')
      .values(events.slice(i, i + 200).map((e) => ({ seq: e.seq, id: e.id, at: e.at, writer: e.writer, kind: e.kind, actor: e.actor, target: e.target, details: canonicalJson(e.details), prev_hash: e.prevHash, hash: e.hash })))
      .execute();
  }
  let checkpointSeq = Number(head.checkpoint_seq);
  // The first append starts the interval clock rather than checkpointing at once.
  let checkpointAt = Number(head.checkpoint_at) || now;
  if (options.signer && (seq - checkpointSeq >= options.checkpointEvery || now - checkpointAt >= options.checkpointIntervalMs)) {
    const checkpoint = { seq, hash: prevHash, at: now };
    await trx
      .insertInto('audit_checkpoints')
      .values({ ...checkpoint, key_id: options.signer.keyId, signature: options.signer.sign(checkpointPayload(checkpoint)) })
      .execute();
    checkpointSeq = seq;
    checkpointAt = now;
  }
  await trx.updateTable('audit_head').set({ seq, hash: prevHash, checkpoint_seq: checkpointSeq, checkpoint_at: checkpointAt }).where('id', '=', 1).execute();
  return events;
}
