// Tells every gateway process sharing a store that a review changed, so a request held
// on one process is released when the review is decided on another, and every
// process's event stream sees it.
// - PostgreSQL: NOTIFY on channel `gatehouse_reviews` (payload `<type> <review id>`),
//   one dedicated LISTEN connection per process, reconnected when it drops (retrying
//   until the database is back; waiters then re-read, as notifications were missed).
// - SQLite (or no listener): only this process hears it; held requests also poll the
//   store (approvals.pollInterval), which is what releases them across processes.

import { EventEmitter } from 'node:events';
import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import type { Database } from '../store/index.js';
import type { ReviewEventType } from './review-types.js';

export const reviewChannel = 'gatehouse_reviews';

export interface ReviewBus {
  publish(type: ReviewEventType, reviewId: string): Promise<void>;
  subscribe(listener: (type: ReviewEventType, reviewId: string) => void): () => void;
  /**
   * Called when events may have been missed (the LISTEN connection was lost and is back):
   * whoever waits for a review re-reads it from the store.
   */
  onResync(listener: () => void): () => void;
  /** True when other processes hear this one (LISTEN/NOTIFY). */
  readonly shared: boolean;
  close(): Promise<void>;
}

export function localReviewBus(): ReviewBus {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  return {
    shared: false,
    async publish(type, id) {
      emitter.emit('event', type, id);
    },
    subscribe(listener) {
      emitter.on('event', listener);
      return () => emitter.off('event', listener);
    },
    onResync: () => () => undefined, // nothing between processes to miss
    async close() {
      emitter.removeAllListeners();
    },
  };
}

/** Between two attempts to reconnect the LISTEN connection: one cheap connect a second. */
const reconnectDelayMs = 1000;

export async function postgresReviewBus(db: Kysely<Database>, url: string, onError: (error: Error) => void): Promise<ReviewBus> {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  let client: pg.Client | undefined;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;

  const connect = async (): Promise<void> => {
    const next = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
    next.on('notification', (message) => {
      const [type, id] = (message.payload ?? '').split(' ');
      if (type && id) emitter.emit('event', type, id);
    });
    next.on('error', (error) => {
      onError(error);
      next.end().catch(() => undefined);
      if (client !== next) return; // failed while connecting: connect() rejects and reschedules
      client = undefined;
      reconnect();
    });
    try {
      await next.connect();
      await next.query(`LISTEN ${reviewChannel}`);
    } catch (error) {
      await next.end().catch(() => undefined);
      throw error;
    }
    if (closed) await next.end();
    else client = next;
  };

  // Keeps trying until the database is back (it may be gone for longer than one retry),
  // then wakes every waiter: a NOTIFY sent while the connection was down is lost.
  const reconnect = (): void => {
    if (closed || retry !== undefined) return;
    retry = setTimeout(() => {
      void connect().then(
        () => {
          retry = undefined;
          emitter.emit('resync');
        },
        (error: unknown) => {
          retry = undefined;
          onError(error instanceof Error ? error : new Error(String(error)));
          reconnect();
        },
      );
    }, reconnectDelayMs).unref();
  };
  await connect();

  return {
    shared: true,
    async publish(type, id) {
      // pg_notify is transactional-safe and takes the channel as a value, not an identifier.
      await sql`select pg_notify(${reviewChannel}, ${`${type} ${id}`})`.execute(db);
    },
    subscribe(listener) {
      emitter.on('event', listener);
      return () => emitter.off('event', listener);
    },
    onResync(listener) {
      emitter.on('resync', listener);
      return () => emitter.off('resync', listener);
    },
    async close() {
      closed = true;
      clearTimeout(retry);
      emitter.removeAllListeners();
      await client?.end().catch(() => undefined);
    },
  };
}
