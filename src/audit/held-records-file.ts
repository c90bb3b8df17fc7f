// The lines of a held-records spill file (held-records.ts), authenticated. The file lies
// in the data directory until the next start writes its records into the store as
// genuine, chained events, so whoever could write that directory could otherwise edit a
// record (a refusal made a success, its state digest recomputed) or add one, and the
// chain would vouch for it. Each line carries an HMAC-SHA256 under a key derived from the
// audit signing key for this use only (signing-key.ts: deriveKey), over the file's id,
// the line's number and the record:
//
//   h1 <file id> <n> <mac> <record as JSON>
//
// The file id is random per writer, and lines are numbered 1, 2, 3 … as written (a
// rewrite numbers them again): a line removed from the middle or the start shows as a
// gap. Removing the end of a file, or the whole file, does not show here: the store is
// away while the file is written, so only the log says how many lines it had
// (held-records.ts: onDisk, found; docs/security.md).

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { RecordWrite } from './group-commit.js';

const version = 'h1';
const linePattern = /^h1 ([A-Za-z0-9_-]{16}) ([1-9]\d{0,15}) ([A-Za-z0-9_-]{43}) (\{.*\})$/s;

/** The purpose the spill file's key is derived for (never the checkpoints' signing itself). */
export const heldRecordsKeyPurpose = 'held-records';

export function newSpillFileId(): string {
  return randomBytes(12).toString('base64url');
}

function macOf(key: Buffer, fileId: string, n: number, json: string): Buffer {
  return createHmac('sha256', key).update(`${version} ${fileId} ${n} `).update(json).digest();
}

/** Line `n` of the file `fileId`, with its newline. */
export function sealLine(key: Buffer, fileId: string, n: number, write: RecordWrite): string {
  const json = JSON.stringify(write);
  return `${version} ${fileId} ${n} ${macOf(key, fileId, n, json).toString('base64url')} ${json}\n`;
}

export type OpenedLine =
  | { readonly ok: true; readonly fileId: string; readonly n: number; readonly write: RecordWrite }
  | { readonly ok: false; readonly reason: string };

/** A line (without its newline) checked against `key`: the record, or why it is not one. */
export function openLine(key: Buffer, line: string): OpenedLine {
  const match = linePattern.exec(line);
  if (!match) return { ok: false, reason: 'not an authenticated line (added, edited, or written by a gateway before held records were authenticated)' };
  const [, fileId, number, mac, json] = match as unknown as [string, string, string, string, string];
  const n = Number(number);
  const expected = macOf(key, fileId, n, json);
  const given = Buffer.from(mac, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'its authentication does not match (edited, or written under another audit signing key)' };
  let write: unknown;
  try {
    write = JSON.parse(json);
  } catch {
    return { ok: false, reason: 'its record does not parse' };
  }
  if (typeof write !== 'object' || write === null) return { ok: false, reason: 'its record is not an object' };
  return { ok: true, fileId, n, write: write as RecordWrite };
}
