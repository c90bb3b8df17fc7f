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
import type { Database } from '../store/index.js';
import { listenPostgres } from '../store/pg-listen.js';
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

export async function postgresReviewBus(db: Kysely<Database>, url: string, onError: (error: Error) => void): Promise<ReviewBus> {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  const listener = await listenPostgres(url, reviewChannel, {
    onNotification(payload) {
      const [type, id] = payload.split(' ');
      if (type && id) emitter.emit('event', type, id);
    },
    // Every waiter re-reads: a NOTIFY sent while the connection was down is lost.
    onReconnect: () => emitter.emit('resync'),
    onError,
  });

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
      emitter.removeAllListeners();
      await listener.close();
    },
  };
}
