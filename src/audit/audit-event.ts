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
  return eventHashOf(event, canonicalJson(event.details));
}

/**
 * The hash with the details already in canonical form (the appender has them so, as
 * stored). The object is written out in canonical key order by hand, which is exactly
 * canonicalJson of the whole event: the top-level keys are fixed and their values are
 * strings, integers or null (audit-units tests hold the two forms equal).
 */
export function eventHashOf(event: Omit<AuditEvent, 'hash' | 'details'>, canonicalDetails: string): string {
  const { seq, id, at, writer, kind, actor, target, prevHash } = event;
  if (!Number.isSafeInteger(seq) || !Number.isSafeInteger(at)) throw new TypeError('audit event: seq and at must be integers');
  const text =
    `{"actor":${JSON.stringify(actor)},"at":${at},"details":${canonicalDetails},"id":${JSON.stringify(id)},"kind":${JSON.stringify(kind)},` +
    `"prevHash":${JSON.stringify(prevHash)},"seq":${seq},"target":${JSON.stringify(target)},"writer":${JSON.stringify(writer)}}`;
  return sha256Hex(text);
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
