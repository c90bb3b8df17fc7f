// Tells every gateway process sharing a store that a review changed, so a request held
// on one process is released when the review is decided on another, and every
// process's event stream sees it.
// - PostgreSQL: NOTIFY on channel `gatehouse_reviews` (payload `<type> <review id>`),
//   one dedicated LISTEN connection per process, reconnected when it drops.
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
    async close() {
      emitter.removeAllListeners();
    },
  };
}

export async function postgresReviewBus(db: Kysely<Database>, url: string, onError: (error: Error) => void): Promise<ReviewBus> {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  let client: pg.Client | undefined;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;

  const connect = async (): Promise<void> => {
    const next = new pg.Client({ connectionString: url });
    next.on('notification', (message) => {
      const [type, id] = (message.payload ?? '').split(' ');
      if (type && id) emitter.emit('event', type, id);
    });
    next.on('error', (error) => {
      onError(error);
      next.end().catch(() => undefined);
      if (client === next) client = undefined;
      if (!closed) retry = setTimeout(() => void connect().catch(onError), 1000).unref();
    });
    await next.connect();
    await next.query(`LISTEN ${reviewChannel}`);
    if (closed) await next.end();
    else client = next;
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
    async close() {
      closed = true;
      clearTimeout(retry);
      emitter.removeAllListeners();
      await client?.end().catch(() => undefined);
    },
  };
}
