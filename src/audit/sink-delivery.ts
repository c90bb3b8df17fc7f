// Delivers the event chain to each audit sink from the store, in seq order, at least
// once. Enforces:
// - every chained event reaches every sink, whoever chained it: this gateway, its record
//   journal's worker, a CLI command (including the records of a crashed gateway that a
//   CLI applied from its journal), another gateway sharing the store;
// - a sink's cursor (audit_sink_cursors: the last seq it took) is kept in the store and
//   moved only after the sink took the batch, so a restart resumes where it left off;
// - a batch a sink does not take (webhook down, non-2xx, timeout; a file write error) is
//   sent again from the same seq (the same events first, in the same order, then any
//   chained meanwhile), after a backoff (1 s doubling to 60 s);
// - memory is bounded: at most `batchSize` events are read per sink at a time, never an
//   unbounded queue;
// - a new sink starts at the chain's head when it is first seen (earlier events are in
//   an export), not at the beginning of history.
// Wake-ups come from local commits (kick) and a poll for other processes' commits.

import type { Kysely } from 'kysely';
import type { Database } from '../store/index.js';
import { eventFromRow } from './audit-event.js';
import type { AuditSink } from './sinks.js';

export interface SinkDeliveryOptions {
  readonly batchSize?: number | undefined;
  /** How often the store is read for events chained by other processes (default 1 s). */
  readonly pollMs?: number | undefined;
  readonly minBackoffMs?: number | undefined;
  readonly maxBackoffMs?: number | undefined;
  readonly onError: (sink: string, error: Error) => void;
}

export class SinkDelivery {
  readonly #db: Kysely<Database>;
  readonly #sinks: readonly AuditSink[];
  readonly #options: { batchSize: number; pollMs: number; minBackoffMs: number; maxBackoffMs: number; onError: (sink: string, error: Error) => void };
  readonly #wakers = new Set<() => void>();
  #loops: Promise<void>[] = [];
  #stopping = false;
  /** After close: deliver what is chained by then, and stop at the first failure. */
  #draining = false;

  constructor(db: Kysely<Database>, sinks: readonly AuditSink[], options: SinkDeliveryOptions) {
    this.#db = db;
    this.#sinks = sinks;
    this.#options = {
      batchSize: options.batchSize ?? 256,
      pollMs: options.pollMs ?? 1000,
      minBackoffMs: options.minBackoffMs ?? 1000,
      maxBackoffMs: options.maxBackoffMs ?? 60_000,
      onError: options.onError,
    };
  }

  /** Creates the cursors of sinks seen for the first time (at the head), then starts delivering. */
  async start(): Promise<void> {
    if (this.#sinks.length === 0) return;
    const head = await this.#db.selectFrom('audit_head').select('seq').where('id', '=', 1).executeTakeFirst();
    const now = Date.now();
    for (const sink of this.#sinks) {
      await this.#db
        .insertInto('audit_sink_cursors')
        .values({ sink: sink.key, delivered_seq: Number(head?.seq ?? 0), updated_at: now })
        .onConflict((oc) => oc.column('sink').doNothing())
        .execute();
    }
    this.#loops = this.#sinks.map((sink) => this.#run(sink));
  }

  /** Events were committed here: deliver them without waiting for the poll. */
  kick(): void {
    for (const wake of this.#wakers) wake();
  }

  /** Delivers what is chained by now (each sink until its first failure, at most `timeoutMs`), then stops. */
  async close(timeoutMs = 5000): Promise<void> {
    this.#draining = true;
    this.kick();
    const timer = setTimeout(() => {
      this.#stopping = true;
      this.kick();
    }, timeoutMs);
    await Promise.all(this.#loops);
    clearTimeout(timer);
  }

  async #run(sink: AuditSink): Promise<void> {
    let failures = 0;
    while (!this.#stopping) {
      let delivered: number;
      try {
        delivered = await this.#deliverBatch(sink);
      } catch (error) {
        failures++;
        const wait = Math.min(this.#options.maxBackoffMs, this.#options.minBackoffMs * 2 ** Math.min(failures - 1, 16));
        this.#options.onError(sink.key, new Error(`${(error as Error).message}; ${this.#draining ? 'left for the next start' : `retrying in ${Math.round(wait / 1000)} s (attempt ${failures})`}`));
        if (this.#draining) return;
        await this.#sleep(wait, false);
        continue;
      }
      failures = 0;
      if (delivered === this.#options.batchSize) continue;
      // Draining: read again until a read finds nothing. Events chained while this batch
      // was being taken (gateway.stopped, the last records) were read by no one yet.
      if (this.#draining) {
        if (delivered > 0) continue;
        return;
      }
      await this.#sleep(this.#options.pollMs, true);
    }
  }

  /** One batch after the sink's cursor; the number of events it took. */
  async #deliverBatch(sink: AuditSink): Promise<number> {
    const cursor = await this.#db.selectFrom('audit_sink_cursors').select('delivered_seq').where('sink', '=', sink.key).executeTakeFirstOrThrow();
    const rows = await this.#db.selectFrom('audit_events').selectAll().where('seq', '>', Number(cursor.delivered_seq)).orderBy('seq').limit(this.#options.batchSize).execute();
    if (rows.length === 0) return 0;
    const events = rows.map(eventFromRow);
    const first = events[0]!.seq;
    const last = events.at(-1)!.seq;
    try {
      await sink.deliver(events);
    } catch (error) {
      throw new Error(`events seq ${first}..${last} not delivered: ${error instanceof Error ? error.message : String(error)}`);
    }
    // Never backwards: another gateway sharing the store may have delivered further.
    await this.#db.updateTable('audit_sink_cursors').set({ delivered_seq: last, updated_at: Date.now() }).where('sink', '=', sink.key).where('delivered_seq', '<', last).execute();
    return events.length;
  }

  /** Waits `ms`, or less when kicked (if `wakeable`) or stopping. */
  #sleep(ms: number, wakeable: boolean): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wakers.delete(waker);
        resolve();
      };
      const waker = () => {
        if (wakeable || this.#stopping || this.#draining) done();
      };
      const timer = setTimeout(done, ms);
      this.#wakers.add(waker);
    });
  }
}
