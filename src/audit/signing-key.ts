// The Ed25519 key that signs checkpoints. Either given by reference (config
// `audit.signingKey: file:/path/key.pem` or `${ENV}`, a PKCS#8 PEM), or generated on
// the gateway's first start into `audit.keyFile` (default data/audit-signing-key.pem
// beside the config) with mode 0600. Verifiers need only the public key.

import { createHash, createPrivateKey, hkdfSync, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { canonicalJson } from './canonical-json.js';

export interface CheckpointSigner {
  readonly keyId: string;
  readonly publicKeyPem: string;
  sign(data: string): string;
  /**
   * A 32-byte key for `purpose` only (HKDF-SHA256 over the private key): a MAC made with
   * it can never pass for a checkpoint's signature, and it needs no second secret.
   */
  deriveKey(purpose: string): Buffer;
}

export class SigningKeyError extends Error {}

/** Short id of a public key: first 16 hex of SHA-256 over its DER (SPKI) form. */
export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16);
}

export function signerFromPem(pem: string): CheckpointSigner {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch (error) {
    throw new SigningKeyError(`audit signing key is not a PEM private key: ${(error as Error).message}`);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new SigningKeyError(`audit signing key must be Ed25519, not ${privateKey.asymmetricKeyType}`);
  const publicKey = createPublicKey(privateKey);
  return {
    keyId: keyIdOf(publicKey),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    sign: (data) => sign(null, Buffer.from(data), privateKey).toString('base64'),
    deriveKey: (purpose) => Buffer.from(hkdfSync('sha256', privateKey.export({ type: 'pkcs8', format: 'der' }), Buffer.alloc(0), `gatehouse audit key: ${purpose}`, 32)),
  };
}

/**
 * Reads the key file, creating it (0600, exclusively) when it does not exist yet. A key
 * file readable by group or others is refused: whoever can read it can sign checkpoints.
 */
export function loadOrCreateKeyFile(path: string, options: { create: boolean }): CheckpointSigner | undefined {
  try {
    const mode = statSync(path).mode;
    if ((mode & 0o077) !== 0) throw new SigningKeyError(`audit signing key ${path} is readable by group or others (mode ${(mode & 0o777).toString(8)}): whoever can read it can sign checkpoints; chmod 600 it`);
    return signerFromPem(readFileSync(path, 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (!options.create) return undefined;
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const { privateKey } = generateKeyPairSync('ed25519');
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  try {
    writeFileSync(path, pem, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    // Another process created it first: use theirs.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return signerFromPem(readFileSync(path, 'utf8'));
  }
  return signerFromPem(pem);
}

/**
 * The public key in the PEM file `path`, as SPKI PEM, if it is an Ed25519 one (a public
 * key, or the private key it belongs to); otherwise an Error saying what it is instead.
 */
export function readEd25519PublicKey(path: string): string {
  const key = createPublicKey(readFileSync(path, 'utf8'));
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`not an Ed25519 key (${key.asymmetricKeyType})`);
  return key.export({ type: 'spki', format: 'pem' }).toString();
}

/** What a checkpoint signs: the chain head it vouches for. */
export function checkpointPayload(checkpoint: { seq: number; hash: string; at: number }): string {
  return canonicalJson({ seq: checkpoint.seq, hash: checkpoint.hash, at: checkpoint.at });
}

export function verifySignature(publicKeyPem: string, data: string, signatureB64: string): boolean {
  try {
    return verify(null, Buffer.from(data), createPublicKey(publicKeyPem), Buffer.from(signatureB64, 'base64'));
  } catch {
    return false;
  }
}
