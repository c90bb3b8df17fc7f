// API key format: `ghk_<id>_<secret>`. The id finds the record; only a SHA-256 of the
// 256-bit random secret is stored (a slow hash adds nothing for a secret this long),
// and it is compared in constant time.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const keyPattern = /^ghk_([0-9a-z]{16})_([A-Za-z0-9_-]{43})$/;

export interface ParsedApiKey {
  readonly id: string;
  readonly secret: string;
}

export function parseApiKey(token: string): ParsedApiKey | undefined {
  const match = keyPattern.exec(token);
  return match ? { id: match[1]!, secret: match[2]! } : undefined;
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export function secretMatches(secret: string, storedHash: string): boolean {
  const presented = Buffer.from(hashSecret(secret), 'hex');
  const stored = Buffer.from(storedHash, 'hex');
  return presented.length === stored.length && timingSafeEqual(presented, stored);
}

export function generateApiKey(): { id: string; secret: string; token: string } {
  const id = randomBytes(10).toString('hex').slice(0, 16);
  const secret = randomBytes(32).toString('base64url');
  return { id, secret, token: `ghk_${id}_${secret}` };
}
