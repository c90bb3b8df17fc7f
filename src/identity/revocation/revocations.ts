// Revocation: a token (by credential id, e.g. `jti:…`), every credential of a subject
// issued up to now, a user (every credential of the subject, now and later, until
// lifted), an API key, or a gateway signing key (every Gatehouse token and login
// session it signed, for a private key that leaked). Rows live in the store; each write bumps a generation
// counter in the same transaction, and every gateway polls that one-row counter every
// `pollInterval` (250 ms) and reloads the rows when it moved. Polling works the same on
// SQLite and PostgreSQL and survives reconnects without missed notifications, bounding
// propagation at pollInterval + one query. On PostgreSQL the write also NOTIFYs
// `gatehouse_revocations`, and every gateway LISTENs (a connection of its own): the
// others re-read within milliseconds of the commit, the poll staying as a safety net.
// The check on each request reads only memory; on a change, the in-flight exchanges of
// a revoked identity are cut.
// revoke and lift take an optional `db`: the caller's transaction, so the change commits
// with its audit event (AuditLog.change), or not at all; that caller calls refresh()
// once it has committed.

import { randomBytes } from 'node:crypto';
import { PostgresAdapter, sql, type Kysely } from 'kysely';
import { GatehouseError } from '../../errors/index.js';
import type { Identity } from '../../exchange/index.js';
import { inTransaction, type Database } from '../../store/index.js';
import { parseApiKey } from '../api-key-format.js';
import { peekJwt } from '../jwt-peek.js';

export const revocationKinds = ['token', 'subject', 'user', 'key', 'signing-key'] as const;
export type RevocationKind = (typeof revocationKinds)[number];

export interface RevocationRecord {
  readonly id: string;
  readonly kind: RevocationKind;
  readonly value: string;
  readonly createdAt: number;
  readonly reason: string | null;
  readonly revokedBy: string | null;
}

export interface RevokeInput {
  readonly kind: RevocationKind;
  readonly value: string;
  readonly reason?: string | undefined;
  readonly revokedBy?: string | undefined;
}

interface Snapshot {
  readonly credentials: ReadonlySet<string>;
  readonly keys: ReadonlySet<string>;
  /** subject → latest revocation time: credentials issued at or before it are revoked. */
  readonly subjects: ReadonlyMap<string, number>;
  readonly users: ReadonlySet<string>;
  /** kids of gateway signing keys. */
  readonly signingKeys: ReadonlySet<string>;
}

/** The identity sources a subject can name: `oidc:<issuer name>:…`, `saml:<name>:…`. */
export interface SubjectSources {
  readonly oidc: readonly string[];
  readonly saml?: string | undefined;
}

/**
 * What a revocation stores, from what an operator typed; a RangeError says what is wrong.
 * A token may be named by its jti (bare or `jti:…`) or pasted whole: then its jti is
 * read (unverified) and only that is kept, never the token. A subject or user must have
 * a subject's form, and with `sources` name a configured issuer: a typo would otherwise
 * be stored and revoke nobody.
 */
export function revocationValue(kind: RevocationKind, value: string, sources?: SubjectSources): string {
  // An Authorization header's value pasted whole (`Bearer eyJ…`) names its token.
  const trimmed = value.trim().replace(/^bearer\s+/i, '');
  if (parseApiKey(trimmed)) throw new RangeError('this is an API key, not a token id: revoke it with "revoke key" and its id or name (the key itself is never stored)');
  const jwt = peekJwt(trimmed);
  if (kind === 'token' && jwt) {
    if (typeof jwt.payload.jti !== 'string' || jwt.payload.jti === '') throw new RangeError('this token has no "jti" claim, so it cannot be revoked alone: revoke its subject instead');
    return `jti:${jwt.payload.jti}`;
  }
  if (jwt) throw new RangeError(`a ${kind} is named by its subject, not by a token: key:<name>, oidc:<issuer name>:<sub> or saml:<name>:<NameID>`);
  // What is stored must never be a token: one that cannot be read (cut short or joined
  // with other text when copied) would be kept, listed, and revoke nothing.
  if (/^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\./.test(trimmed) || /\.eyJ[A-Za-z0-9_-]{10,}/.test(trimmed)) {
    throw new RangeError('this looks like a token but cannot be read as one (cut short when copied?): paste the whole token, or give its jti');
  }
  if (kind === 'token') {
    if (/\s/.test(trimmed)) throw new RangeError('a token id (jti) has no spaces: give the jti, or the whole token');
    return trimmed.includes(':') ? trimmed : `jti:${trimmed}`;
  }
  if (kind === 'signing-key') {
    if (!/^[\x21-\x7e]{1,200}$/.test(trimmed)) throw new RangeError('a signing key is named by its kid, as GET /.well-known/jwks.json and gatehouse revoke list show it');
    return trimmed;
  }
  if (kind === 'subject' || kind === 'user') {
    const [source, name, ...rest] = value.split(':');
    const id = rest.join(':');
    const form = (source === 'key' && value.length > 4) || ((source === 'oidc' || source === 'saml') && name && id);
    if (!form) throw new RangeError(`"${value}" is not a subject: subjects are key:<name>, oidc:<issuer name>:<sub> or saml:<name>:<NameID>, as gatehouse sessions list shows them`);
    if (sources && source === 'oidc' && !sources.oidc.includes(name!)) throw new RangeError(`no OIDC issuer is named "${name}" (configured: ${sources.oidc.join(', ') || 'none'})`);
    if (sources && source === 'saml' && sources.saml !== name) throw new RangeError(`no SAML identity provider is named "${name}" (configured: ${sources.saml ?? 'none'})`);
  }
  return value;
}

