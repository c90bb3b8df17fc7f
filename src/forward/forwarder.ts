// The forwarder: the one place that reaches a target. Two implementations share this
// interface: local (the gateway dials the target) and, later, agent (an egress-only
// agent in the target's network carries the exchange). The target's credential is
// injected by the forwarder; the caller's never reaches it.

import type { Readable } from 'node:stream';

export interface ForwardRequest {
  readonly method: string;
  /** Path and query relative to the target's origin, already joined with its base path. */
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer | undefined;
  /** Aborted when the caller goes away: an AbortSignal, or the data plane's ForwardAbort. */
  readonly signal: ForwardSignal;
}

/** What a forwarder may read of its abort signal (an AbortSignal has all of it). */
export interface ForwardSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { readonly once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

export interface ForwardResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Readable;
  /**
   * Reads the body without a stream, where the forwarder can (local): each chunk to
   * `onChunk` in order, a returned promise holding the upstream back until it settles;
   * resolves at the end, rejects on the first error. Use it or `body`, not both.
   */
  readonly readChunks?: ((onChunk: ChunkReader) => Promise<void>) | undefined;
  /** Drops the body, aborting the upstream request if it still runs (with readChunks). */
  readonly cancel?: (() => void) | undefined;
}

export type ChunkReader = (chunk: Buffer) => void | Promise<void>;

export interface Forwarder {
  forward(request: ForwardRequest): Promise<ForwardResponse>;
  close(): Promise<void>;
}
