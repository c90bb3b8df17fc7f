// A TCP relay to a dependency (PostgreSQL, Redis) that a test can take away and bring
// back on the same port, to play the dependency going down without touching the real
// service: `down()` closes the port and cuts every relayed connection; `silent` swallows
// bytes in both directions (a host that stops answering); `held` keeps what clients send
// and delivers it when set back to false, even for a client gone meanwhile (a Redis
// blocked by a long command: what was sent waits in its socket buffer and runs later);
// `up()` listens again.

import { connect, createServer, type Server, type Socket } from 'node:net';

export interface TcpRelay {
  readonly port: number;
  /** While true, bytes are swallowed (not relayed, not refused). */
  silent: boolean;
  /** While true, bytes from clients are kept; set to false, they are delivered (then a closed client's upstream is closed). */
  held: boolean;
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpRelay(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpRelay> {
  const sockets = new Set<Socket>();
  const state = { silent: false, port: 0 };
  let server: Server | undefined;
  // Held bytes per upstream, delivered on release; `closed`: the client went meanwhile.
  let holding: Map<Socket, { chunks: Buffer[]; closed: boolean }> | undefined;

  const listen = async () => {
    const next = createServer((client) => {
      const upstream = connect(targetPort, targetHost);
      sockets.add(client).add(upstream);
      client.on('data', (data) => {
        if (state.silent) return;
        if (holding) {
          const held = holding.get(upstream) ?? { chunks: [], closed: false };
          holding.set(upstream, held);
          held.chunks.push(data);
        } else upstream.write(data);
      });
      upstream.on('data', (data) => void (state.silent || client.write(data)));
      const end = () => {
        client.destroy();
        sockets.delete(client);
        const held = holding?.get(upstream);
        // A client gone while its bytes are held: they still reach the target on release.
        if (held) held.closed = true;
        else {
          upstream.destroy();
          sockets.delete(upstream);
        }
      };
      client.on('error', end).on('close', end);
      upstream.on('error', () => (client.destroy(), upstream.destroy())).on('close', () => (client.destroy(), sockets.delete(upstream)));
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
    get held() {
      return holding !== undefined;
    },
    set held(value: boolean) {
      if (value) {
        holding ??= new Map();
        return;
      }
      const released = holding;
      holding = undefined;
      for (const [upstream, { chunks, closed }] of released ?? []) {
        for (const chunk of chunks) upstream.write(chunk);
        // The target reads what was sent, then the end of the stream (as a real peer would).
        if (closed) upstream.end();
      }
    },
    down,
    up: async () => {
      state.silent = false;
      if (!server) await listen();
    },
    close: down,
  };
}
