// The audit events of keys and revocations, the same from the admin API and the CLI: a
// revocation cuts a credential on every gateway, so who did it, and to what, is chained.

import type { EventInput } from '../../audit/index.js';

export function revocationEvent(actor: string, record: { id: string; kind: string; value: string; reason: string | null }): EventInput {
  return { kind: 'revocation.created', actor, target: `revocation:${record.id}`, details: { kind: record.kind, value: record.value, reason: record.reason } };
}

/** A key made (`keys create`, `keys rotate`, the quick start's demo key): `audit verify` holds the key's row to these details (verify-credentials.ts). */
export function keyCreatedEvent(actor: string, key: { id: string; name: string; kind: string; groups: readonly string[]; expiresAt: number | null }, rotatedFrom?: string): EventInput {
  return { kind: 'key.created', actor, target: `key:${key.id}`, details: { name: key.name, kind: key.kind, groups: key.groups, expiresAt: key.expiresAt, ...(rotatedFrom ? { rotatedFrom } : {}) } };
}

export function keyRevokedEvent(actor: string, key: { id: string; name: string }, revocation: string): EventInput {
  return { kind: 'key.revoked', actor, target: `key:${key.id}`, details: { name: key.name, revocation } };
}

export function liftEvent(actor: string, id: string): EventInput {
  return { kind: 'revocation.lifted', actor, target: `revocation:${id}`, details: {} };
}
