// A Recorder whose writes happen on a worker thread (recorder-worker.ts). Each call
// resolves when the worker's batch holding it has committed, exactly like the
// in-thread recorder; the data crosses as a structured clone, never as SQL.

import { Worker } from 'node:worker_threads';
import type { AuditConfig } from '../config/audit-schema.js';
import type { Decision, Exchange, ExchangeOutcome, RecordedRequest } from '../exchange/index.js';
import type { StoreConfig } from '../store/index.js';
import type { ExchangeProgress, Recorder } from './recorder.js';

export type RecorderRequest =
  | { id: number; op: 'open'; exchange: Exchange; decision: Decision; request: RecordedRequest; reexecutionOf: string | undefined }
  | { id: number; op: 'progress'; exchange: Exchange; progress: ExchangeProgress }
  | { id: number; op: 'finish'; exchange: Exchange; outcome: ExchangeOutcome }
  | { id: number; op: 'refuse'; exchange: Exchange; decision: Decision | undefined; request: RecordedRequest | undefined; outcome: ExchangeOutcome; reexecutionOf: string | undefined }
  | { id: number; op: 'drain' }
  | { id: number; op: 'close' };

export type RecorderReply = { id: number; ok: true } | { id: number; ok: false; message: string };

/**
 * Operations and replies cross in batches: everything queued in one turn of the event
 * loop is one postMessage. Waking the other thread is a system call, and it cost more
 * than the structured clone of the data (about 40 µs per message on a busy 2-core VM).
 */
export type RecorderBatch = readonly RecorderRequest[];
export type ReplyBatch = readonly RecorderReply[];

type Operation = RecorderRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

export class RecorderWorkerError extends Error {}

export interface WorkerRecorder extends Recorder {
  close(): Promise<void>;
}

export interface WorkerRecorderOptions {
  readonly store: StoreConfig;
  readonly audit: AuditConfig;
  readonly rawKey?: string | undefined;
  readonly reexecutionOf?: ((exchange: Exchange) => string | undefined) | undefined;
}

export async function startWorkerRecorder(options: WorkerRecorderOptions): Promise<WorkerRecorder> {
  // Built: recorder-worker.js beside this file. From source (tests run under tsx), the
  // .ts file, loaded through tsx in the worker too.
  const fromSource = import.meta.url.endsWith('.ts');
  const entry = new URL(fromSource ? './recorder-worker.ts' : './recorder-worker.js', import.meta.url);
  const script = fromSource
    ? new URL(`data:text/javascript,import { register } from ${JSON.stringify(import.meta.resolve('tsx/esm/api'))}; register(); await import(${JSON.stringify(entry.href)});`)
    : entry;
  const worker = new Worker(script, {
    workerData: { store: options.store, audit: options.audit, rawKey: options.rawKey },
  });
  const pending = new Map<number, { resolve: () => void; reject: (error: Error) => void }>();
  let nextId = 1;
  let failed: Error | undefined;

  const ready = new Promise<void>((resolve, reject) => {
    pending.set(0, { resolve, reject });
  });
  worker.on('message', (replies: ReplyBatch) => {
    for (const reply of replies) {
      const waiter = pending.get(reply.id);
      if (!waiter) continue;
      pending.delete(reply.id);
      if (reply.ok) waiter.resolve();
      else waiter.reject(new RecorderWorkerError(reply.message));
    }
  });
  const failAll = (error: Error) => {
    // Fail closed: without the worker nothing can be recorded, so nothing is forwarded.
    failed = error;
    for (const waiter of pending.values()) waiter.reject(error);
    pending.clear();
  };
  worker.on('error', (error) => failAll(new RecorderWorkerError(`recorder worker failed: ${error.message}`)));
  worker.on('exit', (code) => failAll(new RecorderWorkerError(`recorder worker exited (${code})`)));
  await ready;

  let outbox: RecorderRequest[] = [];
  const send = () => {
    const batch = outbox;
    outbox = [];
    if (!failed) worker.postMessage(batch satisfies RecorderBatch);
  };
  const call = (operation: Operation): Promise<void> => {
    if (failed) return Promise.reject(failed);
    const id = nextId++;
    return new Promise<void>((resolve, reject) => {
      pending.set(id, { resolve, reject });
      if (outbox.push({ ...operation, id } as RecorderRequest) === 1) setImmediate(send);
    });
  };

  return {
    open: (exchange, decision, request) => call({ op: 'open', exchange, decision, request, reexecutionOf: options.reexecutionOf?.(exchange) }),
    progress: (exchange, progress) => call({ op: 'progress', exchange, progress }),
    finish: (exchange, outcome) => call({ op: 'finish', exchange, outcome }),
    refuse: (exchange, decision, request, outcome) => call({ op: 'refuse', exchange, decision, request, outcome, reexecutionOf: options.reexecutionOf?.(exchange) }),
    drain: () => call({ op: 'drain' }),
    async close() {
      if (!failed) await call({ op: 'close' }).catch(() => undefined);
      await worker.terminate();
    },
  };
}
