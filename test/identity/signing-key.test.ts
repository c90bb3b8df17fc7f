// The gateway's token-signing key: generated once with mode 0600 and reused; a key file
// readable by others, or a key that is not Ed25519, stops the gateway (fail closed).

import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadSigningKey, SigningKeyError } from '../../src/identity/gateway-tokens/signing-key.js';

describe('gateway signing key', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-key-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('generated on first use with mode 0600, then reused', async () => {
    const keyFile = join(dir, 'data', 'gateway-signing-key.pem');
    const first = await loadSigningKey({ keyFile });
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    assert.match(readFileSync(keyFile, 'utf8'), /^-----BEGIN PRIVATE KEY-----/);
    const second = await loadSigningKey({ keyFile });
    assert.equal(second.kid, first.kid);
    assert.equal(first.publicJwk.d, undefined, 'the published JWK has no private part');
    assert.deepEqual([first.publicJwk.kty, first.publicJwk.crv, first.publicJwk.alg], ['OKP', 'Ed25519', 'EdDSA']);
  });

  test('a key file readable by group or others is refused', async () => {
    const keyFile = join(dir, 'loose.pem');
    writeFileSync(keyFile, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }));
    chmodSync(keyFile, 0o644);
    await assert.rejects(loadSigningKey({ keyFile }), (e: unknown) => e instanceof SigningKeyError && /readable by group or others \(mode 644\); chmod 600 it/.test(e.message));
  });

  test('a signingKey that is not Ed25519 is refused', async () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    await assert.rejects(loadSigningKey({ signingKey: rsa, keyFile: join(dir, 'unused.pem') }), /must be Ed25519, not rsa/);
    await assert.rejects(loadSigningKey({ signingKey: 'not a key', keyFile: join(dir, 'unused.pem') }), /not a PEM private key/);
  });
});
