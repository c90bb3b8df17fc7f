// `audit verify`: the keys and revocations tables against the chain. Neither table is
// hashed, and both decide who gets in: whoever could write the store could undo the
// revocation of a leaked key (clear `api_keys.revoked_at` and delete its revocation
// row), give a key more groups, or make it never expire, and verify still passed while
// the key worked again. Every such act is chained when it is made (key.created,
// key.revoked, revocation.created / .lifted), so:
//   - a key revoked by a chained key.revoked must still be revoked, and the revocation
//     row made with it (details.revocation) must still be there;
//   - a revocation chained as created, and not as lifted, must still be there, naming
//     the same kind and value;
//   - a key chained as created keeps its name, kind and groups, and expires no later
//     than it was created to (a rotation only brings the expiry closer).
// A key or revocation whose events were pruned, or made by a build that did not chain
// them, is not checked. Memory: one entry per key and revocation in the retained chain.

import type { Kysely } from 'kysely';
import type { Database } from '../store/index.js';
import type { AuditEvent } from './audit-event.js';
import type { ChainProblem } from './verify-chain.js';

interface Chained {
  readonly seq: number;
  readonly eventId: string;
}

interface CreatedKey extends Chained {
  readonly name: unknown;
  readonly kind: unknown;
  readonly groups: unknown;
  readonly expiresAt: unknown;
}

interface RevokedKey extends Chained {
  readonly revocation: unknown;
}

interface CreatedRevocation extends Chained {
  readonly kind: unknown;
  readonly value: unknown;
}

export interface CredentialsCheck {
  /** Each event as the walk reads it, in seq order. */
  see(event: AuditEvent): void;
  /** The keys and revocations whose rows no longer say what the chain does; `walkedTo`: the last seq the walk read. */
  finish(walkedTo: number): Promise<ChainProblem[]>;
}

export function credentialsCheck(db: Kysely<Database>): CredentialsCheck {
  const created = new Map<string, CreatedKey>();
  const revoked = new Map<string, RevokedKey>();
  const revocations = new Map<string, CreatedRevocation>();
  const idOf = (target: string | null, prefix: string) => (target?.startsWith(prefix) ? target.slice(prefix.length) : undefined);
  return {
    see(event) {
      const at = { seq: event.seq, eventId: event.id };
      const d = event.details;
      if (event.kind === 'key.created') {
        const id = idOf(event.target, 'key:');
        if (id) created.set(id, { ...at, name: d.name, kind: d.kind, groups: d.groups, expiresAt: d.expiresAt });
      } else if (event.kind === 'key.revoked') {
        const id = idOf(event.target, 'key:');
        if (id && !revoked.has(id)) revoked.set(id, { ...at, revocation: d.revocation });
      } else if (event.kind === 'revocation.created') {
        const id = idOf(event.target, 'revocation:');
        if (id) revocations.set(id, { ...at, kind: d.kind, value: d.value });
      } else if (event.kind === 'revocation.lifted') {
        const id = idOf(event.target, 'revocation:');
        if (id) revocations.delete(id);
      }
    },
    async finish(walkedTo) {
      const problems: ChainProblem[] = [];
      const keyIds = [...new Set([...created.keys(), ...revoked.keys()])];
      const keys = new Map<string, { name: string; kind: string; groups: string; expires_at: number | null; revoked_at: number | null }>();
      for (let i = 0; i < keyIds.length; i += 500) {
        const rows = await db.selectFrom('api_keys').select(['id', 'name', 'kind', 'groups', 'expires_at', 'revoked_at']).where('id', 'in', keyIds.slice(i, i + 500)).execute();
        for (const row of rows) keys.set(row.id, { ...row, expires_at: row.expires_at === null ? null : Number(row.expires_at), revoked_at: row.revoked_at === null ? null : Number(row.revoked_at) });
      }
      const revocationIds = [...new Set([...revocations.keys(), ...[...revoked.values()].flatMap((r) => (typeof r.revocation === 'string' ? [r.revocation] : []))])];
      const rows = new Map<string, { kind: string; value: string }>();
      for (let i = 0; i < revocationIds.length; i += 500) {
        for (const row of await db.selectFrom('identity_revocations').select(['id', 'kind', 'value']).where('id', 'in', revocationIds.slice(i, i + 500)).execute()) rows.set(row.id, row);
      }

      for (const [id, key] of created) {
        const row = keys.get(id);
        if (!row) continue; // a deleted key authenticates nobody
        const changed: string[] = [];
        if (row.name !== key.name) changed.push(`its name (${JSON.stringify(key.name)} → ${JSON.stringify(row.name)})`);
        if (row.kind !== key.kind) changed.push(`its kind (${String(key.kind)} → ${row.kind})`);
        if (row.groups !== JSON.stringify(key.groups)) changed.push(`its groups (${JSON.stringify(key.groups)} → ${row.groups})`);
        if (typeof key.expiresAt === 'number' && (row.expires_at === null || row.expires_at > key.expiresAt))
          changed.push(`its expiry (${new Date(key.expiresAt).toISOString()} → ${row.expires_at === null ? 'never' : new Date(row.expires_at).toISOString()})`);
        if (changed.length > 0) problems.push({ seq: key.seq, eventId: key.eventId, message: `key ${id}, created by event seq ${key.seq} (${key.eventId}), was changed outside the gateway: ${changed.join(', ')}` });
      }
      for (const [id, key] of revoked) {
        const row = keys.get(id);
        const undone: string[] = [];
        if (row && row.revoked_at === null) undone.push('api_keys says it is not revoked');
        if (typeof key.revocation === 'string' && !rows.has(key.revocation)) undone.push(`its revocation ${key.revocation} is gone`);
        if (undone.length > 0) problems.push({ seq: key.seq, eventId: key.eventId, message: `key ${id}, revoked by event seq ${key.seq} (${key.eventId}), had its revocation undone outside the gateway: ${undone.join(', and ')}` });
      }
      for (const [id, revocation] of revocations) {
        const row = rows.get(id);
        if (row && row.kind === revocation.kind && row.value === revocation.value) continue;
        // Lifted while this ran (after the walk): its row is rightly gone.
        if (!row && (await liftedAfter(db, id, walkedTo))) continue;
        problems.push({
          seq: revocation.seq,
          eventId: revocation.eventId,
          message: row
            ? `revocation ${id}, created by event seq ${revocation.seq} (${revocation.eventId}), was changed outside the gateway: it revoked ${String(revocation.kind)} ${JSON.stringify(revocation.value)}, its row now ${row.kind} ${JSON.stringify(row.value)}`
            : `revocation ${id} (${String(revocation.kind)} ${JSON.stringify(revocation.value)}), created by event seq ${revocation.seq} (${revocation.eventId}), was deleted outside the gateway: no revocation.lifted was chained for it`,
        });
      }
      return problems;
    },
  };
}

async function liftedAfter(db: Kysely<Database>, id: string, after: number): Promise<boolean> {
  const row = await db.selectFrom('audit_events').select('seq').where('seq', '>', after).where('kind', '=', 'revocation.lifted').where('target', '=', `revocation:${id}`).executeTakeFirst();
  return row !== undefined;
}
