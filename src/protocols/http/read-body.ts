// Reads a request body into memory, bounded: a declared Content-Length over the limit
// is refused before a byte is read, and a chunked body is cut off at the limit. Its
// rest is then discarded, not the socket destroyed, so the caller still reads the 413
// (sent with `connection: close`: the socket is closed once the answer is out).

import type { IncomingMessage } from 'node:http';
import { GatehouseError } from '../../errors/index.js';
import { forEachChunk } from './stream-chunks.js';

export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    throw new GatehouseError('request_too_large', { detail: `content-length ${declared} > limit ${limit}` });
  }
  let first: Buffer | undefined;
  let chunks: Buffer[] | undefined;
  let size = 0;
  try {
    await forEachChunk(req, (chunk) => {
      size += chunk.length;
      if (size > limit) throw new GatehouseError('request_too_large', { detail: `body exceeds limit ${limit}` });
      if (first === undefined) first = chunk;
      else (chunks ??= [first]).push(chunk);
    });
  } catch (error) {
    if (error instanceof GatehouseError) req.resume();
    else req.destroy();
    throw error;
  }
  if (chunks) return Buffer.concat(chunks, size);
  return first ?? Buffer.alloc(0);
}
