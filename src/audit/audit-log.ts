// The audit log for administrative acts. Every act that changes who may do what, or
// reveals what was recorded, is one call:
//
//   await audit.event({ kind: 'key.revoked', actor: 'cli:alice', target: 'key:01J…', details: { name: 'ci-bot' } });
//
// The promise resolves once the event is durable and chained (group commit: it shares
// a transaction with exchange records queued in the same tick). Kinds are dotted and in
// the past tense (`<noun>.<verb-ed>`): key.created, key.revoked, gateway.started,
// gateway.stopped, exchange.revealed, exchange.reveal_refused, exchange.reexecuted, policy.changed, token.issued,
// token.revoked, review.voted. `details` must be JSON-safe and must not hold secrets:
// events are exported and sent to sinks.

import type { Transaction } from 'kysely';
import type { Database } from '../store/index.js';
import type { Emit, GroupCommitWriter } from './group-commit.js';
import type { EventInput } from './append-events.js';

/**
 * A change to the store and the events that record it, committed in one transaction or
 * not at all: a key created, revoked or rotated, a revocation made or lifted. Written as
 * two commits, a crash (or a failed event write) between them left a key with no event,
 * or an event for a key that was never made.
 */
export type ChainedChange = <T>(change: (trx: Transaction<Database>, emit: Emit) => Promise<T>) => Promise<T>;

export class AuditLog {
  readonly #writer: GroupCommitWriter;

  constructor(writer: GroupCommitWriter) {
    this.#writer = writer;
  }

  event(input: EventInput): Promise<void> {
    return this.#writer.record({ event: input });
  }

  /**
   * Runs `change` and chains what it emits in the same transaction (group commit). The
   * change may run more than once (a busy store, or a neighbour in its batch that
   * failed, rolls the transaction back and runs it again), so it must act only
   * through `trx`; what it returns is the last run's, the one committed.
   */
  readonly change: ChainedChange = async <T>(change: (trx: Transaction<Database>, emit: Emit) => Promise<T>): Promise<T> => {
    let result: { value: T } | undefined;
    await this.#writer.write(async (trx, emit) => {
      result = { value: await change(trx, emit) };
    });
    return result!.value;
  };

  drain(): Promise<void> {
    return this.#writer.drain();
  }
}
