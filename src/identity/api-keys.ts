// API keys for service accounts and agents: created (the token is shown once), listed,
// revoked and verified. Verification reads through a short cache so the hot path does
// not hit the store each request; a revocation made by any process sharing the store
// takes effect within `cacheTtlMs`.
// Every change takes an optional `db`: the caller's transaction, so the change commits
// with the audit event that records it (AuditLog.change), or not at all.

import type { Kysely } from 'kysely';
import { GatehouseError } from '../errors/index.js';
import type { Identity, IdentityKind } from '../exchange/index.js';
import { inTransaction, type ApiKeyRow, type Database } from '../store/index.js';
import { generateApiKey, hashSecret, parseApiKey, secretMatchesDigest } from './api-key-format.js';
import { ProvenCredentialRefused } from './proven-identity.js';

export interface ApiKeyInfo {
  readonly id: string;
  readonly name: string;
  readonly kind: IdentityKind;
  readonly groups: readonly string[];
  readonly createdAt: number;
  readonly expiresAt: number | null;
  readonly revokedAt: number | null;
  readonly lastUsedAt: number | null;
}

export interface CreateApiKeyInput {
  readonly name: string;
  readonly kind: IdentityKind;
  readonly groups: readonly string[];
  /** Absolute expiry (epoch ms), or null for none. */
  readonly expiresAt: number | null;
}

const identityKinds: readonly IdentityKind[] = ['human', 'service', 'agent'];
const namePattern = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/;

export class ApiKeyInputError extends Error {
  /**
   * `conflict`: the input is valid but the store's keys refuse it (a live key of that
   * name exists, none to rotate): the CLI exits 1 for it, as for a key it cannot find,
   * and 2 for the others (an invalid name, kind or duration).
   */
  constructor(
    message: string,
    readonly conflict = false,
  ) {
    super(message);
  }
}

const maxCachedKeys = 10_000;

function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}

interface CacheEntry {
  readonly row: ApiKeyRow | undefined;
  readonly groups: readonly string[];
  /** row.secret_hash decoded, so a check does not decode it again. */
  readonly secretHash: Buffer;
  /** The identity the key stands for (immutable, so one object serves every request). */
  readonly identity: Identity | undefined;
  readonly fetchedAt: number;
}


/**
 * How long a key was made to live, to the second: `keys create --expires 30d` computes
 * the expiry a moment before the key's creation time is taken, and a rotation should
 * keep 30d, not 30d less a few milliseconds.
 */
export function keyLifetime(createdAt: number, expiresAt: number): number {
  return Math.max(1000, Math.round((expiresAt - createdAt) / 1000) * 1000);
}

/**
 * What names a key to revoke: its id or name, or the key pasted whole, which names its
 * id (the secret is not needed to revoke, and must not be echoed or kept).
 */
export function apiKeyReference(value: string): string {
  return parseApiKey(value.trim())?.id ?? value;
}
export class ApiKeyService {
  readonly #db: Kysely<Database>;
  readonly #cacheTtlMs: number;
  readonly #cache = new Map<string, CacheEntry>();
  readonly #lastUsedWrites = new Map<string, number>();
  readonly #now: () => number;

  constructor(db: Kysely<Database>, options: { cacheTtlMs?: number; now?: () => number } = {}) {
    this.#db = db;
    this.#cacheTtlMs = options.cacheTtlMs ?? 1000;
    this.#now = options.now ?? Date.now;
  }

  async create(input: CreateApiKeyInput, db: Kysely<Database> = this.#db): Promise<{ token: string; key: ApiKeyInfo }> {
    if (!namePattern.test(input.name)) throw new ApiKeyInputError(`key name "${input.name}" must be 1-128 letters, digits, ".", "_", "@" or "-"`);
    if (!identityKinds.includes(input.kind)) throw new ApiKeyInputError(`kind must be one of ${identityKinds.join(', ')}`);
    if (input.groups.some((g) => g.trim() === '')) throw new ApiKeyInputError('group names must not be empty');
    const now = this.#now();
    if (input.expiresAt !== null && input.expiresAt <= now) throw new ApiKeyInputError('expiry must be in the future');
    try {
      return await inTransaction(db, async (trx) => {
        // The generation is read BEFORE the live check: under PostgreSQL's read committed,
        // a concurrent create that committed before our live check is seen by it, and one
        // that had not committed before our generation read gets the same generation.
        const generation = await nextGeneration(trx, input.name);
        // live: neither revoked nor expired (an expired key does not hold its name)
        const existing = await trx
          .selectFrom('api_keys')
          .select('id')
          .where('name', '=', input.name)
          .where('revoked_at', 'is', null)
          .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
          .executeTakeFirst();
        if (existing) throw new ApiKeyInputError(`a live key named "${input.name}" already exists (id ${existing.id}); revoke or rotate it`, true);
        return this.#insert(trx, input, generation, now);
      });
    } catch (error) {
      // unique (name, generation) (migration 0004) closes the check-then-insert race:
      // two concurrent creates compute the same generation and one insert fails.
      if (isUniqueViolation(error)) throw new ApiKeyInputError(`a live key named "${input.name}" already exists; revoke or rotate it`, true);
      throw error;
    }
  }

