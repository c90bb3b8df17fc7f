// A compressed answer decoded so it can be read (masked, scanned for the target's
// credential). The gateway asks the target for `Accept-Encoding: identity` whenever it
// must read the answer (headers.ts); a target that compresses all the same is decoded
// here, for the content codings of RFC 9110 §8.4.1 that zlib knows (gzip, deflate, br),
// and the client gets the decoded bytes (Content-Encoding and Content-Length dropped by
// the relay). Any other coding (zstd, a list of codings) cannot be read: the relay
// fails closed. Decoded bytes count against the answer's size limit, so a small
// compressed answer cannot expand past it.

import { pipeline, type Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import type { ForwardResponse } from '../../forward/index.js';
import { forEachChunk, type ChunkHandler } from './stream-chunks.js';

/** A decoder for the answer's Content-Encoding; undefined for identity, `false` for a coding the gateway cannot read. */
export function answerDecoder(encoding: string | undefined): (() => Transform) | undefined | false {
  if (encoding === undefined) return undefined;
  switch (encoding.trim().toLowerCase()) {
    case '':
    case 'identity':
      return undefined;
    case 'gzip':
    case 'x-gzip':
      return createGunzip;
    case 'deflate':
      return createInflate;
    case 'br':
      return createBrotliDecompress;
    default:
      return false;
  }
}

/**
 * The upstream body through `decoder`, chunk by chunk to `onChunk` (same contract as
 * forEachChunk). An empty body (a HEAD answer, 204, 304 with a Content-Encoding) is an
 * empty answer, not a truncated stream.
 */
export function forEachDecodedChunk(upstream: ForwardResponse, decoder: Transform, onChunk: ChunkHandler): Promise<void> {
  const body = upstream.body;
  let input = 0;
  body.on('data', (chunk: Buffer) => {
    input += chunk.length;
  });
  pipeline(body, decoder, () => undefined);
  return forEachChunk(decoder, onChunk).catch((error: unknown) => {
    if (input === 0 && (error as { code?: string }).code === 'Z_BUF_ERROR') return;
    throw error;
  });
}
