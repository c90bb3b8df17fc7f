// `gatehouse revoke token|subject|user|key|signing-key VALUE [--reason TEXT]` and `revoke lift ID`,
// `revoke list`: writes to the store the gateways poll, so every gateway process
// sharing it refuses the credential within a second and cuts its in-flight exchanges.

import { ApiKeyService, apiKeyReference, liftChained, RevocationService, revocationValue, revokeChained, revokeKeysChained, type RevocationKind } from '../../identity/index.js';
import { CliError } from '../cli-error.js';
import { cliActor, withAuditTrail } from '../with-audit.js';
import { printTable } from './keys.js';

export interface RevokeOptions {
  readonly config?: string | undefined;
  readonly reason?: string | undefined;
  readonly json?: boolean | undefined;
}

const usage = 'usage: gatehouse revoke token JTI | subject SUBJECT | user SUBJECT | key ID|NAME | signing-key KID [--reason TEXT]\n       gatehouse revoke list | lift REVOCATION_ID';

export async function revokeCommand(action: string | undefined, args: readonly string[], options: RevokeOptions): Promise<void> {
  // Each revocation and lift is chained, as through the admin API.
  await withAuditTrail(options.config, async (store, audit, config) => {
    const revocations = new RevocationService(store.db);
    const value = args[0];
    const by = cliActor();
    switch (action) {
      case 'token':
      case 'subject':
      case 'user':
      case 'signing-key': {
        if (!value) throw new CliError(usage);
        // a token is named by its credential id as recorded (`jti:…`); a bare jti, or the token itself, is accepted too
        let target: string;
        try {
          target = revocationValue(action, value, { oidc: config.identity.oidc.issuers.map((i) => i.name), saml: config.identity.saml?.name });
        } catch (error) {
          if (error instanceof RangeError) throw new CliError(`cannot revoke ${action}: ${error.message}`);
          throw error;
        }
        if (target.length > 512) throw new CliError(`cannot revoke ${action}: the value must be at most 512 characters`);
        let record;
        try {
          record = await revokeChained(audit.log.change, revocations, { kind: action as RevocationKind, value: target, reason: options.reason, revokedBy: by });
        } catch (error) {
          // a kid no gateway published: exit 1, as for a key it cannot find
          if (error instanceof RangeError) throw new CliError(`cannot revoke ${action}: ${error.message}`, 1);
          throw error;
        }
        print(options, record, `revoked ${action} ${target} (${record.id})`);
        return;
      }
      case 'key': {
        if (!value) throw new CliError(usage);
        // by name this revokes every live key of the name (both keys during a rotation)
        const revoked = (await revokeKeysChained(audit.log.change, { apiKeys: new ApiKeyService(store.db), revocations }, value, by, options.reason)).map((r) => r.key);
        if (revoked.length === 0) throw new CliError(`no live key with id or name "${apiKeyReference(value)}"`, 1);
        print(options, revoked, revoked.map((k) => `revoked key ${k.id} "${k.name}"`).join('\n'));
        return;
      }
      case 'list': {
        const list = await revocations.list();
        if (options.json) return void process.stdout.write(`${JSON.stringify(list)}\n`);
        printTable(['ID', 'KIND', 'VALUE', 'AT', 'BY', 'REASON'], list.map((r) => [r.id, r.kind, r.value, new Date(r.createdAt).toISOString(), r.revokedBy ?? '-', r.reason ?? '-']));
        return;
      }
      case 'lift': {
        if (!value) throw new CliError(usage);
        if (!(await liftChained(audit.log.change, revocations, value, by))) throw new CliError(`no revocation with id "${value}"`, 1);
        process.stdout.write(`lifted ${value}\n`);
        return;
      }
      default:
        throw new CliError(usage);
    }
  });
}

function print(options: RevokeOptions, value: unknown, text: string): void {
  process.stdout.write(options.json ? `${JSON.stringify(value)}\n` : `${text}\n`);
}
