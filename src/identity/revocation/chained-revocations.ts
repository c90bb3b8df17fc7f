// Revocations, lifts and key revocations with their audit events, each act and its
// events in one transaction (AuditLog.change): committed together or not at all, so
// no crash or failed event write leaves a revoked key without its `key.revoked`, or a
// `revocation.created` for a revocation that never took effect. The CLI and the admin
// API both go through here.

import type { ChainedChange } from '../../audit/index.js';
import type { ApiKeyInfo, ApiKeyService } from '../api-keys.js';
import { keyRevokedEvent, liftEvent, revocationEvent } from './revocation-events.js';
import type { RevocationRecord, RevocationService, RevokeInput } from './revocations.js';

export async function revokeChained(change: ChainedChange, revocations: RevocationService, input: RevokeInput & { readonly revokedBy: string }): Promise<RevocationRecord> {
  const record = await change(async (trx, emit) => {
    const made = await revocations.revoke(input, trx);
    emit(revocationEvent(input.revokedBy, made));
    return made;
  });
  await revocations.refresh();
  return record;
}

/** True if there was a revocation with this id (only then is `revocation.lifted` chained). */
export async function liftChained(change: ChainedChange, revocations: RevocationService, id: string, by: string): Promise<boolean> {
  const lifted = await change(async (trx, emit) => {
    const found = await revocations.lift(id, trx);
    if (found) emit(liftEvent(by, id));
    return found;
  });
  await revocations.refresh();
  return lifted;
}

export interface RevokedKey {
  readonly key: ApiKeyInfo;
  readonly revocation: RevocationRecord;
}

/**
 * Revokes the key with this id, or every unrevoked key of this name, and records a `key`
 * revocation for each (so gateways cut its in-flight exchanges) with its `key.revoked`
 * event. None revoked when none was unrevoked.
 */
export async function revokeKeysChained(
  change: ChainedChange,
  services: { readonly apiKeys: ApiKeyService; readonly revocations: RevocationService },
  reference: string,
  by: string,
  reason?: string,
): Promise<RevokedKey[]> {
  const revoked = await change(async (trx, emit) => {
    const keys = await services.apiKeys.revokeAll(reference, trx);
    const done: RevokedKey[] = [];
    for (const key of keys) {
      const revocation = await services.revocations.revoke({ kind: 'key', value: key.id, reason, revokedBy: by }, trx);
      emit(keyRevokedEvent(by, key, revocation.id));
      done.push({ key, revocation });
    }
    return done;
  });
  if (revoked.length > 0) await services.revocations.refresh();
  return revoked;
}
