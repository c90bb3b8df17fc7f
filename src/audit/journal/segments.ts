// Where the record journal lives and what its files are called. The journal of a
// SQLite store `…/gatehouse.db` is the folder `…/gatehouse.db.records/`; each writer
// (one gateway process) appends to segments of its own, named
// `<start ms, 15 digits>-<pid>-<n, 6 digits>.jsonl`, so a writer's names sort in the
// order it began them (its lines must be applied in order) and tell which process wrote them.

import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { UnreadAnswerFormat } from '../../exchange/index.js';

/** A record operation as appended to a segment, one JSON text per line. */
export type JournalOp =
  | { readonly op: 'open'; readonly row: Readonly<Record<string, unknown>> }
  | { readonly op: 'refuse'; readonly row: Readonly<Record<string, unknown>> }
  | { readonly op: 'progress'; readonly id: string; readonly columns: Readonly<Record<string, unknown>> }
  /** `answer`: response_text and usage are to be read from columns.response_body in this format (record-columns.ts). */
  | { readonly op: 'finish'; readonly id: string; readonly columns: Readonly<Record<string, unknown>>; readonly answer?: UnreadAnswerFormat }
  /** The writer will append no more to this segment (it rotated or stopped). */
  | { readonly op: 'end' };

export const endLine = `${JSON.stringify({ op: 'end' } satisfies JournalOp)}\n`;

export function journalDirOf(sqlitePath: string): string {
  return `${sqlitePath}.records`;
}

/** The start of the names of one writer's segments: its start time and pid. */
export function segmentPrefix(startedAt: number, pid: number): string {
  return `${String(startedAt).padStart(15, '0')}-${pid}-`;
}

export function segmentName(startedAt: number, pid: number, n: number): string {
  return `${segmentPrefix(startedAt, pid)}${String(n).padStart(6, '0')}.jsonl`;
}

const segmentPattern = /^(\d{15})-(\d+)-(\d{6,})\.jsonl$/;

export function segmentPid(name: string): number | undefined {
  const match = segmentPattern.exec(name);
  return match ? Number(match[2]) : undefined;
}

/**
 * The name of the segment its writer began before `name` (undefined for its first): a
 * writer numbers its segments 1, 2, 3 …, so a later one shows that this one existed.
 */
export function previousSegmentName(name: string): string | undefined {
  const match = segmentPattern.exec(name);
  if (!match) return undefined;
  const n = Number(match[3]);
  return n > 1 ? `${match[1]}-${match[2]}-${String(n - 1).padStart(6, '0')}.jsonl` : undefined;
}

/** The segments in `dir`, oldest first (empty when the folder does not exist). */
export function listSegments(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((name) => segmentPattern.test(name)).sort();
}

export function segmentPath(dir: string, name: string): string {
  return join(dir, name);
}

/** Whether a process with this pid exists (a segment of a dead writer can be finished off). */
export function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