const empty: Snapshot = { credentials: new Set(), keys: new Set(), subjects: new Map(), users: new Set(), signingKeys: new Set() };

export class RevocationService {
  readonly #db: Kysely<Database>;
  readonly #pollIntervalMs: number;
  readonly #now: () => number;
  readonly #listeners: Array<() => void> = [];
  #snapshot: Snapshot = empty;
  #generation = -1;
  #timer: NodeJS.Timeout | undefined;
  #refreshing: Promise<void> | undefined;
  #rereading: Promise<void> | undefined;

  constructor(db: Kysely<Database>, options: { pollIntervalMs?: number; now?: () => number } = {}) {
    this.#db = db;
    this.#pollIntervalMs = options.pollIntervalMs ?? 250;
    this.#now = options.now ?? Date.now;
  }

  /** Loads the current revocations, then polls for changes. */
  async start(): Promise<void> {
    await this.refresh();
    this.#timer = setInterval(() => void this.refresh().catch(() => undefined), this.#pollIntervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Called after each change, e.g. to cut in-flight exchanges. */
  onChange(listener: () => void): void {
    this.#listeners.push(listener);
  }

  async revoke(input: RevokeInput, db?: Kysely<Database>): Promise<RevocationRecord> {
    if (!revocationKinds.includes(input.kind)) throw new RangeError(`kind must be one of ${revocationKinds.join(', ')}`);
    if (input.value.trim() === '' || input.value.length > 512) throw new RangeError('value must be 1-512 characters');
    // A kid no gateway published would be stored and revoke nothing.
    if (input.kind === 'signing-key' && !(await (db ?? this.#db).selectFrom('identity_signing_keys').select('kid').where('kid', '=', input.value).executeTakeFirst())) {
      throw new RangeError(`no gateway signing key has kid "${input.value.slice(0, 200)}"`);
    }
    const row = {
      // `rvk_`: a revocation, not a review (`rv_`), to a responder reading ids.
      id: `rvk_${randomBytes(8).toString('hex')}`,
      kind: input.kind,
      value: input.value,
      created_at: this.#now(),
      expires_at: null,
      reason: input.reason?.slice(0, 500) ?? null,
      revoked_by: input.revokedBy ?? null,
    };
    await inTransaction(db ?? this.#db, async (trx) => {
      await trx.insertInto('identity_revocations').values(row).execute();
      await bumpGeneration(trx);
    });
    // Not yet committed in the caller's transaction: the caller refreshes after.
    if (db === undefined) await this.refresh();
    return toRecord(row);
  }

  /** Lifts a revocation (e.g. re-enables a user); true if there was one. */
  async lift(id: string, db?: Kysely<Database>): Promise<boolean> {
    const deleted = await inTransaction(db ?? this.#db, async (trx) => {
      const result = await trx.deleteFrom('identity_revocations').where('id', '=', id).executeTakeFirst();
      if (result.numDeletedRows > 0n) await bumpGeneration(trx);
      return result.numDeletedRows > 0n;
    });
    if (db === undefined) await this.refresh();
    return deleted;
  }

  async list(): Promise<RevocationRecord[]> {
    const rows = await this.#db.selectFrom('identity_revocations').selectAll().orderBy('created_at', 'desc').execute();
    return rows.map(toRecord);
  }

  /** Why the identity is revoked, or undefined. Memory only: safe on every request. */
  reason(identity: Identity): string | undefined {
    const s = this.#snapshot;
    if (s.users.has(identity.subject)) return `user ${identity.subject} is disabled`;
    const subjectCutoff = s.subjects.get(identity.subject);
    if (subjectCutoff !== undefined && (identity.issuedAt ?? 0) <= subjectCutoff) return `every credential of ${identity.subject} issued before ${new Date(subjectCutoff).toISOString()} is revoked`;
    if (s.credentials.has(identity.credentialId)) return `token ${identity.credentialId} is revoked`;
    if (identity.method === 'api_key' && s.keys.has(identity.credentialId)) return `key ${identity.credentialId} is revoked`;
    if (identity.signingKeyId !== undefined && s.signingKeys.has(identity.signingKeyId)) return `the gateway signing key ${identity.signingKeyId} that signed it is revoked`;
    // A Gatehouse token goes with the credential it was exchanged for (an identity
    // provider's token by its jti, or an API key by its id).
    const from = identity.exchangedFrom;
    if (from !== undefined && (s.credentials.has(from) || s.keys.has(from))) return `the credential it was exchanged for (${from}) is revoked`;
    return undefined;
  }

  /** True when the gateway signing key with this kid is revoked. Memory only. */
  signingKeyRevoked(kid: string): boolean {
    return this.#snapshot.signingKeys.has(kid);
  }

  check(identity: Identity): void {
    const why = this.reason(identity);
    if (why) throw new GatehouseError('credential_revoked', { detail: why });
  }

  /**
   * Re-reads the generation (and the rows when it moved). Calls made while a read runs
   * share one more read after it: the running one may have begun before the change that
   * prompted the call (a NOTIFY arriving during a poll) and would miss it.
   */
  refresh(): Promise<void> {
    if (this.#refreshing) {
      this.#rereading ??= this.#refreshing.catch(() => undefined).then(() => {
        this.#rereading = undefined;
        return this.refresh();
      });
      return this.#rereading;
    }
    this.#refreshing = this.#refresh().finally(() => (this.#refreshing = undefined));
    return this.#refreshing;
  }

  async #refresh(): Promise<void> {
    const state = await this.#db.selectFrom('identity_state').select('value').where('name', '=', 'revocation_generation').executeTakeFirst();
    const generation = Number(state?.value ?? 0);
    if (generation === this.#generation) return;
    const rows = await this.#db.selectFrom('identity_revocations').select(['kind', 'value', 'created_at']).execute();
    const snapshot = { credentials: new Set<string>(), keys: new Set<string>(), subjects: new Map<string, number>(), users: new Set<string>(), signingKeys: new Set<string>() };
    for (const row of rows) {
      if (row.kind === 'token') snapshot.credentials.add(row.value);
      else if (row.kind === 'key') snapshot.keys.add(row.value);
      else if (row.kind === 'user') snapshot.users.add(row.value);
      else if (row.kind === 'signing-key') snapshot.signingKeys.add(row.value);
      else if (row.kind === 'subject') snapshot.subjects.set(row.value, Math.max(row.created_at, snapshot.subjects.get(row.value) ?? 0));
    }
    this.#snapshot = snapshot;
    this.#generation = generation;
    for (const listener of this.#listeners) listener();
  }
}

/** PostgreSQL: the channel a revocation is announced on, so other gateways re-read at once instead of at their next poll. */
export const revocationChannel = 'gatehouse_revocations';

async function bumpGeneration(db: Kysely<Database>): Promise<void> {
  await db.updateTable('identity_state').set({ value: sql<number>`value + 1` }).where('name', '=', 'revocation_generation').execute();
  // Delivered when the transaction commits (never for one rolled back). A gateway that
  // misses it (its LISTEN connection was down) still finds the change by polling.
  if (db.getExecutor().adapter instanceof PostgresAdapter) await sql`select pg_notify(${revocationChannel}, '')`.execute(db);
}

function toRecord(row: { id: string; kind: string; value: string; created_at: number; reason: string | null; revoked_by: string | null }): RevocationRecord {
  return { id: row.id, kind: row.kind as RevocationKind, value: row.value, createdAt: row.created_at, reason: row.reason, revokedBy: row.revoked_by };
}
