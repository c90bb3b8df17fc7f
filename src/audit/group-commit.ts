// Group commit: writes queued in the same turn of the event loop share one
// transaction, so durability costs one commit per batch instead of one per write.
// Each caller's promise settles when its batch has committed (or failed).

import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../store/index.js';

type Write = (trx: Transaction<Database>) => Promise<unknown>;

interface Pending {
  readonly write: Write;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

export class GroupCommitWriter {
  readonly #db: Kysely<Database>;
  readonly #maxBatch: number;
  #queue: Pending[] = [];
  #scheduled = false;
  #running: Promise<void> | undefined;

  constructor(db: Kysely<Database>, options: { maxBatch?: number } = {}) {
    this.#db = db;
    this.#maxBatch = options.maxBatch ?? 256;
  }

  write(write: Write): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ write, resolve, reject });
      this.#schedule();
    });
  }

  /** Resolves when everything queued so far has been written. */
  async drain(): Promise<void> {
    while (this.#queue.length > 0 || this.#running) {
      await (this.#running ?? new Promise<void>((r) => setImmediate(r)));
    }
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
      await this.#db.transaction().execute(async (trx) => {
        for (const item of batch) await item.write(trx);
      });
      for (const item of batch) item.resolve();
    } catch (error) {
      if (batch.length === 1) {
        batch[0]!.reject(error);
        return;
      }
      // One bad write must not fail its neighbours: retry each in its own transaction.
      for (const item of batch) {
        try {
          await this.#db.transaction().execute((trx) => item.write(trx));
          item.resolve();
        } catch (itemError) {
          item.reject(itemError);
        }
      }
    }
  }
}
