// A raw PostgreSQL protocol client for tests that need exact control of the bytes:
// log in with a cleartext password (or none, where the server asks for none), write any messages, read typed messages back.

import { connect, type Socket } from 'node:net';
import { cstring, FrameReader, message, startupMessage, type Frame } from '../../src/protocols/postgres/codec.js';

export interface RawClient {
  readonly socket: Socket;
  write(...messages: Buffer[]): void;
  /** Reads messages until `count` ReadyForQuery have arrived (or `timeoutMs` passes). */
  untilReady(count: number, timeoutMs?: number): Promise<Frame[]>;
  /** Reads messages until one of `type` has arrived (or `timeoutMs` passes). */
  until(type: string, timeoutMs?: number): Promise<Frame[]>;
  close(): void;
}

export async function rawLogin(port: number, user: string, database: string, password: string): Promise<RawClient> {
  const socket = connect({ port, host: '127.0.0.1' });
  socket.on('error', () => undefined);
  const reader = new FrameReader(64 * 1024 * 1024);
  const frames: Frame[] = [];
  let wake: (() => void) | undefined;
  socket.on('data', (d: Buffer) => {
    reader.push(d);
    for (let f = reader.next(false); f; f = reader.next(false)) frames.push(f);
    wake?.();
  });
  socket.on('close', () => wake?.());
  const next = async (deadline: number): Promise<Frame | undefined> => {
    while (frames.length === 0) {
      if (socket.destroyed || Date.now() > deadline) return undefined;
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 50);
      });
    }
    return frames.shift();
  };
  const client: RawClient = {
    socket,
    write: (...messages) => socket.write(Buffer.concat(messages)),
    async untilReady(count, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      const out: Frame[] = [];
      while (count > 0) {
        const frame = await next(deadline);
        if (!frame) break;
        out.push(frame);
        if (frame.type === 'Z') count--;
      }
      return out;
    },
    async until(type, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      const out: Frame[] = [];
      for (;;) {
        const frame = await next(deadline);
        if (!frame) return out;
        out.push(frame);
        if (frame.type === type) return out;
      }
    },
    close: () => socket.destroy(),
  };
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  socket.write(startupMessage({ user, database }));
  const auth = await next(Date.now() + 5000);
  if (auth?.type !== 'R') throw new Error(`expected an authentication request, got ${auth?.type}`);
  // AuthenticationOk (the machine's PostgreSQL under trust, reached directly): no password asked.
  if (auth.body.readInt32BE(0) !== 0) client.write(message('p', cstring(password)));
  await client.untilReady(1);
  return client;
}
