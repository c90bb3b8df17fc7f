// A JSON error answer on an agent-endpoint stream, in the gateway's error envelope.

import type { ServerHttp2Stream } from 'node:http2';

export function reply(stream: ServerHttp2Stream, status: number, code: string, message: string, retryAfterSeconds?: number): void {
  if (stream.destroyed) return;
  if (!stream.headersSent) stream.respond({ ':status': status, 'content-type': 'application/json', ...(retryAfterSeconds === undefined ? {} : { 'retry-after': String(retryAfterSeconds) }) });
  stream.end(JSON.stringify({ error: { code, message } }));
}