  /**
   * Rotation with overlap: makes a new key for a name (same kind and groups) and sets
   * the live key's expiry to now + overlap, so both work during the overlap. At most
   * two live keys per name: a rotation while one is still overlapping is refused.
   * `expiresAt` undefined keeps the name's lifetime policy: the new key lives as long as
   * the live one was made to (its expiry − its creation, to the second) from now, and
   * never expires if it never did; null: never expires.
   */
  async rotate(name: string, options: { overlapMs: number; expiresAt?: number | null | undefined }, db: Kysely<Database> = this.#db): Promise<{ token: string; key: ApiKeyInfo; previous: ApiKeyInfo }> {
    const now = this.#now();
    if (!Number.isFinite(options.overlapMs) || options.overlapMs < 0) throw new ApiKeyInputError('overlap must be a duration of 0 or more');
    try {
      return await inTransaction(db, async (trx) => {
        const generation = await nextGeneration(trx, name);
        const live = (await trx.selectFrom('api_keys').selectAll().where('name', '=', name).where('revoked_at', 'is', null).orderBy('generation', 'desc').execute())
          .filter((r) => r.expires_at === null || r.expires_at > now);
        if (live.length === 0) throw new ApiKeyInputError(`no live key named "${name}" to rotate; create one`, true);
        if (live.length > 1) throw new ApiKeyInputError(`key "${name}" is already rotating (keys ${live.map((r) => r.id).join(', ')} are live); revoke one first`, true);
        const old = live[0]!;
        const oldExpiry = Math.min(old.expires_at ?? Number.POSITIVE_INFINITY, now + options.overlapMs);
        await trx.updateTable('api_keys').set({ expires_at: oldExpiry }).where('id', '=', old.id).execute();
        const expiresAt = options.expiresAt !== undefined ? options.expiresAt : old.expires_at === null ? null : now + keyLifetime(old.created_at, old.expires_at);
        const created = await this.#insert(trx, { name, kind: old.kind as IdentityKind, groups: JSON.parse(old.groups) as string[], expiresAt }, generation, now);
        this.#cache.delete(old.id);
        return { ...created, previous: toInfo({ ...old, expires_at: oldExpiry }) };
      });
    } catch (error) {
      if (isUniqueViolation(error)) throw new ApiKeyInputError(`key "${name}" was rotated concurrently; list the keys and retry`, true);
      throw error;
    }
  }

