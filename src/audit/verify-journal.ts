// `audit verify`: the record journal's segments (SQLite stores). A segment's lines are
// not in the chain until they are applied, and its bookkeeping row (record_journal) is
// not hashed, so deleting a writer's last segment together with its row left no trace:
// nothing after it showed it had existed. The chain now says when each segment began
// (recording.journal_begun, chained with the row that registers it) and when it was
// applied in full (recording.journal_applied); a segment deleted before that is chained
// as recording.journal_missing. So every segment the chain says was begun must have one
// of those two after it, or a row that is not done yet (a live gateway's segment, or a
// stopped one's that the next applier takes over): otherwise it was deleted with its row,
// or its row was marked done by hand. Chains of earlier builds have no journal_begun:
// nothing is asked of their segments.
//
// While its applier is behind, a segment's recording.journal_written says how far its
// writer had written (the end of its complete lines): its journal_applied must reach at
// least that, or the unapplied end was cut off after its writer died (journal-applier.ts).

import type { Kysely } from 'kysely';
import type { Database } from '../store/index.js';
import type { AuditEvent } from './audit-event.js';
import type { ChainProblem } from './verify-chain.js';

const begunKind = 'recording.journal_begun';
const writtenKind = 'recording.journal_written';
const appliedKind = 'recording.journal_applied';
const endKinds: ReadonlySet<string> = new Set(['recording.journal_applied', 'recording.journal_missing']);

export interface JournalSegmentsCheck {
  /** Each event as the walk reads it, in seq order. */
  see(event: AuditEvent): void;
  /** The segments begun and not accounted for; `walkedTo`: the last seq the walk read. */
  finish(walkedTo: number): Promise<ChainProblem[]>;
}

export function journalSegmentsCheck(db: Kysely<Database>): JournalSegmentsCheck {
  /** Segments begun and not yet seen applied or missing: few (the live ones), as the walk goes. */
  const open = new Map<string, { seq: number; eventId: string }>();
  /** The furthest recording.journal_written per segment not yet applied or missing. */
  const written = new Map<string, { seq: number; bytes: number }>();
  const cut: ChainProblem[] = [];
  return {
    see(event) {
      if (event.kind !== begunKind && event.kind !== writtenKind && !endKinds.has(event.kind)) return;
      const segment = event.details.segment;
      if (typeof segment !== 'string') return;
      if (event.kind === begunKind) open.set(segment, { seq: event.seq, eventId: event.id });
      else if (event.kind === writtenKind) {
        const bytes = Number(event.details.bytes);
        if (Number.isSafeInteger(bytes) && bytes > (written.get(segment)?.bytes ?? -1)) written.set(segment, { seq: event.seq, bytes });
      } else {
        const said = written.get(segment);
        const applied = Number(event.details.bytes);
        if (event.kind === appliedKind && said !== undefined && applied < said.bytes) {
          cut.push({
            seq: event.seq,
            eventId: event.id,
            message: `record journal segment ${segment} was applied through byte ${applied}, but its writer had written through byte ${said.bytes} (event seq ${said.seq}): the end of the segment not yet applied was cut off, and its records are lost`,
          });
        }
        open.delete(segment);
        written.delete(segment);
      }
    },
    async finish(walkedTo) {
      const problems: ChainProblem[] = [...cut];
      for (const [segment, begun] of open) {
        // The row first, then the chain past the walk: a segment applied meanwhile has its
        // row done and its journal_applied (one transaction) committed before this reads them.
        const row = await db.selectFrom('record_journal').select('done').where('segment', '=', segment).executeTakeFirst();
        if (row && !Number(row.done)) continue;
        if (await endedAfter(db, segment, walkedTo)) continue;
        problems.push({
          seq: begun.seq,
          eventId: begun.eventId,
          message: row
            ? `record journal segment ${segment}, begun at event seq ${begun.seq}, is marked applied in record_journal but the chain does not say it was: its row was edited, and records of the segment not applied may have been deleted with it`
            : `record journal segment ${segment}, begun at event seq ${begun.seq}, was neither applied in full nor chained as missing, and its row in record_journal is gone: the segment was deleted with its row (records of it not applied are lost)`,
        });
      }
      return problems;
    },
  };
}

/** Whether journal_applied or journal_missing for `segment` was chained after seq `after`. */
async function endedAfter(db: Kysely<Database>, segment: string, after: number): Promise<boolean> {
  const rows = await db.selectFrom('audit_events').select('details').where('seq', '>', after).where('kind', 'in', [...endKinds]).execute();
  return rows.some((row) => (JSON.parse(row.details) as { segment?: unknown }).segment === segment);
}
