// Reads a request body into memory, bounded: a declared Content-Length over the limit
// is refused before a byte is read, and a chunked body is cut off at the limit (the
// request is destroyed: its unread rest is not waited for).

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
    req.destroy();
    throw error;
  }
  if (chunks) return Buffer.concat(chunks, size);
  return first ?? Buffer.alloc(0);
}