  async #insert(trx: Kysely<Database>, input: CreateApiKeyInput, generation: number, now: number): Promise<{ token: string; key: ApiKeyInfo }> {
    const { id, secret, token } = generateApiKey();
    const row: ApiKeyRow = {
      id,
      name: input.name,
      kind: input.kind,
      groups: JSON.stringify(input.groups),
      secret_hash: hashSecret(secret),
      created_at: now,
      expires_at: input.expiresAt,
      revoked_at: null,
      last_used_at: null,
      generation,
    };
    await trx.insertInto('api_keys').values(row).execute();
    return { token, key: toInfo(row) };
  }

  /** Newest first; at most `limit` when given. */
  async list(limit?: number): Promise<ApiKeyInfo[]> {
    let query = this.#db.selectFrom('api_keys').selectAll().orderBy('created_at', 'desc');
    if (limit !== undefined) query = query.limit(limit);
    const rows = await query.execute();
    return rows.map(toInfo);
  }

  /**
   * Revokes the key with this id, or else every unrevoked key of this name (both keys
   * during a rotation's overlap, and an expired one too: revoking by name must never
   * leave a working key of the name behind). Returns the keys revoked, none if none was
   * unrevoked.
   */
  async revokeAll(reference: string, db: Kysely<Database> = this.#db): Promise<ApiKeyInfo[]> {
    const idOrName = apiKeyReference(reference);
    const live = db.selectFrom('api_keys').selectAll().where('revoked_at', 'is', null);
    const byId = await live.where('id', '=', idOrName).execute();
    const rows = byId.length > 0 ? byId : await live.where('name', '=', idOrName).orderBy('generation', 'desc').execute();
    if (rows.length === 0) return [];
    const revokedAt = this.#now();
    const ids = rows.map((r) => r.id);
    await db.updateTable('api_keys').set({ revoked_at: revokedAt }).where('id', 'in', ids).where('revoked_at', 'is', null).execute();
    for (const id of ids) this.#cache.delete(id);
    return rows.map((row) => toInfo({ ...row, revoked_at: revokedAt }));
  }

  /** Revokes by id (preferred) or by name; returns the revoked key, or undefined if none was live. */
  async revoke(reference: string): Promise<ApiKeyInfo | undefined> {
    const idOrName = apiKeyReference(reference);
    const live = this.#db.selectFrom('api_keys').selectAll().where('revoked_at', 'is', null);
    const row = (await live.where('id', '=', idOrName).executeTakeFirst()) ?? (await live.where('name', '=', idOrName).executeTakeFirst());
    if (!row) return undefined;
    const revokedAt = this.#now();
    await this.#db.updateTable('api_keys').set({ revoked_at: revokedAt }).where('id', '=', row.id).execute();
    this.#cache.delete(row.id);
    return toInfo({ ...row, revoked_at: revokedAt });
  }

  /** Verifies a presented token; throws a 401 GatehouseError that says why. */
  async verify(token: string): Promise<Identity> {
    const parsed = parseApiKey(token);
    if (!parsed) throw new GatehouseError('invalid_credential', { detail: 'not a Gatehouse API key' });
    const now = this.#now();
    let entry = this.#cache.get(parsed.id);
    if (!entry || now - entry.fetchedAt > this.#cacheTtlMs) {
      const row = await this.#db.selectFrom('api_keys').selectAll().where('id', '=', parsed.id).executeTakeFirst();
      const groups = row ? (JSON.parse(row.groups) as string[]) : [];
      const identity: Identity | undefined = row ? { subject: `key:${row.name}`, kind: row.kind as IdentityKind, groups, method: 'api_key', credentialId: row.id, issuedAt: row.created_at, ...(row.expires_at === null ? {} : { expiresAt: row.expires_at }) } : undefined;
      entry = { row, groups, secretHash: Buffer.from(row?.secret_hash ?? '', 'hex'), identity, fetchedAt: now };
      // Only keys that exist are cached, so random ids cannot grow the cache; it is
      // bounded as well (oldest first out, Map keeps insertion order).
      if (row) {
        this.#cache.delete(parsed.id);
        this.#cache.set(parsed.id, entry);
        if (this.#cache.size > maxCachedKeys) this.#cache.delete(this.#cache.keys().next().value!);
      }
    }
    const row = entry.row;
    if (!row || !secretMatchesDigest(parsed.secret, entry.secretHash)) {
      throw new GatehouseError('invalid_credential', { detail: row ? `wrong secret for key ${parsed.id}` : `unknown key id ${parsed.id}` });
    }
    // The secret matched: the refusal names the key's identity (proven-identity.ts).
    if (row.revoked_at !== null) throw new ProvenCredentialRefused('credential_revoked', entry.identity!, { detail: `key ${row.id} (${row.name}) revoked` });
    if (row.expires_at !== null && row.expires_at <= now) throw new ProvenCredentialRefused('credential_expired', entry.identity!, { detail: `key ${row.id} (${row.name}) expired` });
    this.#touch(row.id, now);
    return entry.identity!;
  }

  // last_used_at is written at most once a minute per key, off the request path.
  #touch(id: string, now: number): void {
    const last = this.#lastUsedWrites.get(id);
    if (last !== undefined && now - last < 60_000) return;
    this.#lastUsedWrites.set(id, now);
    this.#db.updateTable('api_keys').set({ last_used_at: now }).where('id', '=', id).execute().catch(() => undefined);
  }
}

async function nextGeneration(db: Kysely<Database>, name: string): Promise<number> {
  const row = await db.selectFrom('api_keys').select((eb) => eb.fn.max('generation').as('max')).where('name', '=', name).executeTakeFirst();
  return Number(row?.max ?? 0) + 1;
}

function toInfo(row: ApiKeyRow): ApiKeyInfo {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind as IdentityKind,
    groups: JSON.parse(row.groups) as string[],
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    lastUsedAt: row.last_used_at,
  };
}
