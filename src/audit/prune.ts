// Retention: deletes events (and the exchange rows they alone vouch for) older than a
// time, cutting only at a signed checkpoint so that verification still passes from that
// checkpoint onwards. The prune itself is an audit event (audit.pruned).
// A row goes when every event carrying its digest (exchangeEventKinds) goes: a later
// exchange.revealed or exchange.reexecuted names it but cannot vouch for it, so keeping
// the row for that event would leave a row that verification must call unvouched.

import { sql } from 'kysely';
import type { GroupCommitWriter } from './group-commit.js';
import { exchangeEventKinds } from './record-columns.js';

export interface PruneResult {
  /** Events up to and including this seq were deleted (0: nothing to prune). */
  readonly throughSeq: number;
  readonly events: number;
  readonly exchanges: number;
  readonly checkpoints: number;
}

export async function pruneBefore(writer: GroupCommitWriter, before: number, actor: string): Promise<PruneResult> {
  let result: PruneResult = { throughSeq: 0, events: 0, exchanges: 0, checkpoints: 0 };
  await writer.write(async (trx, emit) => {
    // The newest checkpoint taken before the cut-off: everything up to it may go.
    const cut = await trx.selectFrom('audit_checkpoints').select(['seq']).where('at', '<', before).orderBy('seq', 'desc').limit(1).executeTakeFirst();
    if (!cut) return;
    const throughSeq = Number(cut.seq);
    const exchanges = await trx
      .deleteFrom('exchanges')
      .where('id', 'in', (eb) => eb.selectFrom('audit_events').select(sql<string>`target`.as('target')).where('seq', '<=', throughSeq).where('kind', 'like', 'exchange.%'))
      .where('id', 'not in', (eb) => eb.selectFrom('audit_events').select(sql<string>`target`.as('target')).where('seq', '>', throughSeq).where('kind', 'in', exchangeEventKinds).where('target', 'is not', null))
      .executeTakeFirst();
    const events = await trx.deleteFrom('audit_events').where('seq', '<=', throughSeq).executeTakeFirst();
    const checkpoints = await trx.deleteFrom('audit_checkpoints').where('seq', '<', throughSeq).executeTakeFirst();
    result = { throughSeq, events: Number(events.numDeletedRows), exchanges: Number(exchanges.numDeletedRows), checkpoints: Number(checkpoints.numDeletedRows) };
    if (result.events > 0) emit({ kind: 'audit.pruned', actor, target: null, details: { before, ...result } });
  });
  return result;
}
