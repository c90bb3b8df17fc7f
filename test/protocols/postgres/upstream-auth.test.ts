// The gateway's login to the database, against a private PostgreSQL cluster that asks
// for passwords: SCRAM-SHA-256, md5 and cleartext, and TLS toward the database with
// `require` and `verify-full`.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { GatehouseError } from '../../../src/errors/index.js';
import { connectUpstream, type UpstreamTarget } from '../../../src/protocols/postgres/forward.js';
import { startPrivatePostgres, type PrivatePostgres } from '../../helpers/private-postgres.js';
import { makeTestPki } from '../../helpers/tls.js';

const pki = makeTestPki();
const otherPki = makeTestPki();
const cluster = await startPrivatePostgres({ cert: pki.cert, key: pki.key });
const skip = 'skip' in cluster ? cluster.skip : undefined;

describe('upstream login against a password-protected PostgreSQL', { skip }, () => {
  const pg = cluster as PrivatePostgres;
  after(() => pg.stop());
  const target = (user: string, password: string, tls: UpstreamTarget['tls'] = { mode: 'disable' }): UpstreamTarget => ({
    host: '127.0.0.1',
    port: pg.port,
    database: 'postgres',
    user,
    password,
    tls,
    connectTimeoutMs: 5000,
    maxMessageBytes: 1024 * 1024,
  });

  for (const [user, password, method] of [
    ['scram_user', 'pw-scram', 'SCRAM-SHA-256'],
    ['md5_user', 'pw-md5', 'md5'],
    ['clear_user', 'pw-clear', 'cleartext'],
  ] as const) {
    test(`${method}: logs in with the right password, and is refused with a wrong one`, async () => {
      const session = await connectUpstream(target(user, password), { application_name: 'gatehouse-test' });
      assert.equal(session.status, 'I');
      assert.ok(session.processId > 0);
      assert.ok(session.parameterStatus.length > 5);
      session.close();
      await assert.rejects(connectUpstream(target(user, 'wrong'), {}), (error: GatehouseError) => {
        assert.equal(error.code, 'upstream_unreachable');
        assert.match(error.detail!, /28P01 password authentication failed for user "/);
        return true;
      });
    });
  }

  test('TLS toward the database: require, and verify-full against the right CA', async () => {
    const required = await connectUpstream(target('scram_user', 'pw-scram', { mode: 'require' }), {});
    assert.equal('encrypted' in required.socket && required.socket.encrypted, true);
    required.close();
    const verified = await connectUpstream(target('scram_user', 'pw-scram', { mode: 'verify-full', ca: pki.ca }), {});
    verified.close();
  });

  test('security: verify-full refuses a database whose certificate another CA signed', async () => {
    await assert.rejects(connectUpstream(target('scram_user', 'pw-scram', { mode: 'verify-full', ca: otherPki.ca }), {}), (error: GatehouseError) => {
      assert.equal(error.code, 'upstream_unreachable');
      assert.match(error.detail!, /self-signed certificate in certificate chain|unable to (get|verify)/);
      return true;
    });
  });
});
