// Reads a request body into memory, bounded: a declared Content-Length over the limit
// is refused before a byte is read, and a chunked body is cut off at the limit. Its
// rest is then discarded, not the socket destroyed, so the caller still reads the 413
// (sent with `connection: close`: the socket is closed once the answer is out).
// The body must keep coming: after `idleMs` without a byte (30 s by default, as for the
// headers) it is refused with 408 and the connection closed. Without that bound, a
// caller with a key could hold sockets and up to maxRequestBody of memory each until
// the server's requestTimeout (5 minutes for a whole request, server/gateway.ts).

import type { IncomingMessage } from 'node:http';
import { GatehouseError } from '../../errors/index.js';
import { forEachChunk } from './stream-chunks.js';

export const bodyIdleTimeoutMs = 30_000;

export async function readBody(req: IncomingMessage, limit: number, idleMs = bodyIdleTimeoutMs): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    throw new GatehouseError('request_too_large', { detail: `content-length ${declared} > limit ${limit}` });
  }
  let first: Buffer | undefined;
  let chunks: Buffer[] | undefined;
  let size = 0;
  let timer: NodeJS.Timeout | undefined;
  try {
    const reading = forEachChunk(req, (chunk) => {
      timer?.refresh();
      size += chunk.length;
      if (size > limit) throw new GatehouseError('request_too_large', { detail: `body exceeds limit ${limit}` });
      if (first === undefined) first = chunk;
      else (chunks ??= [first]).push(chunk);
    });
    if (req.readableEnded) await reading;
    else {
      reading.catch(() => undefined); // a late failure after the timeout won: nobody awaits it
      await Promise.race([
        reading,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new GatehouseError('request_timeout', { detail: `no body bytes for ${idleMs} ms after ${size} bytes` })), idleMs);
        }),
      ]);
    }
  } catch (error) {
    // After a timeout nothing more is read: the 408 goes out with `connection: close`.
    if (error instanceof GatehouseError && error.code !== 'request_timeout') req.resume();
    else if (!(error instanceof GatehouseError)) {
      req.destroy();
      // The request stream fails only when its connection went away before the body was
      // whole (Node's "aborted", code ECONNRESET): the client closed it. Left as is, that
      // code read as a store connection reset, and the exchange was recorded and counted
      // as 503 store_unavailable.
      throw new GatehouseError('client_closed', { detail: `the client closed the connection after ${size} bytes of the request body${declared === undefined ? '' : ` (content-length ${declared})`}: ${error instanceof Error ? error.message : String(error)}`, cause: error });
    }
    throw error;
  } finally {
    clearTimeout(timer);
  }
  if (chunks) return Buffer.concat(chunks, size);
  return first ?? Buffer.alloc(0);
}
