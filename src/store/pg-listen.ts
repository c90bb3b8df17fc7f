// A dedicated PostgreSQL connection that LISTENs on one channel, for news other gateway
// processes sharing the store publish with NOTIFY (pg_notify): a review decided, a
// revocation written. When the connection drops it is made again, once a second, until
// the database is back; then `onReconnect` runs, since a NOTIFY sent meanwhile was lost
// and whoever listens must re-read what it stands for.

import pg from 'pg';

export interface PostgresListenHandlers {
  onNotification(payload: string): void;
  onReconnect(): void;
  onError(error: Error): void;
}

export interface PostgresListener {
  close(): Promise<void>;
}

/** Between two attempts to reconnect the LISTEN connection: one cheap connect a second. */
const reconnectDelayMs = 1000;

/** Resolves once listening; rejects if the first connection fails (the caller decides whether that stops it). */
export async function listenPostgres(url: string, channel: string, handlers: PostgresListenHandlers): Promise<PostgresListener> {
  let client: pg.Client | undefined;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;

  const connect = async (): Promise<void> => {
    const next = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
    next.on('notification', (message) => {
      if (message.channel === channel) handlers.onNotification(message.payload ?? '');
    });
    next.on('error', (error) => {
      handlers.onError(error);
      next.end().catch(() => undefined);
      if (client !== next) return; // failed while connecting: connect() rejects and reschedules
      client = undefined;
      reconnect();
    });
    try {
      await next.connect();
      // The channel is an identifier: only names of our own, never input.
      await next.query(`LISTEN ${channel}`);
    } catch (error) {
      await next.end().catch(() => undefined);
      throw error;
    }
    if (closed) await next.end();
    else client = next;
  };

  // Keeps trying until the database is back (it may be gone for longer than one retry).
  const reconnect = (): void => {
    if (closed || retry !== undefined) return;
    retry = setTimeout(() => {
      void connect().then(
        () => {
          retry = undefined;
          handlers.onReconnect();
        },
        (error: unknown) => {
          retry = undefined;
          handlers.onError(error instanceof Error ? error : new Error(String(error)));
          reconnect();
        },
      );
    }, reconnectDelayMs).unref();
  };
  await connect();

  return {
    async close() {
      closed = true;
      clearTimeout(retry);
      await client?.end().catch(() => undefined);
    },
  };
}
