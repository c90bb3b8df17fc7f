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

import type { GroupCommitWriter } from './group-commit.js';
import type { EventInput } from './append-events.js';

export class AuditLog {
  readonly #writer: GroupCommitWriter;

  constructor(writer: GroupCommitWriter) {
    this.#writer = writer;
  }

  event(input: EventInput): Promise<void> {
    return this.#writer.record({ event: input });
  }

  drain(): Promise<void> {
    return this.#writer.drain();
  }
}
