import { randomFillSync } from 'node:crypto';

// Time-ordered ids (48-bit ms timestamp + 80 random bits, Crockford base32) so records
// sort by creation without a second index, and ids are unguessable.
const alphabet = '0123456789abcdefghjkmnpqrstvwxyz';

export function newId(prefix: string, now = Date.now()): string {
  let out = '';
  let time = now;
  for (let i = 0; i < 10; i++) {
    out = alphabet[time % 32]! + out;
    time = Math.floor(time / 32);
  }
  const random = nextRandom();
  for (let i = 0; i < 16; i++) {
    const bit = i * 5;
    const byte = bit >> 3;
    const value = ((random[byte]! << 8) | (byte + 1 < 10 ? random[byte + 1]! : 0)) >> (11 - (bit & 7));
    out += alphabet[value & 31];
  }
  return `${prefix}_${out}`;
}

// Random bytes from the CSPRNG in blocks: one system call per 409 ids instead of one
// per id (ids are made several times per exchange). Each id takes fresh bytes.
const block = Buffer.alloc(4096);
let offset = block.length;

function nextRandom(): Buffer {
  if (offset + 10 > block.length) {
    randomFillSync(block);
    offset = 0;
  }
  const random = block.subarray(offset, offset + 10);
  offset += 10;
  return random;
}
