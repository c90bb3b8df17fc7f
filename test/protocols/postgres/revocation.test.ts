// Revocation reaches open PostgreSQL sessions: a session whose identity is revoked is
// ended at once, like an HTTP stream in flight, instead of living until it disconnects.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import pg from 'pg';
import { InFlightRegistry } from '../../../src/identity/index.js';
import { cstring, message } from '../../../src/protocols/postgres/codec.js';
import { rawLogin } from '../../helpers/pg-raw.js';
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

    // A statement running at the database when the revocation lands is stopped there.
    const sleeping = client.query('select pg_sleep(30)').then(() => undefined, (error: unknown) => error);
    await waitForSleep(proxy.directUrl, true);
    revokedSubjects.add('key:agent');
    assert.equal(inFlight.cutRevoked(), 1);
    await Promise.race([ended, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the session was not ended')), 5_000))]);
    // The client is told why (a FATAL 28P01), and the session is recorded as revoked.
    const error = (await sleeping) as { code?: string; message?: string } | undefined;
    assert.equal(error?.code, '28P01');
    assert.match(String(error?.message), /credential was revoked/);
    await assert.rejects(client.query('select 1'));
    assert.equal(inFlight.size, 0);
    await waitForSleep(proxy.directUrl, false);
    await waitFor(() => proxy.observed.some((o) => o.exchange.operation === 'sql.session' && o.outcome.errorCode === 'credential_revoked'));
    const session = proxy.observed.find((o) => o.exchange.operation === 'sql.session')!;
    assert.equal(session.outcome.errorDetail, 'subject revoked');
    assert.ok(proxy.observed.some((o) => o.exchange.facts.text === 'select pg_sleep(30)' && o.outcome.errorCode === 'credential_revoked'), 'the statement cut short is recorded as revoked');

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

  test('a credential that expires while its session is open ends the session (FATAL 28P01 credential_expired), a running statement stopped', async () => {
    const { token } = await proxy.apiKeys.create({ name: 'short-lived', kind: 'service', groups: ['dba'], expiresAt: Date.now() + 1500 });
    const client = new pg.Client({ ...proxy.clientConfig(), user: 'short-lived', password: token });
    const ended = new Promise<void>((resolve) => {
      client.on('error', () => resolve());
      client.on('end', () => resolve());
    });
    await client.connect();
    assert.deepEqual((await client.query('select 1 as one')).rows, [{ one: 1 }]);
    const sleeping = client.query("select pg_sleep(30), 'short-lived'").then(() => undefined, (error: unknown) => error);
    await Promise.race([ended, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the session outlived its credential')), 6_000))]);
    const error = (await sleeping) as { code?: string; message?: string } | undefined;
    assert.equal(error?.code, '28P01');
    assert.equal(error?.message, 'The credential expired while this session was open, so it was ended.');
    await waitFor(() => proxy.observed.some((o) => o.exchange.operation === 'sql.session' && o.exchange.identity?.subject === 'key:short-lived' && o.outcome.errorCode === 'credential_expired'));
    assert.ok(proxy.observed.some((o) => o.exchange.facts.text === "select pg_sleep(30), 'short-lived'" && o.outcome.errorCode === 'credential_expired'), 'the statement cut short is recorded as expired');
    // The statement was stopped at the database, not left to sleep.
    const direct = new pg.Client({ connectionString: proxy.directUrl });
    await direct.connect();
    try {
      await waitForQuiet(direct);
    } finally {
      await direct.end();
    }
  });
});

async function waitForQuiet(direct: pg.Client): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const { rows } = await direct.query("select count(*)::int as n from pg_stat_activity where query like '%short-lived''' and state = 'active' and pid <> pg_backend_pid()");
    if (rows[0].n === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail('the statement still runs at the database');
}

async function waitFor(check: () => boolean, ms = 5_000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Waits until a pg_sleep is (or is no longer) running at the database. */
async function waitForSleep(url: string, running: boolean): Promise<void> {
  const direct = new pg.Client({ connectionString: url });
  await direct.connect();
  try {
    const until = Date.now() + 5_000;
    for (;;) {
      const { rows } = await direct.query("select count(*)::int as n from pg_stat_activity where query = 'select pg_sleep(30)' and state = 'active'");
      if ((rows[0] as { n: number }).n > 0 === running) return;
      if (Date.now() > until) throw new Error(`pg_sleep ${running ? 'never started' : 'still running'}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    await direct.end();
  }
}

// psql reads the server only when it sends: a session cut by a revocation gets its
// FATAL, but the next statement typed is already on its way. It must not be read, let
// alone recorded as an allowed statement of the revoked key that never ends.
const recordedAfterCut: string[] = [];
const cutRevoked = new Set<string>();
const cutRegistry = new InFlightRegistry((identity) => (cutRevoked.has(identity.subject) ? 'key revoked' : undefined));
const cutProxyOrSkip = await startTestProxy({
  inFlight: cutRegistry,
  recorder: (base) => ({
    ...base,
    open: (exchange, decision, request) => {
      if (exchange.facts.text !== undefined) recordedAfterCut.push(exchange.facts.text);
      return base.open(exchange, decision, request);
    },
  }),
});

describe('a statement sent after its session was cut by a revocation', { skip: 'skip' in cutProxyOrSkip ? cutProxyOrSkip.skip : undefined }, () => {
  const proxy = cutProxyOrSkip as Exclude<typeof cutProxyOrSkip, { skip: string }>;
  after(() => proxy.close());

  test('is neither handled nor recorded: the session ended with the FATAL', async () => {
    const client = await rawLogin(proxy.port, 'agent', proxy.database, proxy.token);
    try {
      client.write(message('Q', cstring('select 1 as before_revoke')));
      await client.untilReady(1);
      cutRevoked.add('key:agent');
      assert.equal(cutRegistry.cutRevoked(), 1);
      const fatal = await client.until('E');
      assert.match(fatal.at(-1)!.body.toString(), /credential was revoked/);
      // What psql does next: the statement typed after the revocation, on the same socket.
      client.write(message('Q', cstring('select 2 as after_revoke')));
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.deepEqual(recordedAfterCut, ['select 1 as before_revoke']);
    } finally {
      client.close();
      cutRevoked.clear();
    }
  });
});
