// Group commit: writes queued in the same turn of the event loop share one
// transaction, so durability costs one commit per batch instead of one per write.
// Each caller's promise settles when its batch has committed (or failed).
// A write may emit audit events; they are chained (append-events.ts) at the end of the
// same transaction, so a record and its event commit together or not at all.
//
// Two kinds of write: a record (an exchange row inserted or updated, and its event),
// given as data; and a custom write, a function over a Kysely transaction (prune).
// On SQLite, a batch of records alone goes through the synchronous prepared-statement
// path (sqlite-batch.ts); anything else runs in a Kysely transaction.

import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../store/index.js';
import type { AuditEvent } from './audit-event.js';
import { appendEvents, lockHead, type ChainOptions, type EventInput } from './append-events.js';
import type { ExchangeState } from './exchange-state.js';
import { SqliteBatch } from './sqlite-batch.js';

export type Emit = (event: EventInput) => void;
export type Write = (trx: Transaction<Database>, emit: Emit) => Promise<unknown>;

export type ExchangeWrite = { readonly insert: ExchangeState } | { readonly update: string; readonly columns: Readonly<Partial<ExchangeState>> };

/** A write given as data: an exchange row change, its event, or both. */
export interface RecordWrite {
  readonly exchange?: ExchangeWrite | undefined;
  readonly event?: EventInput | undefined;
}

export interface GroupCommitOptions {
  readonly maxBatch?: number | undefined;
  readonly chain?: ChainOptions | undefined;
  /** Called with the events of each committed transaction (sinks). Must not throw. */
  readonly onCommitted?: ((events: readonly AuditEvent[]) => void) | undefined;
  /** The SQLite file behind `db`, for the prepared-statement path (absent: PostgreSQL, or Kysely only). */
  readonly sqlitePath?: string | undefined;
}

type Pending = ({ readonly custom: Write } | { readonly record: RecordWrite }) & {
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
};

const maxBusyAttempts = 40;

/** SQLite busy/locked, or a PostgreSQL serialization failure or deadlock. */
function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED') || code === '40001' || code === '40P01');
}

export class GroupCommitWriter {
  readonly #db: Kysely<Database>;
  readonly #maxBatch: number;
  #queue: Pending[] = [];
  #scheduled = false;
  #running: Promise<void> | undefined;
  readonly #chain: ChainOptions;
  readonly #onCommitted: ((events: readonly AuditEvent[]) => void) | undefined;
  readonly #sqlitePath: string | undefined;
  #sqlite: SqliteBatch | undefined;

  constructor(db: Kysely<Database>, options: GroupCommitOptions = {}) {
    this.#db = db;
    this.#maxBatch = options.maxBatch ?? 256;
    this.#chain = options.chain ?? { writer: 'gatehouse', checkpointEvery: Number.POSITIVE_INFINITY, checkpointIntervalMs: Number.POSITIVE_INFINITY };
    this.#onCommitted = options.onCommitted;
    this.#sqlitePath = options.sqlitePath;
  }

  /** A custom write: runs in a Kysely transaction with whatever else is queued. */
  write(write: Write): Promise<void> {
    return this.#enqueue({ custom: write });
  }

  /** A record write (exchange row and/or event). */
  record(write: RecordWrite): Promise<void> {
    return this.#enqueue({ record: write });
  }

  /** Resolves when everything queued so far has been written. */
  async drain(): Promise<void> {
    while (this.#queue.length > 0 || this.#running) {
      await (this.#running ?? new Promise<void>((r) => setImmediate(r)));
    }
  }

  /** Drains, then closes the SQLite connection of the fast path, if one was opened. */
  async close(): Promise<void> {
    await this.drain();
    this.#sqlite?.close();
    this.#sqlite = undefined;
  }

  #enqueue(item: { custom: Write } | { record: RecordWrite }): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ ...item, resolve, reject });
      this.#schedule();
    });
  }

  /**
   * Runs writes in one transaction and chains whatever events they emitted. Several
   * writers share one SQLite file (the recorder's worker, the gateway thread, the CLI):
   * a transaction that read before another writer committed cannot upgrade to a write
   * (SQLITE_BUSY_SNAPSHOT, which the busy timeout does not cover), so a busy
   * transaction is rolled back and run again, a bounded number of times.
   */
  async #transaction(items: readonly Pending[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        const events = this.#sqlitePath !== undefined && items.every((item) => 'record' in item) ? this.#sqliteBatch(items) : await this.#kyselyBatch(items);
        if (events.length > 0) this.#onCommitted?.(events);
        return;
      } catch (error) {
        if (!isBusy(error) || attempt >= maxBusyAttempts) throw error;
        await new Promise((resolve) => setTimeout(resolve, Math.min(5 * attempt, 50) + Math.random() * 5));
      }
    }
  }

  #sqliteBatch(items: readonly Pending[]): AuditEvent[] {
    this.#sqlite ??= new SqliteBatch(this.#sqlitePath!);
    return this.#sqlite.run(
      items.map((item) => (item as { record: RecordWrite }).record),
      this.#chain,
    );
  }

  #kyselyBatch(items: readonly Pending[]): Promise<AuditEvent[]> {
    return this.#db.transaction().execute(async (trx) => {
      const inputs: EventInput[] = [];
      const emit: Emit = (event) => void inputs.push(event);
      // The head is locked before a row is inserted: a row's seq (PostgreSQL's sequence) is
      // then taken in chain order. Taken after, two gateways' transactions could take seqs
      // in one order and chain in the other, and verify could not tell a seq swapped since.
      const head = items.some((item) => 'record' in item && item.record.exchange !== undefined && 'insert' in item.record.exchange) ? await lockHead(trx) : undefined;
      for (const item of items) {
        if ('custom' in item) {
          await item.custom(trx, emit);
          continue;
        }
        const { exchange, event } = item.record;
        if (exchange && 'insert' in exchange) await trx.insertInto('exchanges').values(exchange.insert).execute();
        else if (exchange) await trx.updateTable('exchanges').set(exchange.columns).where('id', '=', exchange.update).execute();
        if (event) emit(event);
      }
      return appendEvents(trx, inputs, this.#chain, head);
    });
  }

  #schedule(): void {
    if (this.#scheduled || this.#running) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#running = this.#flush().finally(() => {
        this.#running = undefined;
        if (this.#queue.length > 0) this.#schedule();
      });
    });
  }

  async #flush(): Promise<void> {
    const batch = this.#queue.splice(0, this.#maxBatch);
    if (batch.length === 0) return;
    try {
      await this.#transaction(batch);
      for (const item of batch) item.resolve();
    } catch (error) {
      if (batch.length === 1) {
        batch[0]!.reject(error);
        return;
      }
      // One bad write must not fail its neighbours: retry each in its own transaction.
      for (const item of batch) {
        try {
          await this.#transaction([item]);
          item.resolve();
        } catch (itemError) {
          item.reject(itemError);
        }
      }
    }
  }
}
