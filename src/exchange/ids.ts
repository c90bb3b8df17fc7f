import { randomBytes } from 'node:crypto';

// Time-ordered ids (48-bit ms timestamp + 80 random bits, Crockford base32) so records
// sort by creation without a second index, and ids are unguessable.
const alphabet = '0123456789abcdefghjkmnpqrstvwxyz';

// Random bytes are drawn 4 KiB at a time (409 ids): one randomBytes call per id cost
// more than the rest of a PostgreSQL statement's handling on a busy VM. The pool holds
// CSPRNG output and every byte is used once.
const poolSize = 4096;
let pool = Buffer.alloc(0);
let poolOffset = poolSize;

function random10(): Buffer {
  if (poolOffset + 10 > pool.length) {
    pool = randomBytes(poolSize);
    poolOffset = 0;
  }
  const out = pool.subarray(poolOffset, poolOffset + 10);
  poolOffset += 10;
  return out;
}

export function newId(prefix: string, now = Date.now()): string {
  let out = '';
  let time = now;
  for (let i = 0; i < 10; i++) {
    out = alphabet[time % 32]! + out;
    time = Math.floor(time / 32);
  }
  const random = random10();
  for (let i = 0; i < 16; i++) {
    const bit = i * 5;
    const byte = bit >> 3;
    const value = ((random[byte]! << 8) | (random[byte + 1] ?? 0)) >> (11 - (bit & 7));
    out += alphabet[value & 31];
  }
  return `${prefix}_${out}`;
}
