import { formatDuration } from '../../config/units.js';
import type { IdentityKind } from '../../exchange/index.js';
import { ApiKeyInputError, ApiKeyService, apiKeyReference, keyCreatedEvent, keyLifetime, RevocationService, revokeKeysChained, type ApiKeyInfo } from '../../identity/index.js';
import { CliError } from '../cli-error.js';
import { lifetimeFlag } from '../command-flags.js';
import { oneLine } from '../terminal-text.js';
import { cliActor, withAuditTrail } from '../with-audit.js';

export interface KeysOptions {
  readonly config?: string | undefined;
  readonly name?: string | undefined;
  readonly groups?: string | undefined;
  readonly kind?: string | undefined;
  readonly expires?: string | undefined;
  readonly json?: boolean | undefined;
  readonly overlap?: string | undefined;
  readonly limit?: string | undefined;
}

export async function keysCommand(action: string | undefined, args: readonly string[], options: KeysOptions): Promise<void> {
  await withAuditTrail(options.config, async (store, audit) => {
    const keys = new ApiKeyService(store.db);
    switch (action) {
      case 'create': {
        if (!options.name) throw new CliError('usage: gatehouse keys create --name NAME --groups a,b [--kind service|agent|human] [--expires 30d]');
        const groups = (options.groups ?? '').split(',').map((g) => g.trim()).filter(Boolean);
        if (groups.length === 0) throw new CliError('--groups is required: the groups decide which connections the key may use');
        const expiresAt = expiryOf(options.expires) ?? null;
        try {
          const input = { name: options.name, kind: (options.kind ?? 'service') as IdentityKind, groups, expiresAt };
          // The key and its event commit together: no key exists that the chain does not show.
          const { token, key } = await audit.log.change(async (trx, emit) => {
            const created = await keys.create(input, trx);
            emit(keyCreatedEvent(cliActor(), created.key));
            return created;
          });
          if (options.json) process.stdout.write(`${JSON.stringify({ token, key })}\n`);
          else {
            process.stdout.write(`${token}\n`);
            process.stderr.write(`created key ${key.id} "${key.name}" (${key.kind}; groups ${key.groups.join(', ')}; ${describeExpiry(key)}).\nThe key above is shown once and stored only as a hash: keep it now.\n`);
          }
        } catch (error) {
          if (error instanceof ApiKeyInputError) throw new CliError(error.message, error.conflict ? 1 : 2);
          throw error;
        }
        return;
      }
      case 'list': {
        const limit = options.limit === undefined ? undefined : Number(options.limit);
        if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) throw new CliError('--limit must be a positive integer');
        const list = await keys.list(limit);
        if (options.json) {
          process.stdout.write(`${JSON.stringify(list)}\n`);
          return;
        }
        const rows = list.map((k) => [k.id, k.name, k.kind, k.groups.join(','), status(k), describeExpiry(k), k.lastUsedAt ? new Date(k.lastUsedAt).toISOString() : '-']);
        printTable(['ID', 'NAME', 'KIND', 'GROUPS', 'STATUS', 'EXPIRES', 'LAST USED'], rows);
        return;
      }
      case 'revoke': {
        const target = args[0];
        if (!target) throw new CliError('usage: gatehouse keys revoke ID|NAME');
        // by name: every key of the name (both keys during a rotation)
        // recorded as a revocation too, so gateways cut the key's in-flight exchanges
        const revoked = await revokeKeysChained(audit.log.change, { apiKeys: keys, revocations: new RevocationService(store.db) }, target, cliActor());
        if (revoked.length === 0) throw new CliError(`no live key with id or name "${apiKeyReference(target)}"`, 1);
        for (const { key } of revoked) process.stdout.write(`revoked key ${key.id} "${key.name}"\n`);
        return;
      }
      case 'rotate': {
        const name = args[0];
        if (!name || options.overlap === undefined) throw new CliError('usage: gatehouse keys rotate NAME --overlap 24h [--expires 30d|never]');
        const overlap = lifetimeFlag('overlap', options.overlap, '24h, 30m', '0');
        // Without --expires the new key keeps the old one's lifetime (the service reads it in the rotation's transaction).
        const expiresAt = expiryOf(options.expires);
        try {
          // Two acts, one transaction: a key is created, and the previous one now expires at the overlap's end.
          const { token, key, previous } = await audit.log.change(async (trx, emit) => {
            const rotated = await keys.rotate(name, { overlapMs: overlap, expiresAt }, trx);
            emit(keyCreatedEvent(cliActor(), rotated.key, rotated.previous.id));
            emit({ kind: 'key.rotated', actor: cliActor(), target: `key:${rotated.previous.id}`, details: { name: rotated.previous.name, expiresAt: rotated.previous.expiresAt, replacedBy: rotated.key.id } });
            return rotated;
          });
          if (options.json) process.stdout.write(`${JSON.stringify({ token, key, previous })}\n`);
          else {
            process.stdout.write(`${token}\n`);
            const kept = expiresAt === undefined && key.expiresAt !== null ? `: the previous key's lifetime, ${formatDuration(keyLifetime(key.createdAt, key.expiresAt))}` : '';
            process.stderr.write(`created key ${key.id} "${key.name}" (${describeExpiry(key)}${kept}); the previous key ${previous.id} ${describeExpiry(previous)}.\nThe key above is shown once and stored only as a hash: keep it now.\n`);
          }
        } catch (error) {
          if (error instanceof ApiKeyInputError) throw new CliError(error.message, error.conflict ? 1 : 2);
          throw error;
        }
        return;
      }
      default:
        throw new CliError('usage: gatehouse keys create|list|revoke|rotate');
    }
  });
}

/** --expires: a duration from now, `never` (null), or not given (undefined). */
function expiryOf(expires: string | undefined): number | null | undefined {
  if (expires === undefined) return undefined;
  if (expires === 'never') return null;
  const ms = lifetimeFlag('expires', expires, '30d, 12h, 90m', 'never');
  if (ms === 0) throw new CliError(`--expires "${expires}" is not a duration (e.g. 30d, 12h, 90m, or never)`);
  return Date.now() + ms;
}

function status(k: ApiKeyInfo): string {
  if (k.revokedAt !== null) return 'revoked';
  if (k.expiresAt !== null && k.expiresAt <= Date.now()) return 'expired';
  return 'active';
}

function describeExpiry(k: ApiKeyInfo): string {
  return k.expiresAt === null ? 'never expires' : `expires ${new Date(k.expiresAt).toISOString()}`;
}

export function printTable(header: readonly string[], cells: readonly (readonly string[])[]): void {
  const rows = cells.map((row) => row.map(oneLine));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  process.stdout.write(`${[line(header), ...rows.map(line)].join('\n')}\n`);
}

