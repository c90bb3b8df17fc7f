// COPY through node-postgres without pg-copy-streams: a submittable (the interface
// pg-copy-streams itself uses) that feeds COPY FROM STDIN and collects COPY TO STDOUT.

import type pg from 'pg';

/** COPY through node-postgres (a submittable, as pg-copy-streams does): `input` feeds COPY FROM STDIN. */
export function copy(client: pg.Client, text: string, input?: string): Promise<{ out: string; tag: string }> {
  return new Promise((resolve, reject) => {
    let out = '';
    let tag = '';
    const submittable = {
      submit: (connection: { query(text: string): void }) => connection.query(text),
      handleCopyInResponse(connection: { sendCopyFromChunk(b: Buffer): void; endCopyFrom(): void }) {
        if (input) connection.sendCopyFromChunk(Buffer.from(input));
        connection.endCopyFrom();
      },
      handleCopyData: (msg: { chunk: Buffer }) => (out += msg.chunk.toString()),
      handleCommandComplete: (msg: { text: string }) => (tag = msg.text),
      // pg forgets the active query on an ErrorResponse: its ReadyForQuery comes to no one.
      handleError: (error: Error) => reject(error),
      handleReadyForQuery: () => resolve({ out, tag }),
      handleRowDescription: () => undefined,
      handleDataRow: () => undefined,
      handleEmptyQuery: () => undefined,
      handlePortalSuspended: () => undefined,
    };
    void client.query(submittable as never);
  });
}

/**
 * COPY through node-postgres in the extended protocol (Parse, Bind, Describe, Execute,
 * Sync of the unnamed statement, as libpq's PQexecParams and drivers that prepare every
 * statement send it): `input` feeds COPY FROM STDIN.
 */
export function copyExtended(client: pg.Client, text: string, input?: string): Promise<{ out: string; tag: string }> {
  return new Promise((resolve, reject) => {
    let out = '';
    let tag = '';
    const submittable = {
      submit(connection: { parse(q: object): void; bind(c: object): void; describe(m: object): void; execute(c: object): void; sync(): void }) {
        connection.parse({ text });
        connection.bind({});
        connection.describe({ type: 'P' });
        connection.execute({});
        connection.sync();
      },
      // As libpq: the Sync before the data is ignored in COPY mode, so another follows CopyDone.
      handleCopyInResponse(connection: { sendCopyFromChunk(b: Buffer): void; endCopyFrom(): void; sync(): void }) {
        if (input) connection.sendCopyFromChunk(Buffer.from(input));
        connection.endCopyFrom();
        connection.sync();
      },
      handleCopyData: (msg: { chunk: Buffer }) => (out += msg.chunk.toString()),
      handleCommandComplete: (msg: { text: string }) => (tag = msg.text),
      handleError: (error: Error) => reject(error),
      handleReadyForQuery: () => resolve({ out, tag }),
      handleRowDescription: () => undefined,
      handleDataRow: () => undefined,
      handleEmptyQuery: () => undefined,
      handlePortalSuspended: () => undefined,
    };
    void client.query(submittable as never);
  });
}
