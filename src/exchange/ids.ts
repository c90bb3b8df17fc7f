import { randomFillSync } from 'node:crypto';

// Time-ordered ids (48-bit ms timestamp + 80 random bits, Crockford base32) so records
// sort by creation without a second index, and ids are unguessable.
const alphabet = '0123456789abcdefghjkmnpqrstvwxyz';
const codes = Array.from(alphabet, (c) => c.charCodeAt(0));

// Ids are made several times per exchange (once per SQL statement): the prefix and the
// time part are the same for every id of a millisecond, so they are built once per
// millisecond and prefix, and the random part in one string allocation.
let lastNow = -1;
let lastPrefix = '';
let lastHead = '';

export function newId(prefix: string, now = Date.now()): string {
  if (now !== lastNow || prefix !== lastPrefix) {
    let time = '';
    let t = now;
    for (let i = 0; i < 10; i++) {
      time = alphabet[t % 32]! + time;
      t = Math.floor(t / 32);
    }
    lastNow = now;
    lastPrefix = prefix;
    lastHead = `${prefix}_${time}`;
  }
  const b = block;
  const o = nextRandom();
  // 80 bits, most significant first, in 16 groups of 5.
  const b0 = b[o]!, b1 = b[o + 1]!, b2 = b[o + 2]!, b3 = b[o + 3]!, b4 = b[o + 4]!;
  const b5 = b[o + 5]!, b6 = b[o + 6]!, b7 = b[o + 7]!, b8 = b[o + 8]!, b9 = b[o + 9]!;
  return (
    lastHead +
    String.fromCharCode(
      codes[b0 >> 3]!, codes[((b0 & 7) << 2) | (b1 >> 6)]!, codes[(b1 >> 1) & 31]!, codes[((b1 & 1) << 4) | (b2 >> 4)]!,
      codes[((b2 & 15) << 1) | (b3 >> 7)]!, codes[(b3 >> 2) & 31]!, codes[((b3 & 3) << 3) | (b4 >> 5)]!, codes[b4 & 31]!,
      codes[b5 >> 3]!, codes[((b5 & 7) << 2) | (b6 >> 6)]!, codes[(b6 >> 1) & 31]!, codes[((b6 & 1) << 4) | (b7 >> 4)]!,
      codes[((b7 & 15) << 1) | (b8 >> 7)]!, codes[(b8 >> 2) & 31]!, codes[((b8 & 3) << 3) | (b9 >> 5)]!, codes[b9 & 31]!,
    )
  );
}

// Random bytes from the CSPRNG in blocks: one system call per 409 ids instead of one
// per id (ids are made several times per exchange). Each id takes fresh bytes.
const block = Buffer.alloc(4096);
let offset = block.length;

/** The offset in `block` of 10 fresh random bytes. */
function nextRandom(): number {
  if (offset + 10 > block.length) {
    randomFillSync(block);
    offset = 0;
  }
  const at = offset;
  offset += 10;
  return at;
}
