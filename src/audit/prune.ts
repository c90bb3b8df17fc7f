// Retention: deletes events (and the exchange rows they alone vouch for) older than a
// time, cutting only at a signed checkpoint so that verification still passes from that
// checkpoint onwards. The prune itself is an audit event (audit.pruned).
// A prune over a break in the chain would delete the evidence of tampering (an event
// deleted or edited, then pruned away, and verify passes again): it is refused unless
// forced, and a forced prune names the break in its own event.
// A row goes when every event carrying its digest (exchangeEventKinds) goes: a later
// exchange.revealed or exchange.reexecuted names it but cannot vouch for it, so keeping
// the row for that event would leave a row that verification must call unvouched.

import { sql, type Transaction } from 'kysely';
import type { Database } from '../store/index.js';
import type { GroupCommitWriter } from './group-commit.js';
import { exchangeEventKinds } from './record-columns.js';

export interface PruneOptions {
  /** Where verification finds the chain broken (verifyChain's problems, with a seq); empty when it verifies. */
  readonly breaks: readonly { readonly seq?: number | undefined; readonly message: string }[];
  /** Prune even when a break lies in the range it would delete (recorded in audit.pruned). */
  readonly force?: boolean | undefined;
}

/** The chain is broken inside the range a prune would delete. */
export class PruneOverBreakError extends Error {
  constructor(
    readonly throughSeq: number,
    readonly problem: string,
  ) {
    super(`the chain is broken in the events a prune through seq ${throughSeq} would delete: ${problem}`);
    this.name = 'PruneOverBreakError';
  }
}

export interface PruneResult {
  /** Events up to and including this seq were deleted (0: nothing to prune). */
  readonly throughSeq: number;
  readonly events: number;
  readonly exchanges: number;
  readonly checkpoints: number;
}

/**
 * Deletes in batches, one transaction per span between two checkpoints (at most
 * `audit.checkpoint.every` events and the rows they alone vouch for), oldest first: each
 * transaction holds the store's write lock (SQLite) or the rows it deletes for one span
 * only, so recording beside it waits one batch at most, not the whole prune. After each
 * batch the chain verifies from the checkpoint it ended at, so a prune that is stopped
 * half-way leaves a verifiable store; running it again deletes the rest.
 * The `audit.pruned` event is chained with the first batch, before anything is deleted,
 * so no deletion goes unrecorded; its counts are those of the whole range.
 */
export async function pruneBefore(writer: GroupCommitWriter, before: number, actor: string, options: PruneOptions): Promise<PruneResult> {
  let result: PruneResult = { throughSeq: 0, events: 0, exchanges: 0, checkpoints: 0 };
  let spans: number[] = [];
  let pruned: { before: number; broken: string | undefined } | undefined;
  await writer.write(async (trx) => {
    // The newest checkpoint taken before the cut-off: everything up to it may go.
    const cut = await trx.selectFrom('audit_checkpoints').select(['seq']).where('at', '<', before).orderBy('seq', 'desc').limit(1).executeTakeFirst();
    if (!cut) return;
    const throughSeq = Number(cut.seq);
    // A problem without a seq, or at or before the cut, is evidence the prune would delete.
    const broken = options.breaks.find((p) => p.seq === undefined || p.seq <= throughSeq);
    if (broken && !options.force) throw new PruneOverBreakError(throughSeq, broken.message);
    spans = (await trx.selectFrom('audit_checkpoints').select(['seq']).where('seq', '<=', throughSeq).orderBy('seq', 'asc').execute()).map((c) => Number(c.seq));
    const [events, checkpoints] = await Promise.all([
      trx.selectFrom('audit_events').select((eb) => eb.fn.countAll<number>().as('n')).where('seq', '<=', throughSeq).executeTakeFirstOrThrow(),
      trx.selectFrom('audit_checkpoints').select((eb) => eb.fn.countAll<number>().as('n')).where('seq', '<', throughSeq).executeTakeFirstOrThrow(),
    ]);
    result = { throughSeq, events: Number(events.n), exchanges: 0, checkpoints: Number(checkpoints.n) };
    if (result.events === 0) spans = [];
    else pruned = { before, broken: broken?.message };
  });
  let exchanges = 0;
  for (const [i, seq] of spans.entries()) {
    await writer.write(async (trx, emit) => {
      if (i === 0) emit({ kind: 'audit.pruned', actor, target: null, details: { before: pruned!.before, throughSeq: result.throughSeq, events: result.events, checkpoints: result.checkpoints, ...(pruned!.broken ? { overBreak: pruned!.broken } : {}) } });
      exchanges += await pruneThrough(trx, seq);
    });
  }
  return { ...result, exchanges };
}

/** Deletes the events through `seq` (a checkpoint), the rows they alone vouch for, and the checkpoints before it. */
async function pruneThrough(trx: Transaction<Database>, seq: number): Promise<number> {
  const exchanges = await trx
    .deleteFrom('exchanges')
    .where('id', 'in', (eb) => eb.selectFrom('audit_events').select(sql<string>`target`.as('target')).where('seq', '<=', seq).where('kind', 'like', 'exchange.%'))
    // A later state of the row keeps it (audit_events_target: one index probe per row).
    .where(({ not, exists, selectFrom, ref }) => not(exists(selectFrom('audit_events as later').select(sql`1`.as('one')).whereRef('later.target', '=', ref('exchanges.id')).where('later.seq', '>', seq).where('later.kind', 'in', exchangeEventKinds))))
    .executeTakeFirst();
  await trx.deleteFrom('audit_events').where('seq', '<=', seq).executeTakeFirst();
  await trx.deleteFrom('audit_checkpoints').where('seq', '<', seq).executeTakeFirst();
  return Number(exchanges.numDeletedRows);
}
