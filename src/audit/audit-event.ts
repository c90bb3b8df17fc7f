// An audit event as chained and exported. Its hash is SHA-256 over the canonical JSON
// (canonical-json.ts) of every field except `hash` itself:
//
//   hash = sha256(canonical({ seq, id, at, writer, kind, actor, target, details, prevHash }))
//
// `prevHash` is the previous event's hash (64 zeros before the first event), so an
// edited, deleted, reordered or inserted event breaks the chain where it happened.

import type { AuditEventRow } from '../store/index.js';
import { canonicalJson, sha256Hex } from './canonical-json.js';

export const genesisHash = '0'.repeat(64);

export interface AuditEvent {
  readonly seq: number;
  readonly id: string;
  /** Epoch milliseconds. */
  readonly at: number;
  /** Which process appended it (`host/pid`, or `audit.writerId`). */
  readonly writer: string;
  readonly kind: string;
  readonly actor: string | null;
  readonly target: string | null;
  readonly details: Readonly<Record<string, unknown>>;
  readonly prevHash: string;
  readonly hash: string;
}

export function eventHash(event: Omit<AuditEvent, 'hash'>): string {
  const { seq, id, at, writer, kind, actor, target, details, prevHash } = event;
  return sha256Hex(canonicalJson({ seq, id, at, writer, kind, actor, target, details, prevHash }));
}

export function eventFromRow(row: AuditEventRow): AuditEvent {
  return {
    seq: Number(row.seq),
    id: row.id,
    at: Number(row.at),
    writer: row.writer,
    kind: row.kind,
    actor: row.actor,
    target: row.target,
    details: JSON.parse(row.details) as Record<string, unknown>,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}
