// Raw (unmasked) content, sealed at rest with AES-256-GCM (NIST SP 800-38D): a fresh
// 96-bit IV per value, the exchange id as additional authenticated data so a sealed
// value cannot be moved to another row, and the 128-bit tag checked on open.
// Stored as `v1.<iv b64>.<tag b64>.<ciphertext b64>`.

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

export class RawContentError extends Error {}

export interface RawSealer {
  seal(plaintext: string, exchangeId: string): string;
  open(sealed: string, exchangeId: string): string;
}

/** The key: 32 bytes as 64 hex digits or as base64. */
export function parseRawKey(text: string): Buffer {
  const trimmed = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(trimmed) ? Buffer.from(trimmed, 'hex') : Buffer.from(trimmed, 'base64');
  if (key.length !== 32) throw new RawContentError('audit.raw.key must be 32 bytes (64 hex digits or base64) for AES-256-GCM');
  return key;
}

export function createRawSealer(keyText: string): RawSealer {
  const key = parseRawKey(keyText);
  return {
    seal(plaintext, exchangeId) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(Buffer.from(exchangeId));
      const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return `v1.${iv.toString('base64')}.${cipher.getAuthTag().toString('base64')}.${ciphertext.toString('base64')}`;
    },
    open(sealed, exchangeId) {
      const [version, iv, tag, ciphertext] = sealed.split('.');
      if (version !== 'v1' || iv === undefined || tag === undefined || ciphertext === undefined) throw new RawContentError('sealed content is not in the v1 format');
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64'));
        decipher.setAAD(Buffer.from(exchangeId));
        decipher.setAuthTag(Buffer.from(tag, 'base64'));
        return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64')), decipher.final()]).toString('utf8');
      } catch {
        throw new RawContentError('sealed content does not open with the configured key (wrong key, or altered)');
      }
    },
  };
}
