// Records the PostgreSQL store did not take because it could not be reached (it went
// away mid-traffic): the exchange was forwarded or refused all the same, so its record
// is held in memory and written, in order, once the store answers again (retried every
// second). Bounded: past maxHeld the oldest are dropped, and a gateway that stops while
// the store is still away says how many it could not write. Held records do not survive
// the process (SQLite stores have the record journal on disk instead).

import { isStoreUnreachable } from '../store/index.js';
import type { GroupCommitWriter, RecordWrite } from './group-commit.js';

export interface HeldRecordsReport {
  /** Records held now. */
  readonly held: number;
  /** Written by this retry. */
  readonly written?: number | undefined;
  /** Dropped: over the bound, or refused by the store for another reason than being away. */
  readonly lost?: number | undefined;
  readonly error?: string | undefined;
}

const retryMs = 1_000;
const maxHeld = 10_000;
const batchSize = 256;

export class HeldRecords {
  readonly #writer: GroupCommitWriter;
  readonly #report: (report: HeldRecordsReport) => void;
  #queue: RecordWrite[] = [];
  #timer: NodeJS.Timeout | undefined;
  #retrying: Promise<void> | undefined;
  #closed = false;
  /** Dropped over the bound since the last report: said once a retry (a second), not once a request. */
  #dropped = 0;

  constructor(writer: GroupCommitWriter, report: ((report: HeldRecordsReport) => void) | undefined) {
    this.#writer = writer;
    this.#report = report ?? (() => undefined);
  }

  get size(): number {
    return this.#queue.length;
  }

  /** Holds the write `later()` builds when `error` says the store could not be reached; any other error is the caller's. */
  holdIfUnreachable(error: unknown, later: () => RecordWrite): void {
    if (!isStoreUnreachable(error)) return;
    if (this.#queue.length >= maxHeld) this.#dropped += this.#queue.splice(0, this.#queue.length - maxHeld + 1).length;
    this.#queue.push(later());
    // Said once per outage (the first record held); losses with the next retry.
    if (this.#queue.length === 1) this.#report({ held: 1, error: (error as Error).message });
    this.#schedule();
  }

  /** One last try to write what is held; what the store still does not take is reported lost. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#retrying;
    if (this.#queue.length === 0) return;
    await this.#retry();
    if (this.#queue.length > 0) this.#report({ held: 0, lost: this.#queue.splice(0).length + this.#dropped, error: 'the gateway stopped before the store answered again' });
    this.#dropped = 0;
  }

  #schedule(): void {
    if (this.#timer || this.#retrying || this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#retrying = this.#retry().finally(() => {
        this.#retrying = undefined;
        if (this.#queue.length > 0) this.#schedule();
      });
    }, retryMs);
    this.#timer.unref();
  }

  async #retry(): Promise<void> {
    let written = 0;
    let lost = this.#dropped;
    let lastError: unknown = lost > 0 ? new Error(`more than ${maxHeld} records held: the oldest were dropped`) : undefined;
    this.#dropped = 0;
    while (this.#queue.length > 0) {
      // Taken out while it is written: a record dropped over the bound meanwhile is one of the rest.
      const batch = this.#queue.splice(0, batchSize);
      // Queued in the same turn, the batch shares one transaction (group commit).
      const results = await Promise.allSettled(batch.map((write) => this.#writer.record(write)));
      const still: RecordWrite[] = [];
      results.forEach((result, i) => {
        if (result.status === 'fulfilled') written++;
        else if (isStoreUnreachable(result.reason)) still.push(batch[i]!);
        else {
          lost++;
          lastError = result.reason;
        }
      });
      this.#queue.unshift(...still);
      // Still away: the rest waits for the next try.
      if (still.length > 0) break;
    }
    if (written > 0 || lost > 0) this.#report({ held: this.#queue.length, written: written || undefined, lost: lost || undefined, error: lost > 0 ? String((lastError as Error | undefined)?.message ?? lastError) : undefined });
  }
}
