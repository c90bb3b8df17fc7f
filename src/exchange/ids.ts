import { randomFillSync } from 'node:crypto';

// Time-ordered ids (48-bit ms timestamp + 80 random bits, Crockford base32) so records
// sort by creation without a second index, and ids are unguessable.
const alphabet = '0123456789abcdefghjkmnpqrstvwxyz';

const alphabetCodes = Buffer.from(alphabet, 'latin1');
/** An id is written here byte by byte, then decoded once: one flat string, not 27 concatenations. */
const chars = Buffer.alloc(256);

export function newId(prefix: string, now = Date.now()): string {
  if (prefix.length > 128) throw new RangeError('id prefix too long');
  const start = chars.write(prefix, 0, 'latin1');
  chars[start] = 0x5f; // _
  const at = start + 1;
  let time = now;
  for (let i = 9; i >= 0; i--) {
    chars[at + i] = alphabetCodes[time % 32]!;
    time = Math.floor(time / 32);
  }
  const random = nextRandom();
  for (let i = 0; i < 16; i++) {
    const bit = i * 5;
    const byte = bit >> 3;
    const value = ((random[byte]! << 8) | (byte + 1 < 10 ? random[byte + 1]! : 0)) >> (11 - (bit & 7));
    chars[at + 10 + i] = alphabetCodes[value & 31]!;
  }
  return chars.toString('latin1', 0, at + 26);
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
