// The answer of a recorded exchange as a timeline: each relayed piece with its time
// since the exchange started, cut from the recorded body by the recorded byte counts.

import type { ExchangeDetail } from './exchange-query.js';

export interface TimelineEntry {
  readonly atMs: number;
  readonly bytes: number;
  /** The piece of the recorded body, when the recording holds it (not truncated away). */
  readonly text: string | undefined;
}

export function timeline(exchange: ExchangeDetail): TimelineEntry[] {
  const body = exchange.response.body === null ? undefined : Buffer.from(exchange.response.body, 'utf8');
  let offset = 0;
  return (exchange.chunkTimings ?? []).map(([atMs, bytes]) => {
    const text = body && offset + bytes <= body.length ? body.subarray(offset, offset + bytes).toString('utf8') : undefined;
    offset += bytes;
    return { atMs, bytes, text };
  });
}
