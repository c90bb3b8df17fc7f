// Stopping an HTTP listener: at once (a start that did not finish), or with a grace
// period for the exchanges in flight, draining keep-alive connections meanwhile.
//
// Keep-alive while the gateway stops. server.close() stops accepting connections, but a
// client holding a pooled keep-alive connection (every SDK) could still send requests on
// it, answered `Connection: keep-alive`, and an idle pooled connection kept close() from
// ending: every stop lasted the whole grace period (gateway.shutdownGrace) and cut the
// requests that had arrived meanwhile. While draining, every answer not yet begun says
// `Connection: close`, and connections left idle are closed as they become so.

import type { IncomingMessage, Server, ServerResponse } from 'node:http';

/** How often a draining listener closes the connections that have become idle. */
const idleSweepMs = 250;

/** After the grace period: how long cut exchanges have to write their answer (503) before every connection is closed. */
const cutAnswersMs = 1_000;

const drains = new WeakMap<Server, () => void>();

/** Tracks the answers in flight on `server`, so a drain can mark them `Connection: close`. */
export function trackKeepAlive(server: Server): void {
  const open = new Set<ServerResponse>();
  let draining = false;
  server.on('request', (_req: IncomingMessage, res: ServerResponse) => {
    if (draining) {
      res.shouldKeepAlive = false;
      return;
    }
    open.add(res);
    res.once('close', () => open.delete(res));
  });
  drains.set(server, () => {
    draining = true;
    for (const res of open) if (!res.headersSent) res.shouldKeepAlive = false;
    open.clear();
  });
}

/** Starts draining `server` (after server.close()); the returned function stops the idle sweep. */
function drainKeepAlive(server: Server): () => void {
  drains.get(server)?.();
  server.closeIdleConnections();
  const sweep = setInterval(() => server.closeIdleConnections(), idleSweepMs);
  sweep.unref();
  return () => clearInterval(sweep);
}

/** A listener of a start that did not finish: nothing was served yet worth a grace period. */
export function closeNow(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** Stops accepting, lets in-flight exchanges finish for up to `graceMs` (or until graceOver), then cuts them. */
export function closeServer(server: Server, graceMs: number, graceOver: AbortSignal, cutInFlight?: () => void): Promise<void> {
  return new Promise((resolve) => {
    let lastCut: NodeJS.Timeout | undefined;
    const cut = () => {
      if (lastCut) return;
      cutInFlight?.();
      // An exchange cut before its answer began (held for approval, waiting for its
      // target's headers) is answered 503 gateway_shutdown by its adapter, in the next
      // few milliseconds: closing every connection at once left its caller an empty
      // reply, nothing to say it may retry on another gateway, while its record said 503.
      // Answers mid-stream are ended by their adapters too; what is left is closed then.
      lastCut = setTimeout(() => server.closeAllConnections(), cutAnswersMs);
    };
    const timer = setTimeout(cut, graceMs);
    graceOver.addEventListener('abort', cut, { once: true });
    let stopSweep = () => {};
    server.close(() => {
      clearTimeout(timer);
      clearTimeout(lastCut);
      stopSweep();
      graceOver.removeEventListener('abort', cut);
      resolve();
    });
    stopSweep = drainKeepAlive(server);
  });
}
