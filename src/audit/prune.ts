// Retention: deletes events (and the exchange rows they alone vouch for) older than a
// time, cutting only at a signed checkpoint so that verification still passes from that
// checkpoint onwards. The prune itself is an audit event (audit.pruned).
// A prune over a break in the chain would delete the evidence of tampering (an event
// deleted or edited, then pruned away, and verify passes again): it is refused unless
// forced, and a forced prune names the break in its own event.
// A row goes when every event carrying its digest (exchangeEventKinds) goes: a later
// exchange.revealed or exchange.reexecuted names it but cannot vouch for it, so keeping
// the row for that event would leave a row that verification must call unvouched.

import { sql } from 'kysely';
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

export async function pruneBefore(writer: GroupCommitWriter, before: number, actor: string, options: PruneOptions): Promise<PruneResult> {
  let result: PruneResult = { throughSeq: 0, events: 0, exchanges: 0, checkpoints: 0 };
  await writer.write(async (trx, emit) => {
    // The newest checkpoint taken before the cut-off: everything up to it may go.
    const cut = await trx.selectFrom('audit_checkpoints').select(['seq']).where('at', '<', before).orderBy('seq', 'desc').limit(1).executeTakeFirst();
    if (!cut) return;
    const throughSeq = Number(cut.seq);
    // A problem without a seq, or at or before the cut, is evidence the prune would delete.
    const broken = options.breaks.find((p) => p.seq === undefined || p.seq <= throughSeq);
    if (broken && !options.force) throw new PruneOverBreakError(throughSeq, broken.message);
    const exchanges = await trx
      .deleteFrom('exchanges')
      .where('id', 'in', (eb) => eb.selectFrom('audit_events').select(sql<string>`target`.as('target')).where('seq', '<=', throughSeq).where('kind', 'like', 'exchange.%'))
      .where('id', 'not in', (eb) => eb.selectFrom('audit_events').select(sql<string>`target`.as('target')).where('seq', '>', throughSeq).where('kind', 'in', exchangeEventKinds).where('target', 'is not', null))
      .executeTakeFirst();
    const events = await trx.deleteFrom('audit_events').where('seq', '<=', throughSeq).executeTakeFirst();
    const checkpoints = await trx.deleteFrom('audit_checkpoints').where('seq', '<', throughSeq).executeTakeFirst();
    result = { throughSeq, events: Number(events.numDeletedRows), exchanges: Number(exchanges.numDeletedRows), checkpoints: Number(checkpoints.numDeletedRows) };
    if (result.events > 0) emit({ kind: 'audit.pruned', actor, target: null, details: { before, ...result, ...(broken ? { overBreak: broken.message } : {}) } });
  });
  return result;
}
