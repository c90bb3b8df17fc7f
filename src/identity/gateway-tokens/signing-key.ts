// The gateway's Ed25519 token-signing key: from `identity.gatewayTokens.signingKey`
// (a secret reference to a PKCS#8 PEM), else from `keyFile`, generated there on first
// start with mode 0600. A key file readable by group or others is refused (fail
// closed). The public half is published in the store (identity_signing_keys), so every
// gateway sharing the store verifies tokens any of them issued.

import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { calculateJwkThumbprint, exportJWK, type JWK } from 'jose';

export interface SigningKey {
  readonly kid: string;
  readonly privateKey: KeyObject;
  readonly publicJwk: JWK;
}

export class SigningKeyError extends Error {}

function readKeyFile(path: string): string | undefined {
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  if ((mode & 0o077) !== 0) throw new SigningKeyError(`${path} is readable by group or others (mode ${(mode & 0o777).toString(8)}); chmod 600 it`);
  return readFileSync(path, 'utf8');
}

function createKeyFile(path: string): string {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  try {
    writeFileSync(path, pem, { mode: 0o600, flag: 'wx' });
    return pem;
  } catch (error) {
    // Another process sharing the data dir made it first: use theirs.
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return readKeyFile(path)!;
    throw error;
  }
}

export async function loadSigningKey(options: { signingKey?: string | undefined; keyFile: string }): Promise<SigningKey> {
  const pem = options.signingKey ?? readKeyFile(options.keyFile) ?? createKeyFile(options.keyFile);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch (error) {
    throw new SigningKeyError(`the gateway token signing key is not a PEM private key: ${(error as Error).message}`);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new SigningKeyError(`the gateway token signing key must be Ed25519, not ${privateKey.asymmetricKeyType}`);
  const jwk = await exportJWK(createPublicKey(privateKey));
  const kid = await calculateJwkThumbprint(jwk);
  return { kid, privateKey, publicJwk: { ...jwk, kid, alg: 'EdDSA', use: 'sig' } };
}
