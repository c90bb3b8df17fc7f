// Revocation reaches open PostgreSQL sessions: a session whose identity is revoked is
// ended at once, like an HTTP stream in flight, instead of living until it disconnects.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import pg from 'pg';
import { InFlightRegistry } from '../../../src/identity/index.js';
import { startTestProxy } from '../../helpers/postgres-proxy.js';

const revokedSubjects = new Set<string>();
const inFlight = new InFlightRegistry((identity) => (revokedSubjects.has(identity.subject) ? 'subject revoked' : undefined));
const proxyOrSkip = await startTestProxy({ inFlight });
const skip = 'skip' in proxyOrSkip ? proxyOrSkip.skip : undefined;

describe('PostgreSQL sessions and revocation', { skip }, () => {
  const proxy = proxyOrSkip as Exclude<typeof proxyOrSkip, { skip: string }>;
  after(() => proxy.close());

  test('revoking the identity ends its open session; a new login is refused by the registry at once', async () => {
    const client = new pg.Client(proxy.clientConfig());
    const ended = new Promise<Error | undefined>((resolve) => {
      client.on('error', (error) => resolve(error));
      client.on('end', () => resolve(undefined));
    });
    await client.connect();
    assert.deepEqual((await client.query('select 1 as one')).rows, [{ one: 1 }]);
    assert.equal(inFlight.size, 1, 'the open session is registered');

    revokedSubjects.add('key:agent');
    assert.equal(inFlight.cutRevoked(), 1);
    await Promise.race([ended, new Promise((_, reject) => setTimeout(() => reject(new Error('the session was not ended')), 5_000))]);
    await assert.rejects(client.query('select 1'));
    assert.equal(inFlight.size, 0);

    // Registering an already-revoked identity cuts it immediately.
    const again = new pg.Client(proxy.clientConfig());
    again.on('error', () => undefined);
    await assert.rejects(async () => {
      await again.connect();
      await again.query('select 1');
    });
    await again.end().catch(() => undefined);
    revokedSubjects.clear();
  });
});
