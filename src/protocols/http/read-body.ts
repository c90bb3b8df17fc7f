// Reads a request body into memory, bounded: a declared Content-Length over the limit
// is refused before a byte is read, and a chunked body is cut off at the limit.

import type { IncomingMessage } from 'node:http';
import { GatehouseError } from '../../errors/index.js';

export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    throw new GatehouseError('request_too_large', { detail: `content-length ${declared} > limit ${limit}` });
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new GatehouseError('request_too_large', { detail: `body exceeds limit ${limit}` });
    chunks.push(chunk);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
}
