// The SQLite fast path of group commit: a batch of record writes (exchange rows and
// their chained events) applied synchronously with prepared statements on a
// connection of its own, in one BEGIN IMMEDIATE transaction. Kysely builds and
// prepares SQL per call, which cost more than the writes themselves on the recording
// hot path; this does the same writes with statements prepared once.
//
// Its own connection, so its transactions never interleave with a Kysely transaction
// that is waiting on an await on the shared one; SQLite's lock orders the two.

import SQLite from 'better-sqlite3';
import type { AuditEvent } from './audit-event.js';
import { chainEvents, type ChainHead, type ChainOptions, type EventInput } from './append-events.js';
import { recordedColumns, stateValues } from './exchange-state.js';
import type { RecordWrite } from './group-commit.js';
import { tuneSqliteConnection } from '../store/sqlite-connection.js';

export class SqliteBatch {
  readonly #db: SQLite.Database;
  readonly #insertExchange: SQLite.Statement;
  readonly #updates = new Map<string, SQLite.Statement>();
  readonly #lockHead: SQLite.Statement;
  readonly #readHead: SQLite.Statement;
  readonly #insertEvent: SQLite.Statement;
  readonly #insertCheckpoint: SQLite.Statement;
  readonly #moveHead: SQLite.Statement;
  readonly #transaction: SQLite.Transaction<(body: () => unknown) => unknown>;

  constructor(path: string) {
    this.#db = new SQLite(path);
    // Per connection: the same settings open-store.ts gives the main one (WAL is per file).
    tuneSqliteConnection(this.#db, { busyTimeoutMs: 5000 });
    // Each record write touches a dozen b-tree pages (the row, its indexes, the event,
    // the head); a page the cache lacks is a read system call. 64 MiB at most, taken
    // only as pages are used.
    this.#db.pragma('cache_size = -65536');
    // Positional parameters: binding 46 named ones looks each name up on the row object,
    // which cost a third of the insert (bench/recording-ab.ts).
    //
    // `or rollback`: the writes of a batch run only inside one transaction, which any
    // error rolls back whole (immediate() below), so a constraint failure ends the
    // same way as with the default (abort). But with abort, SQLite must be able to undo
    // one statement alone, and keeps a statement journal for every insert or update
    // that writes several b-trees (a row, its indexes, the full-text trigger's rows):
    // a copy of every page before the statement changes it, about a tenth of applying
    // a record (callgrind of the journal worker).
    this.#insertExchange = this.#db.prepare(`insert or rollback into exchanges (${recordedColumns.join(', ')}) values (${recordedColumns.map(() => '?').join(', ')})`);
    // An UPDATE first, so the write lock is taken before the head is read.
    this.#lockHead = this.#db.prepare('update audit_head set id = 1 where id = 1');
    this.#readHead = this.#db.prepare('select seq, hash, checkpoint_seq, checkpoint_at from audit_head where id = 1');
    this.#insertEvent = this.#db.prepare('insert or rollback into audit_events (seq, id, at, writer, kind, actor, target, details, prev_hash, hash) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
    this.#insertCheckpoint = this.#db.prepare('insert into audit_checkpoints (seq, hash, at, key_id, signature) values (@seq, @hash, @at, @key_id, @signature)');
    this.#moveHead = this.#db.prepare('update audit_head set seq = @seq, hash = @hash, checkpoint_seq = @checkpoint_seq, checkpoint_at = @checkpoint_at where id = 1');
    this.#transaction = this.#db.transaction((body: () => unknown) => body());
  }

  /** The connection, for a caller's own statements inside `immediate`. */
  get connection(): SQLite.Database {
    return this.#db;
  }

  /** Runs `body` in one BEGIN IMMEDIATE transaction: committed if it returns, rolled back if it throws. */
  immediate<T>(body: () => T): T {
    return this.#transaction.immediate(body) as T;
  }

  /** Applies the writes and chains their events in one immediate transaction. */
  run(writes: readonly RecordWrite[], chain: ChainOptions): AuditEvent[] {
    return this.immediate(() => this.apply(writes, chain));
  }

  /**
   * Applies the writes and chains their events; only inside `immediate`. A failed write
   * rolls the whole transaction back (`or rollback`) and throws: the caller must not go
   * on in the same transaction.
   */
  apply(writes: readonly RecordWrite[], chain: ChainOptions): AuditEvent[] {
    const inputs: EventInput[] = [];
    for (const write of writes) {
      const exchange = write.exchange;
      if (exchange && 'insert' in exchange) this.#insertExchange.run(stateValues(exchange.insert));
      else if (exchange) this.#update(Object.keys(exchange.columns)).run({ ...exchange.columns, id: exchange.update });
      if (write.event) inputs.push(write.event);
    }
    if (inputs.length === 0) return [];
    this.#lockHead.run();
    const batch = chainEvents(this.#readHead.get() as ChainHead, inputs, chain);
    for (const row of batch.rows) this.#insertEvent.run(row.seq, row.id, row.at, row.writer, row.kind, row.actor, row.target, row.details, row.prev_hash, row.hash);
    if (batch.checkpoint) this.#insertCheckpoint.run(batch.checkpoint);
    this.#moveHead.run(batch.head);
    return batch.events;
  }

  close(): void {
    this.#db.close();
  }

  #update(columns: readonly string[]): SQLite.Statement {
    const key = columns.join(',');
    let statement = this.#updates.get(key);
    if (!statement) {
      for (const column of columns) if (!(recordedColumns as readonly string[]).includes(column)) throw new TypeError(`not a recorded column: ${column}`);
      statement = this.#db.prepare(`update or rollback exchanges set ${columns.map((c) => `${c} = @${c}`).join(', ')} where id = @id`);
      this.#updates.set(key, statement);
    }
    return statement;
  }
}
