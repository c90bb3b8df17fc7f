// A TCP relay to a dependency (PostgreSQL, Redis) that a test can take away and bring
// back on the same port, to play the dependency going down without touching the real
// service: `down()` closes the port and cuts every relayed connection; `silent` swallows
// bytes in both directions (a host that stops answering); `up()` listens again.

import { connect, createServer, type Server, type Socket } from 'node:net';

export interface TcpRelay {
  readonly port: number;
  /** While true, bytes are swallowed (not relayed, not refused). */
  silent: boolean;
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpRelay(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpRelay> {
  const sockets = new Set<Socket>();
  const state = { silent: false, port: 0 };
  let server: Server | undefined;

  const listen = async () => {
    const next = createServer((client) => {
      const upstream = connect(targetPort, targetHost);
      sockets.add(client).add(upstream);
      client.on('data', (data) => void (state.silent || upstream.write(data)));
      upstream.on('data', (data) => void (state.silent || client.write(data)));
      const end = () => {
        client.destroy();
        upstream.destroy();
        sockets.delete(client);
        sockets.delete(upstream);
      };
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
    });
    await new Promise<void>((resolve, reject) => next.once('error', reject).listen(state.port, '127.0.0.1', resolve));
    state.port = (next.address() as { port: number }).port;
    server = next;
  };
  const down = async () => {
    const current = server;
    server = undefined;
    for (const socket of sockets) socket.destroy();
    sockets.clear();
    if (current) await new Promise((resolve) => current.close(resolve));
  };
  await listen();
  return {
    get port() {
      return state.port;
    },
    get silent() {
      return state.silent;
    },
    set silent(value: boolean) {
      state.silent = value;
    },
    down,
    up: async () => {
      state.silent = false;
      if (!server) await listen();
    },
    close: down,
  };
}
