// API key format: `ghk_<id>_<secret>`. The id finds the record; only a SHA-256 of the
// 256-bit random secret is stored (a slow hash adds nothing for a secret this long),
// and it is compared in constant time.

import { hash, randomBytes, timingSafeEqual } from 'node:crypto';

const keyPattern = /^ghk_[0-9a-z]{16}_[A-Za-z0-9_-]{43}$/;
const keyLength = 64;

export interface ParsedApiKey {
  readonly id: string;
  readonly secret: string;
}

export function parseApiKey(token: string): ParsedApiKey | undefined {
  if (token.length !== keyLength || !keyPattern.test(token)) return undefined;
  return { id: token.slice(4, 20), secret: token.slice(21) };
}

export function hashSecret(secret: string): string {
  return hash('sha256', secret, 'hex');
}

export function secretMatches(secret: string, storedHash: string): boolean {
  return secretMatchesDigest(secret, Buffer.from(storedHash, 'hex'));
}

/** secretMatches against the stored hash already decoded (a cache keeps it so). */
export function secretMatchesDigest(secret: string, stored: Buffer): boolean {
  const presented = hash('sha256', secret, 'buffer');
  return presented.length === stored.length && timingSafeEqual(presented, stored);
}

export function generateApiKey(): { id: string; secret: string; token: string } {
  const id = randomBytes(10).toString('hex').slice(0, 16);
  const secret = randomBytes(32).toString('base64url');
  return { id, secret, token: `ghk_${id}_${secret}` };
}
